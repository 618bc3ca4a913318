"""SRS as rendered (render/srs.py): what the installed Postfix reads from the main.cf lines,
what the hosted-senders map answers on both databases when the real `postmap` asks it, the
postsrsd unit, and the secret every mail node shares (made once, 0600, in no rendered file)."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import Settings, SrsSettings
from postmeister.dataplane.render import render_site
from postmeister.dataplane.render.model import Endpoint, Site, Srs, StackLayout
from postmeister.dataplane.render.postfix import SRS_HOSTED_SENDERS
from postmeister.dataplane.render.systemd import POSTSRSD_UNIT, postsrsd_unit
from postmeister.dataplane.stack import production_site, stack_site, write_files
from tests.support.factories import add_domain_to, make_tenant

HOSTED = "hosted.example"


def _site(settings: Settings, config_dir: Path) -> Site:
    return production_site(settings, config_dir=config_dir)


def _postconf(config_dir: Path, *parameters: str) -> dict[str, str]:
    """The values the real Postfix reads, `$name` expanded; fails on a warning about SRS
    or about a parameter given twice (the other maps' files are not written here)."""
    result = subprocess.run(
        ["postconf", "-c", str(config_dir), "-x", *parameters],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    warnings = [
        line
        for line in result.stderr.splitlines()
        if "overriding earlier entry" in line
        or ("No such file" not in line and any(p in line for p in parameters))
    ]
    assert not warnings, result.stderr
    return dict(line.split(" = ", 1) for line in result.stdout.splitlines())


def _main_cf(tmp_path: Path, site: Site) -> Path:
    """The rendered fragment as a main.cf of its own, for postconf and postmap."""
    directory = tmp_path / "postfix-config"
    directory.mkdir()
    fragment = {f.path: f.content for f in render_site(site)}["postfix/main.cf.postmeister"]
    (directory / "main.cf").write_text("compatibility_level = 3.6\n" + fragment)
    return directory


def test_senders_are_looked_up_as_hosted_first_then_rewritten_by_postsrsd(
    settings: Settings, tmp_path: Path
) -> None:
    site = _site(settings, tmp_path / "etc")
    values = _postconf(
        _main_cf(tmp_path, site),
        "sender_canonical_maps",
        "sender_canonical_classes",
        "recipient_canonical_maps",
        "recipient_canonical_classes",
        "relay_domains",
        "relay_recipient_maps",
        "lmtp_generic_maps",
    )
    kind = "sqlite" if settings.resolved_database_url.startswith("sqlite") else "pgsql"
    hosted_map = f"proxy:{kind}:{tmp_path / 'etc' / 'postfix' / 'srs-hosted-senders.cf'}"
    assert values["sender_canonical_maps"] == f"{hosted_map}, tcp:127.0.0.1:10034"
    # Only the envelope: the header From a reader sees stays the author's.
    assert values["sender_canonical_classes"] == "envelope_sender"
    assert values["recipient_canonical_maps"] == "tcp:127.0.0.1:10035"
    assert values["recipient_canonical_classes"] == "envelope_recipient"
    # Bounces to the SRS domain are accepted when postsrsd can reverse the address.
    assert values["relay_domains"] == settings.dataplane.hostname
    assert values["relay_recipient_maps"] == "tcp:127.0.0.1:10035"
    assert values["lmtp_generic_maps"] == "tcp:127.0.0.1:10035"


def test_the_srs_domain_and_ports_follow_the_settings(settings: Settings, tmp_path: Path) -> None:
    custom = settings.model_copy(
        update={
            "srs": SrsSettings(
                domain="srs.provider.example", forward_port=20001, reverse_port=20002
            )
        }
    )
    site = _site(custom, tmp_path / "etc")
    assert site.srs is not None
    values = _postconf(_main_cf(tmp_path, site), "relay_domains", "recipient_canonical_maps")
    assert values == {
        "relay_domains": "srs.provider.example",
        "recipient_canonical_maps": "tcp:127.0.0.1:20002",
    }


def test_the_same_ports_for_both_tables_are_refused() -> None:
    with pytest.raises(ValueError, match="must differ"):
        SrsSettings(forward_port=10034, reverse_port=10034)


def _lookup(config_dir: Path, table: str, key: str) -> str | None:
    result = subprocess.run(
        ["postmap", "-c", str(config_dir), "-q", key, table],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.stdout.strip() if result.returncode == 0 else None


def test_the_hosted_senders_map_answers_hosted_domains_only(
    settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """Asked by the real Postfix, on both databases: an address of a hosted domain (any of
    the customer's domains) answers itself, so postsrsd is never asked for it; an outside
    address and the bare `@domain` probe are not found, so they go on to postsrsd."""
    tenant = make_tenant(sessions, name="SRS", domain=HOSTED)
    add_domain_to(sessions, tenant, "second.example")
    config_dir = tmp_path / "etc"
    site = _site(settings, config_dir)
    write_files(config_dir, render_site(site), reader_group="postfix")
    kind = "sqlite" if settings.resolved_database_url.startswith("sqlite") else "pgsql"
    table = f"{kind}:{config_dir / SRS_HOSTED_SENDERS.file_path()}"
    main_cf = _main_cf(tmp_path, site)
    assert _lookup(main_cf, table, f"alice@{HOSTED}") == f"alice@{HOSTED}"
    assert _lookup(main_cf, table, "bob@second.example") == "bob@second.example"
    assert _lookup(main_cf, table, "carol@outside.example") is None
    assert _lookup(main_cf, table, f"@{HOSTED}") is None


def test_switched_off_nothing_is_rewritten(settings: Settings, tmp_path: Path) -> None:
    off = settings.model_copy(update={"srs": SrsSettings(enabled=False)})
    site = _site(off, tmp_path / "etc")
    assert site.srs is None
    files = {f.path: f.content for f in render_site(site)}
    assert SRS_HOSTED_SENDERS.file_path() not in files
    main_cf = files["postfix/main.cf.postmeister"]
    for parameter in ("sender_canonical_maps", "recipient_canonical_maps", "relay_domains"):
        assert f"\n{parameter} =" not in main_cf
    assert not (tmp_path / "srs-secret").exists()


def test_the_private_instance_names_relay_domains_once(settings: Settings, tmp_path: Path) -> None:
    """The instance's own main.cf empties relay_domains only without SRS: a second value
    would make Postfix warn about an overridden entry on every command."""
    layout = StackLayout(tmp_path / "stack")
    names = (
        "smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "lmtp",
        "milter", "quota_status", "antispam", "rspamd", "authpolicy", "milter_metrics",
        "dkim_rsa", "dkim_ed25519",
    )  # fmt: skip
    ports = dict.fromkeys(names, 10000)
    site = stack_site(settings, layout, {**ports, "srs_forward": 20001, "srs_reverse": 20002})
    main_cf = {f.path: f.content for f in render_site(site)}["postfix/main.cf"]
    assert main_cf.count("\nrelay_domains =") == 1
    directory = tmp_path / "instance"
    directory.mkdir()
    (directory / "main.cf").write_text(main_cf)
    values = _postconf(directory, "relay_domains", "sender_canonical_maps")
    assert values["relay_domains"] == "mail.postmeister.test"
    assert values["sender_canonical_maps"].endswith(", tcp:127.0.0.1:20001")


def test_the_secret_is_made_once_0600_and_rendered_nowhere(
    settings: Settings, tmp_path: Path
) -> None:
    first = _site(settings, tmp_path / "etc")
    second = _site(settings, tmp_path / "etc")
    assert first.srs is not None and second.srs is not None
    secret_file = first.srs.secret_file
    assert secret_file == (settings.data_dir / "srs-secret").resolve()
    assert second.srs.secret_file == secret_file
    secret = secret_file.read_text().strip()
    assert len(secret) >= 32
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    # A second render (or a second node with the copied file) signs with the same secret.
    assert secret_file.read_text().strip() == secret
    assert not [f.path for f in render_site(first) if secret in f.content]


def test_a_configured_secret_file_is_used_as_it_is(settings: Settings, tmp_path: Path) -> None:
    """A file deployed to every node by configuration management: read, never replaced."""
    deployed = tmp_path / "deployed-srs-secret"
    deployed.write_text("the-same-on-every-node\nformer-secret\n")
    deployed.chmod(0o600)
    site = _site(
        settings.model_copy(update={"srs": SrsSettings(secret_file=deployed)}), tmp_path / "etc"
    )
    assert site.srs is not None and site.srs.secret_file == deployed.resolve()
    assert deployed.read_text() == "the-same-on-every-node\nformer-secret\n"


def test_the_postsrsd_unit_gets_its_secret_as_a_credential() -> None:
    srs = Srs(
        domain="mail.example.org",
        forward=Endpoint("127.0.0.1", 10034),
        reverse=Endpoint("127.0.0.1", 10035),
        secret_file=Path("/var/lib/postmeister/data/srs-secret"),
    )
    unit = postsrsd_unit(srs)
    assert unit.path == f"systemd/{POSTSRSD_UNIT}"
    lines = unit.content.splitlines()
    assert "DynamicUser=yes" in lines
    assert "LoadCredential=srs-secret:/var/lib/postmeister/data/srs-secret" in lines
    assert (
        "ExecStart=/usr/sbin/postsrsd -s ${CREDENTIALS_DIRECTORY}/srs-secret"
        " -d mail.example.org -l 127.0.0.1 -f 10034 -r 10035"
    ) in lines
    # Postfix asks it from cleanup: started before, and never with any capability.
    assert "Before=postfix.service" in lines
    assert "CapabilityBoundingSet=" in lines
