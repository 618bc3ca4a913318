"""The webmail's files (Roundcube, nginx, PHP-FPM), byte for byte against reviewed golden
files, and the properties the data plane relies on. Regenerate after review with
`POSTMEISTER_UPDATE_GOLDEN=1 pytest tests/dataplane/test_render_webmail.py`."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from postmeister.dataplane.render.model import Endpoint, Tls
from postmeister.dataplane.render.webmail import (
    CONFIG_FILE,
    NGINX_FILE,
    Webmail,
    render_webmail,
)

GOLDEN = Path(__file__).parent / "golden" / "webmail-operator"
UPDATE = os.environ.get("POSTMEISTER_UPDATE_GOLDEN") == "1"
DES_KEY = "0123456789abcdef0123456789abcdef"


def operator_webmail(**overrides: object) -> Webmail:
    values: dict[str, object] = {
        "server_name": "mail.example.org",
        "listen": Endpoint("0.0.0.0", 443),  # noqa: S104 (a server listens on every address)
        "tls": Tls(Path("/etc/ssl/mail.pem"), Path("/etc/ssl/private/mail.key")),
        "imap": Endpoint("127.0.0.1", 993),
        "submission": Endpoint("127.0.0.1", 465),
        "imap_implicit_tls": True,
        "submission_implicit_tls": True,
        "tls_peer_name": "mail.example.org",
        "des_key": DES_KEY,
        "database": Path("/var/lib/postmeister/webmail/roundcube.sqlite"),
        "config_dir": Path("/etc/postmeister/webmail"),
        "fpm_socket": Path("/run/php/postmeister-webmail.sock"),
        "log_dir": Path("/var/log/roundcube"),
        "temp_dir": Path("/var/lib/roundcube/temp"),
    }
    values.update(overrides)
    return Webmail(**values)  # type: ignore[arg-type]


def test_rendered_files_match_golden_files() -> None:
    rendered = {f.path: f.content for f in render_webmail(operator_webmail())}
    if UPDATE:
        for path, content in rendered.items():
            (GOLDEN / path).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / path).write_text(content)
    on_disk = {str(p.relative_to(GOLDEN)): p.read_text() for p in GOLDEN.rglob("*") if p.is_file()}
    assert sorted(rendered) == sorted(on_disk), "a file was added or removed"
    for path, content in rendered.items():
        assert content == on_disk[path], f"webmail-operator/{path} differs from its golden file"


def test_only_the_roundcube_configuration_is_secret_and_readable_by_php() -> None:
    files = render_webmail(operator_webmail())
    assert [(f.path, f.group) for f in files if f.secret] == [(CONFIG_FILE, "www-data")]
    assert [f.path for f in files if DES_KEY in f.content] == [CONFIG_FILE]


@pytest.mark.parametrize(
    ("implicit", "scheme"), [(True, "ssl://"), (False, "tls://")], ids=["implicit", "starttls"]
)
def test_roundcube_logs_in_and_sends_as_the_user_over_verified_tls(
    implicit: bool, scheme: str
) -> None:
    webmail = operator_webmail(
        imap=Endpoint("127.0.0.1", 993 if implicit else 143),
        submission=Endpoint("127.0.0.1", 465 if implicit else 587),
        imap_implicit_tls=implicit,
        submission_implicit_tls=implicit,
        ca_file=Path("/etc/ssl/company-ca.pem"),
    )
    config = {f.path: f.content for f in render_webmail(webmail)}[CONFIG_FILE]
    port = 993 if implicit else 143
    assert f"$config['imap_host'] = '{scheme}127.0.0.1:{port}';" in config
    assert "$config['smtp_user'] = '%u';" in config
    assert "$config['smtp_pass'] = '%p';" in config
    verified = re.findall(
        r"'verify_peer' => true, 'verify_peer_name' => true, "
        r"'peer_name' => 'mail.example.org', 'cafile' => '/etc/ssl/company-ca.pem'",
        config,
    )
    assert len(verified) == 2  # IMAP and submission
    assert "$config['identities_level'] = 3;" in config
    assert "managesieve" not in config


def test_a_quote_in_a_value_cannot_end_the_php_string() -> None:
    config = {
        f.path: f.content for f in render_webmail(operator_webmail(product_name="O'Brien \\ Co"))
    }[CONFIG_FILE]
    assert "$config['product_name'] = 'O\\'Brien \\\\ Co';" in config


def test_nginx_serves_https_only_with_tls_1_2_and_1_3() -> None:
    nginx = {f.path: f.content for f in render_webmail(operator_webmail())}[NGINX_FILE]
    assert "listen 0.0.0.0:443 ssl;" in nginx
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in nginx
    assert not re.search(r"listen [^;]*:80\b", nginx)
