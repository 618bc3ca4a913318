"""The renderers' output, byte for byte, against reviewed golden files.

A change to a renderer shows up here as a diff of the real configuration an operator would
install. After reviewing it, regenerate with `POSTMEISTER_UPDATE_GOLDEN=1 pytest tests/dataplane`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from postmeister.dataplane.render import render_site
from postmeister.dataplane.render.model import (
    AuthPolicy,
    DkimSigner,
    Endpoint,
    Instance,
    NodeRole,
    PostgresDatabase,
    Relay,
    Site,
    SqliteDatabase,
    StackLayout,
    Tls,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("POSTMEISTER_UPDATE_GOLDEN") == "1"
NONCE = "0123456789abcdef0123456789abcdef"


def operator_site(**overrides: object) -> Site:
    values: dict[str, object] = {
        "database": SqliteDatabase(Path("/var/lib/postmeister/postmeister.sqlite3")),
        "config_dir": Path("/etc/postmeister/dataplane"),
        "hostname": "mail.example.org",
        "mail_root": Path("/var/vmail"),
        "mail_user": "vmail",
        "mail_uid": 5000,
        "sqlite_group": "postfix",
        "lmtp": Endpoint("127.0.0.1", 24),
        "milter": Endpoint("127.0.0.1", 10029),
        "sasl_socket": Path("/var/spool/postfix/private/postmeister-auth"),
        "postfix_sasl_path": "private/postmeister-auth",
        "tls": Tls(Path("/etc/ssl/mail.pem"), Path("/etc/ssl/private/mail.key")),
        "auth_policy": AuthPolicy(Endpoint("127.0.0.1", 10032), hash_nonce=NONCE),
        "dkim_signers": (DkimSigner("rsa", Endpoint("127.0.0.1", 8891)),),
    }
    values.update(overrides)
    return Site(**values)  # type: ignore[arg-type]


def instance_site() -> Site:
    layout = StackLayout(Path("/srv/stack"))
    instance = Instance(
        layout=layout,
        listen="127.0.0.1",
        smtp_port=10025,
        submission_port=10587,
        imap_port=10143,
        pop3_port=10110,
        pop3s_port=10995,
        imaps_port=10993,
        submissions_port=10465,
    )
    return operator_site(
        config_dir=layout.etc,
        mail_root=layout.mail_root,
        mail_uid=999,
        hostname="mail.postmeister.test",
        lmtp=Endpoint("127.0.0.1", 10024),
        milter=Endpoint("127.0.0.1", 10029),
        sasl_socket=layout.sasl_socket,
        postfix_sasl_path=str(layout.sasl_socket),
        tls=layout.tls,
        instance=instance,
        auth_policy=AuthPolicy(
            Endpoint("127.0.0.1", 10032), hash_nonce=NONCE, trusted_networks=("127.0.0.1/32",)
        ),
        milter_metrics=Endpoint("127.0.0.1", 10033),
        dkim_signers=(
            DkimSigner("rsa", Endpoint("127.0.0.1", 10891)),
            DkimSigner("ed25519", Endpoint("127.0.0.1", 10892)),
        ),
        relay=Relay("[127.0.0.2]:10026"),
    )


CASES = {
    "sqlite-operator": operator_site(),
    "postgresql-operator": operator_site(
        database=PostgresDatabase("db.internal", 5432, "postmeister", "mailserver", "s3cret"),
        tls=None,
        relay=Relay(
            "[smtp.relay.example]:587",
            username="mail-node-1",
            password_file=Path("/etc/postmeister/relay-password"),
        ),
    ),
    "sqlite-instance": instance_site(),
    # One of several mail nodes (issue 17): transport map, proxying passdbs, node LMTP.
    "postgresql-node": operator_site(
        database=PostgresDatabase("db.internal", 5432, "postmeister", "mailserver", "s3cret"),
        tls=None,
        node=NodeRole("node1", "10.0.0.11", ("10.0.0.0/24",)),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_files_match_golden_files(case: str) -> None:
    directory = GOLDEN / case
    rendered = {f.path: f.content for f in render_site(CASES[case])}
    if UPDATE:
        for path, content in rendered.items():
            (directory / path).parent.mkdir(parents=True, exist_ok=True)
            (directory / path).write_text(content)
    on_disk = {
        str(p.relative_to(directory)): p.read_text() for p in directory.rglob("*") if p.is_file()
    }
    assert sorted(rendered) == sorted(on_disk), "a file was added or removed"
    for path, content in rendered.items():
        assert content == on_disk[path], f"{case}/{path} differs from its golden file"


def test_files_with_a_password_or_the_hash_nonce_are_marked_secret() -> None:
    files = render_site(CASES["postgresql-operator"])
    with_password = {f.path for f in files if "s3cret" in f.content}
    assert with_password, "the PostgreSQL password must reach Postfix and Dovecot"
    with_nonce = {f.path for f in files if NONCE in f.content}
    assert with_nonce == {"dovecot/postmeister-auth-policy.conf.ext"}
    assert with_password | with_nonce == {f.path for f in files if f.secret}


def _service_block(conf: str, name: str) -> str:
    start = conf.index(f"service {name} {{\n")
    return conf[start : conf.index("\n}\n", start)]


def test_dovecot_processes_that_read_the_database_get_its_group() -> None:
    """Auth reads an SQLite file as the database group; the dict process reads the
    database too, and on PostgreSQL the dict-sql file holding the password (mode 0640)."""
    conf = {f.path: f.content for f in render_site(CASES["sqlite-operator"])}
    dovecot = conf["dovecot/postmeister.conf"]
    assert "extra_groups = postfix" in _service_block(dovecot, "auth")
    assert "extra_groups = postfix" in _service_block(dovecot, "dict")
    pg_conf = {f.path: f.content for f in render_site(CASES["postgresql-operator"])}
    pg_dovecot = pg_conf["dovecot/postmeister.conf"]
    assert "extra_groups" not in _service_block(pg_dovecot, "auth")
    assert "extra_groups = postfix" in _service_block(pg_dovecot, "dict")


def test_an_operator_site_renders_no_rspamd_of_its_own() -> None:
    """An installation uses Debian's rspamd as it is but for the two ARC/DKIM overrides;
    only the private stack gets an offline rspamd with the network modules switched off."""
    operator = {f.path for f in render_site(CASES["sqlite-operator"])}
    assert {path for path in operator if path.startswith("rspamd/")} == {
        "rspamd/local.d/arc.conf",
        "rspamd/local.d/dkim_signing.conf",
    }
    instance = {f.path: f.content for f in render_site(CASES["sqlite-instance"])}
    for module in ("rbl", "spf", "dmarc", "fuzzy_check"):
        assert instance[f"rspamd/local.d/{module}.conf"].endswith("enabled = false;\n")


def test_rendering_is_deterministic() -> None:
    assert render_site(instance_site()) == render_site(instance_site())
