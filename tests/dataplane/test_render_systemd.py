"""The service units, byte for byte, against reviewed golden files (SQLite and PostgreSQL:
the milter's groups, writable paths and ordering differ). Regenerate after review with
`POSTMEISTER_UPDATE_GOLDEN=1 pytest tests/dataplane/test_render_systemd.py`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from postmeister.dataplane.render.systemd import Units, render_units

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("POSTMEISTER_UPDATE_GOLDEN") == "1"


def units(**overrides: object) -> Units:
    values: dict[str, object] = {
        "executable": Path("/opt/postmeister/bin/postmeister"),
        "data_dir": Path("/var/lib/postmeister"),
        "environment_file": Path("/etc/postmeister/postmeister.env"),
        "milter_config": Path("/etc/postmeister/milter.json"),
        "authpolicy_config": Path("/etc/postmeister/authpolicy.json"),
        "sqlite_group": "postfix",
        "sqlite_dir": Path("/var/lib/postmeister/db"),
        "local_postgresql": False,
        "dkim_algorithms": ("rsa", "ed25519"),
    }
    values.update(overrides)
    return Units(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("systemd-sqlite", units()),
        ("systemd-postgresql", units(sqlite_dir=None, local_postgresql=True)),
    ],
)
def test_units_match_golden_files(name: str, spec: Units) -> None:
    for rendered in render_units(spec):
        golden = GOLDEN / name / rendered.path
        if UPDATE:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(rendered.content)
        assert rendered.content == golden.read_text(), rendered.path


def test_the_controller_never_runs_as_root_and_writes_only_its_data() -> None:
    controller, milter, authpolicy, *_opendkim = (f.content for f in render_units(units()))
    assert "User=postmeister\n" in controller
    assert "ReadWritePaths=/var/lib/postmeister /var/lib/postmeister/db\n" in controller
    assert "ProtectSystem=strict\n" in controller and "CapabilityBoundingSet=\n" in controller
    assert "Before=postfix.service\n" in milter
    assert "Before=dovecot.service\n" in authpolicy and "SupplementaryGroups" not in authpolicy
