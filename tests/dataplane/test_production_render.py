"""`postmeister dataplane render`, the configuration an operator installs: the brute-force
limits are part of it, Dovecot accepts them, and the hash nonce stays the same and private."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from postmeister.dataplane.authpolicy import Config, Limits


def render(tmp_path: Path, out: Path) -> None:
    env = {
        **os.environ,
        "POSTMEISTER_DATA_DIR": str(tmp_path / "data"),
        "POSTMEISTER_DATABASE_URL": f"sqlite:///{tmp_path / 'pm.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "postmeister.cli.dataplane", "render", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_render_includes_the_auth_policy_with_the_production_limits(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render(tmp_path, out)
    config = Config.load(out / "authpolicy.json")
    assert config.limits == Limits()
    assert (config.host, config.port) == ("127.0.0.1", 10032)
    dovecot = (out / "dovecot" / "postmeister.conf").read_text()
    assert f"!include {out / 'dovecot' / 'postmeister-auth-policy.conf.ext'}" in dovecot
    assert "auth_failure_delay = 2 secs" in dovecot
    assert (
        "smtpd_client_auth_rate_limit=60" in (out / "postfix" / "master.cf.postmeister").read_text()
    )


def test_the_hash_nonce_is_private_and_stable_across_renders(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    render(tmp_path, first)
    render(tmp_path, second)
    name = Path("dovecot") / "postmeister-auth-policy.conf.ext"
    assert (first / name).read_text() == (second / name).read_text()
    assert stat.S_IMODE((first / name).stat().st_mode) == 0o640
    nonce_file = tmp_path / "data" / "dataplane-auth-policy-nonce"
    assert stat.S_IMODE(nonce_file.stat().st_mode) == 0o600
    assert (
        f"auth_policy_hash_nonce = {nonce_file.read_text().strip()}\n" in (first / name).read_text()
    )


@pytest.mark.skipif(shutil.which("doveconf") is None, reason="needs Dovecot's doveconf")
def test_dovecot_accepts_the_rendered_settings(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render(tmp_path, out)
    main = tmp_path / "dovecot.conf"
    main.write_text(f"protocols = imap\n!include {out / 'dovecot' / 'postmeister.conf'}\n")
    result = subprocess.run(
        ["doveconf", "-c", str(main), "-n"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "auth_policy_server_url = http://127.0.0.1:10032/" in result.stdout
