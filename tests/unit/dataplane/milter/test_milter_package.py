"""The milter package's shape: dependencies run one way, and the running milter needs
neither the store nor the web stack (it starts fast and survives a broken controller)."""

from __future__ import annotations

import json
import subprocess
import sys

LAYERS = {
    "protocol": set(),
    "lookups": set(),
    "metrics": set(),
    "limits": set(),  # the sending-limit rules are pure (postmeister.domain.sending_limits)
    "sender": {"protocol", "metrics", "limits"},
    "arc": set(),  # which mail is ARC-sealed: pure rules over the lookups' answers
    "antispam": {"protocol", "metrics", "arc"},
    "__main__": {"protocol", "lookups", "sender", "antispam", "metrics", "limits", "arc"},
}
FORBIDDEN = ("sqlalchemy", "fastapi", "pydantic", "email_validator", "postmeister.models")


def _imported_by(module: str) -> list[str]:
    code = (
        "import json, sys\n"
        f"import postmeister.dataplane.milter.{module}\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    modules: list[str] = json.loads(result.stdout)
    return modules


def test_each_module_loads_only_the_layers_below_it_and_no_store() -> None:
    prefix = "postmeister.dataplane.milter."
    for module, allowed in LAYERS.items():
        loaded = _imported_by(module)
        siblings = {m.removeprefix(prefix) for m in loaded if m.startswith(prefix)}
        assert siblings - {module} == allowed, module
        heavy = [m for m in loaded if m.startswith(FORBIDDEN)]
        assert not heavy, (module, heavy)


def test_the_entry_point_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-m", "postmeister.dataplane.milter", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "--config" in result.stdout
