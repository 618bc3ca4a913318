"""`postmeister domain dns DOMAIN [--zone]` as a real process on both databases, against a
real DNS server (NSD on loopback): the zone snippet to publish, the live check as JSON, and
an exit status that says whether every record is ok."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from postmeister.config import Settings
from tests.support.dns_server import NsdServer, nsd
from tests.support.factories import make_tenant
from tests.support.processes import CliWorker, cli


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NsdServer]:
    with nsd(tmp_path_factory.mktemp("nsd")) as server:
        yield server


def env_for(settings: Settings, server: NsdServer) -> dict[str, str]:
    return {
        **os.environ,
        "POSTMEISTER_DATA_DIR": str(settings.data_dir),
        "POSTMEISTER_DATABASE_URL": settings.resolved_database_url,
        "POSTMEISTER_DNS__RESOLVERS": server.address,
        "POSTMEISTER_DNS__TIMEOUT_SECONDS": "2",
        "POSTMEISTER_DATAPLANE__HOSTNAME": "mx.provider.example",
    }


def test_domain_dns_prints_the_zone_and_checks_it(
    settings: Settings,
    sessions: sessionmaker[Session],
    dns_server: NsdServer,
    postmeister_cli: CliWorker,
) -> None:
    make_tenant(sessions, name="Müller KG", domain="müller.example")
    env = env_for(settings, dns_server)

    zone = cli("domain", "dns", "Müller.Example", "--zone", env=env)
    assert zone.returncode == 0, zone.stderr
    assert "xn--mller-kva.example. 3600 IN MX 10 mx.provider.example.\n" in zone.stdout
    dns_server.publish("xn--mller-kva.example", "")

    missing = cli("domain", "dns", "müller.example", env=env)
    assert missing.returncode == 1, missing.stderr
    shown = json.loads(missing.stdout)
    assert (shown["domain"], shown["ok"]) == ("müller.example", False)
    assert {r["state"] for r in shown["records"]} == {"missing"}

    dns_server.publish("xn--mller-kva.example", zone.stdout)
    published = postmeister_cli("domain", "dns", "xn--mller-kva.example", env=env)
    assert published.returncode == 0, published.stdout
    assert json.loads(published.stdout)["ok"] is True

    wrong = zone.stdout.replace("IN MX 10 mx.provider.example.", "IN MX 10 mx.elsewhere.example.")
    dns_server.publish("xn--mller-kva.example", wrong)
    different = postmeister_cli("domain", "dns", "müller.example", env=env)
    assert different.returncode == 1
    (mx,) = [r for r in json.loads(different.stdout)["records"] if r["state"] != "ok"]
    assert (mx["type"], mx["state"], mx["found"]) == (
        "MX",
        "different",
        ["10 mx.elsewhere.example."],
    )

    unknown = postmeister_cli("domain", "dns", "nowhere.example", env=env)
    assert unknown.returncode == 1
    assert "nowhere.example" in unknown.stderr and unknown.stdout == ""
