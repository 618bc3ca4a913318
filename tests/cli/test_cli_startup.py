"""What `postmeister` loads before it runs a command: not the web stack, the DNS resolver or
the HTTP client, which only some verbs use (`postmeister.cli.lazy`). Starting FastAPI and
the API modules cost every command about a second (`python -X importtime`), `customer
create` as much as `domain dns`."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

from postmeister.cli.lazy import lazy_module

# Imported by the verbs that need them, never at start-up.
NOT_AT_START = ("fastapi", "starlette", "httpx", "dns.resolver", "jinja2", "postmeister.tls")


def loaded_at_start(*args: str) -> list[str]:
    """Which of NOT_AT_START a fresh interpreter holds after importing the command and
    running `args` (a command that needs no database)."""
    code = (
        "import json, sys\n"
        "from postmeister.cli.main import main\n"
        "try:\n"
        f"    main({list(args)!r}, prog_name='postmeister')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps([m for m in {NOT_AT_START!r} if m in sys.modules]), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return loaded


def test_the_command_starts_without_the_web_stack_dns_or_http_client() -> None:
    assert loaded_at_start("--version") == []
    # The help lists every verb, with its description: still nothing of the API loaded.
    assert loaded_at_start("--help") == []
    assert loaded_at_start("domain", "--help") == []


def test_a_lazy_module_is_the_real_one_once_used(tmp_path: Path) -> None:
    package = tmp_path / "lazypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    marker = tmp_path / "ran"
    (package / "heavy.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\nLOADS = ['ran']\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        module = lazy_module("lazypkg.heavy")
        # Registered, not run: the module's code runs on the first attribute read.
        assert sys.modules["lazypkg.heavy"] is module
        assert lazy_module("lazypkg.heavy") is module
        assert not marker.exists()
        assert module.LOADS == ["ran"]
        assert marker.exists()
        # An ordinary import later finds the same module, also as the package's attribute.
        assert importlib.import_module("lazypkg.heavy") is module
        assert sys.modules["lazypkg"].heavy is module
        marker.unlink()
        assert importlib.import_module("lazypkg.heavy").LOADS == ["ran"]
        assert not marker.exists()  # executed once
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("lazypkg.heavy", "lazypkg"):
            sys.modules.pop(name, None)
