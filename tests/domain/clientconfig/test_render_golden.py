"""The client configuration documents, byte for byte, against reviewed golden files.

A change to a renderer shows up here as a diff of what a mail client would be told. After
reviewing it, regenerate with `POSTMEISTER_UPDATE_GOLDEN=1 pytest tests/domain/clientconfig`.
"""

from __future__ import annotations

import os
import plistlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from postmeister.config import ClientSettings, DataplaneSettings, Settings
from postmeister.domain.clientconfig import render
from postmeister.domain.clientconfig.schemas import ClientProfile, servers_from

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("POSTMEISTER_UPDATE_GOLDEN") == "1"


def profile(**overrides: object) -> ClientProfile:
    settings = ClientSettings.model_validate(overrides.pop("settings", {}))
    values: dict[str, object] = {
        "domain": "example.org",
        "display_name": "Example Mail",
        "login_domain": "example.org",
        "servers": servers_from(settings, str(overrides.pop("host", "mail.example.net"))),
    }
    values.update(overrides)
    return ClientProfile(**values)  # type: ignore[arg-type]


STANDARD = profile()
# An alias domain: logins are in the domain it aliases. An IDN: names are A-labels.
ALIAS_IDN = profile(
    domain="xn--strae-oqa.example", display_name="straße.example", login_domain="example.org"
)
# Only implicit TLS, no POP3, other ports: what is not offered is left out.
TLS_ONLY = profile(
    settings={
        "imap_starttls_port": None,
        "pop3_tls_port": None,
        "pop3_starttls_port": None,
        "submission_starttls_port": None,
        "imap_tls_port": 10993,
        "submission_tls_port": 10465,
    },
    host="imap.example.net",
)
PROFILES = {"standard": STANDARD, "alias-idn": ALIAS_IDN, "tls-only": TLS_ONLY}

DOCUMENTS: dict[str, Callable[[ClientProfile], bytes]] = {
    "config-v1.1.xml": render.autoconfig,
    "autodiscover.xml": lambda p: render.autodiscover(p, p.account("info")),
    "info.mobileconfig": lambda p: render.mobileconfig(p, p.account("info")),
    "srv.zone": lambda p: render.srv_records(p).encode(),
}


@pytest.mark.parametrize("case", sorted(PROFILES))
def test_documents_match_golden_files(case: str) -> None:
    directory = GOLDEN / case
    rendered = {name: document(PROFILES[case]) for name, document in DOCUMENTS.items()}
    if UPDATE:
        directory.mkdir(parents=True, exist_ok=True)
        for name, content in rendered.items():
            (directory / name).write_bytes(content)
    on_disk = {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}
    assert sorted(rendered) == sorted(on_disk), "a document was added or removed"
    for name, content in rendered.items():
        assert content == on_disk[name], f"{case}/{name} differs from its golden file"


def test_rendering_is_deterministic() -> None:
    for document in DOCUMENTS.values():
        assert document(profile()) == document(profile())


def test_a_hostile_display_name_stays_text() -> None:
    """Names are element text, escaped by ElementTree/plistlib, never markup."""
    hostile = '</displayName><incomingServer type="imap"><hostname>evil.example'
    mine = profile(display_name=hostile)
    autoconfig = ET.fromstring(render.autoconfig(mine))  # noqa: S314 (our own output)
    assert autoconfig.findtext("emailProvider/displayName") == hostile
    assert len(autoconfig.findall("emailProvider/incomingServer")) == 4
    assert (
        plistlib.loads(render.mobileconfig(mine, mine.account("a")))["PayloadOrganization"]
        == hostile
    )


def test_profile_uuids_are_stable_per_address_and_differ_between_addresses() -> None:
    def uuids(local: str, host: str) -> tuple[str, str]:
        mine = profile(host=host)
        document = plistlib.loads(render.mobileconfig(mine, mine.account(local)))
        return document["PayloadUUID"], document["PayloadContent"][0]["PayloadUUID"]

    assert uuids("info", "mail.example.net") == uuids("info", "other.example.net")
    assert uuids("info", "mail.example.net") != uuids("sales", "mail.example.net")
    assert len(set(uuids("info", "mail.example.net"))) == 2


def test_settings_must_offer_imap_and_submission() -> None:
    with pytest.raises(ValueError, match="IMAP"):
        ClientSettings(imap_tls_port=None, imap_starttls_port=None)
    with pytest.raises(ValueError, match="submission"):
        ClientSettings(submission_tls_port=None, submission_starttls_port=None)


def test_the_readme_lists_the_srv_records_of_the_default_settings() -> None:
    # The defaults, whatever the environment says.
    settings = Settings(client=ClientSettings(), dataplane=DataplaneSettings())
    example = ClientProfile(
        domain="example.com",
        display_name="example.com",
        login_domain="example.com",
        servers=servers_from(settings.client, settings.client_host),
    )
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    section = readme[readme.index("## Client autoconfiguration") :]
    assert "```\n" + render.srv_records(example) + "```\n" in section


def test_a_service_is_left_out_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTMEISTER_CLIENT__POP3_TLS_PORT", "null")
    monkeypatch.setenv("POSTMEISTER_CLIENT__POP3_STARTTLS_PORT", "")
    monkeypatch.setenv("POSTMEISTER_CLIENT__IMAP_TLS_PORT", "10993")
    settings = Settings()
    servers = servers_from(settings.client, settings.client_host)
    assert [(s.protocol, s.port) for s in servers] == [
        ("imap", 10993),
        ("imap", 143),
        ("smtp", 465),
        ("smtp", 587),
    ]
