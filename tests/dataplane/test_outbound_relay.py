"""Outbound delivery settings: direct to MX by default, or a smarthost with TLS required and
a SASL password that lives only in a 0600 map written from the password file."""

from __future__ import annotations

import stat
from pathlib import Path

from postmeister.config import Settings
from postmeister.dataplane import stack
from postmeister.dataplane.render import render_site
from postmeister.dataplane.render.postfix import relay_password_map


def _settings(tmp_path: Path, **dataplane: object) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'pm.sqlite3'}",
        dataplane=dataplane,
    )


def test_without_a_relay_postfix_delivers_to_each_mx(tmp_path: Path) -> None:
    site = stack.production_site(_settings(tmp_path), config_dir=tmp_path / "etc")
    main_cf = {f.path: f.content for f in render_site(site)}["postfix/main.cf.postmeister"]
    assert "\nrelayhost =" not in main_cf and "\nsmtp_sasl_auth_enable" not in main_cf


def test_a_smarthost_gets_tls_and_a_password_map_only_root_reads(tmp_path: Path) -> None:
    password_file = tmp_path / "relay-password"
    password_file.write_text("correct horse battery staple\n")
    settings = _settings(
        tmp_path,
        outbound_relay="[smtp.relay.example]:587",
        outbound_relay_username="node-1",
        outbound_relay_password_file=password_file,
    )
    site = stack.production_site(settings, config_dir=tmp_path / "etc")
    files = render_site(site)
    main_cf = {f.path: f.content for f in files}["postfix/main.cf.postmeister"]
    assert "relayhost = [smtp.relay.example]:587\n" in main_cf
    assert "smtp_tls_security_level = encrypt\n" in main_cf
    assert f"smtp_sasl_password_maps = texthash:{relay_password_map(site)}\n" in main_cf
    assert not any("correct horse" in f.content for f in files)

    stack.write_relay_password(site)
    written = Path(relay_password_map(site))
    assert written.read_text() == "[smtp.relay.example]:587 node-1:correct horse battery staple\n"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
