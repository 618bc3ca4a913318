"""The contract views mean the same on SQLite and PostgreSQL, and the migration matches them."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from postmeister import models as m
from postmeister.dataplane.contract import MAILBOX_USAGE_TABLE, SENDER_LOOKUP, VIEWS, View
from postmeister.dataplane.milter.lookups import MAY_SEND_AS, POLICY_OF
from postmeister.dataplane.render.dovecot import (
    APP_PASSDB_QUERY,
    DICT_MAPS,
    PASSDB_QUERY,
    USER_QUERY,
)
from postmeister.dataplane.render.postfix import MAPS
from postmeister.db import unit_of_work

VERSIONS = Path(__file__).parents[2] / "src/postmeister/migrations/versions"


def seed(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        customer = m.Customer(name="Contract GmbH")
        session.add(customer)
        session.flush()
        package = m.Package(
            customer_id=customer.id,
            name="default",
            mailbox_messages_per_day=100,
            domain_recipients_per_hour=1000,
        )
        session.add(package)
        session.flush()
        domain = m.Domain(
            customer_id=customer.id,
            package_id=package.id,
            name="xn--mller-kva.example",
            display_name="müller.example",
        )
        session.add(domain)
        session.flush()
        # An alias domain of it (mail to x@alias goes to x@müller), and a catch-all.
        session.add(
            m.Domain(
                customer_id=customer.id,
                package_id=package.id,
                name="alias.example",
                display_name="alias.example",
                alias_of_id=domain.id,
            )
        )

        def address(local: str, kind: str, **extra: Any) -> m.Address:
            row = m.Address(
                domain_id=domain.id,
                address=f"{local}@xn--mller-kva.example",
                local_part=local,
                kind=kind,
                **extra,
            )
            session.add(row)
            session.flush()
            return row

        anna = address(
            "anna",
            "mailbox",
            password_hash="$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
            quota_bytes=1_000_000,
            subaddress_extension=True,
        )
        ben = address("ben", "mailbox", password_hash="$6$salt$hash", submission_disabled=True)
        keep = address("keep", "mailbox", password_hash="$y$j9T$salt$hash", antispam="junk-folder")
        team = address("team", "forward", antispam="none")
        address("nopass", "mailbox")
        session.add_all(
            [
                m.ForwardTarget(
                    address_id=team.id, position=0, target="anna@xn--mller-kva.example"
                ),
                m.ForwardTarget(address_id=team.id, position=1, target="someone@elsewhere.example"),
                m.ForwardTarget(address_id=keep.id, position=0, target="ben@xn--mller-kva.example"),
                m.CatchallTarget(domain_id=domain.id, position=0, target=f"keep@{D}"),
                m.SenderPermission(
                    address_id=anna.id, position=0, pattern="team@xn--mller-kva.example"
                ),
                m.SenderPermission(address_id=anna.id, position=1, pattern="elsewhere.example"),
                m.SenderPermission(address_id=ben.id, position=0, pattern="*"),
                m.AppPassword(
                    address_id=anna.id, device="phone", application="mail", secret_hash="ab" * 32
                ),
                # Anna's own limits: one replaces the package's, the rest stay the package's.
                m.SendingLimitOverride(address_id=anna.id, messages_per_hour=5),
                m.SendingLimitOverride(address_id=ben.id, messages_per_day=7),
                m.Autoresponder(
                    address_id=anna.id,
                    text='Away "until" \\ Monday\nÜbermorgen',
                    active=True,
                    activates=dt.date(2030, 3, 5),
                    expires=dt.date(2030, 3, 9),
                ),
                # DKIM: the signing keys are in the views, a retired one is not.
                m.DkimKey(
                    domain_id=domain.id,
                    selector="pm2030a",
                    algorithm="rsa",
                    private_key="RSA-PEM-A",
                    public_key="pub-a",
                    retired_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
                    published_until=dt.datetime(2030, 1, 8, tzinfo=dt.UTC),
                ),
                m.DkimKey(
                    domain_id=domain.id,
                    selector="pm2030b",
                    algorithm="rsa",
                    private_key="RSA-PEM-B",
                    public_key="pub-b",
                ),
                m.DkimKey(
                    domain_id=domain.id,
                    selector="pm2030b-ed",
                    algorithm="ed25519",
                    private_key="ED-PEM-B",
                    public_key="pub-e",
                ),
            ]
        )


def rows(
    sessions: sessionmaker[Session], view: View, columns: tuple[str, ...]
) -> set[tuple[Any, ...]]:
    with sessions() as session:
        result = session.execute(text(f"SELECT {', '.join(columns)} FROM {view.name}"))  # noqa: S608
        return {tuple(row) for row in result}


D = "xn--mller-kva.example"
SIEVE_REQUIRE = 'require ["date", "fileinto", "mailbox", "relational", "vacation"];\n'
EXPECTED: dict[str, tuple[tuple[str, ...], set[tuple[Any, ...]]]] = {
    "dataplane_v1_dkim_rsa_keys": (
        ("domain", "selector", "private_key"),
        {(D, "pm2030b", "RSA-PEM-B")},
    ),
    "dataplane_v1_dkim_ed25519_keys": (
        ("domain", "selector", "private_key"),
        {(D, "pm2030b-ed", "ED-PEM-B")},
    ),
    "dataplane_v1_domains": (("domain",), {(D,), ("alias.example",)}),  # customer_id: tenancy
    "dataplane_v1_mailboxes": (
        ("address", "domain", "local_part", "quota_bytes", "subaddress_extension"),
        {
            (f"anna@{D}", D, "anna", 1_000_000, 1),
            (f"ben@{D}", D, "ben", None, 0),
            (f"keep@{D}", D, "keep", None, 0),
            (f"nopass@{D}", D, "nopass", None, 0),
        },
    ),
    "dataplane_v1_aliases": (
        ("address", "target"),
        {
            (f"team@{D}", f"anna@{D}"),
            (f"team@{D}", "someone@elsewhere.example"),
            (f"keep@{D}", f"ben@{D}"),
            (f"keep@{D}", f"keep@{D}"),
        },
    ),
    "dataplane_v1_alias_domains": (("alias_domain", "domain"), {("alias.example", D)}),
    "dataplane_v1_catchall": (
        ("domain", "target"),
        {(D, f"keep@{D}"), ("alias.example", f"keep@{D}")},
    ),
    "dataplane_v1_logins": (
        ("username", "password_scheme", "submission_disabled"),
        {(f"anna@{D}", "ARGON2ID", 0), (f"ben@{D}", "CRYPT", 1), (f"keep@{D}", "CRYPT", 0)},
    ),
    "dataplane_v1_app_passwords": (
        ("username", "secret_sha256", "submission_disabled"),
        {(f"anna@{D}", "ab" * 32, 0)},
    ),
    "dataplane_v1_sender_logins": (
        ("sender", "login"),
        {
            (f"anna@{D}", f"anna@{D}"),
            (f"ben@{D}", f"ben@{D}"),
            (f"keep@{D}", f"keep@{D}"),
            (f"nopass@{D}", f"nopass@{D}"),
            (f"team@{D}", f"anna@{D}"),
            ("elsewhere.example", f"anna@{D}"),
            ("*", f"ben@{D}"),
        },
    ),
    "dataplane_v1_recipient_policies": (
        ("address", "kind", "antispam"),
        {
            (f"anna@{D}", "mailbox", "reject"),
            (f"ben@{D}", "mailbox", "reject"),
            (f"keep@{D}", "mailbox", "junk-folder"),
            (f"nopass@{D}", "mailbox", "reject"),
            (f"team@{D}", "forward", "none"),
        },
    ),
    "dataplane_v1_autoresponders": (
        ("username", "text", "active", "activates", "expires"),
        {(f"anna@{D}", 'Away "until" \\ Monday\nÜbermorgen', 1, "2030-03-05", "2030-03-09")},
    ),
    "dataplane_v1_sending_limits": (
        (
            "username", "domain", "messages_per_hour", "messages_per_day", "recipients_per_hour",
            "recipients_per_day", "domain_messages_per_hour", "domain_messages_per_day",
            "domain_recipients_per_hour", "domain_recipients_per_day",
        ),
        {
            (f"anna@{D}", D, 5, 100, None, None, None, None, 1000, None),
            (f"ben@{D}", D, None, 7, None, None, None, None, 1000, None),
            (f"keep@{D}", D, None, 100, None, None, None, None, 1000, None),
            (f"nopass@{D}", D, None, 100, None, None, None, None, 1000, None),
        },
    ),
    "dataplane_v1_sieve_scripts": (
        ("username", "script_name", "script_id", "script"),
        {
            (
                f"anna@{D}",
                "postmeister",
                f"anna@{D}",
                'require ["date", "fileinto", "mailbox", "relational", "vacation"];\n'
                'if allof(not header :is "X-Spam" "Yes", '
                'currentdate :value "ge" "date" "2030-03-05", '
                'currentdate :value "lt" "date" "2030-03-09") {\n'
                "  vacation :days 7 text:\n"
                'Away "until" \\ Monday\nÜbermorgen\n.\n;\n}\n',
            ),
            (f"ben@{D}", "postmeister", f"ben@{D}", SIEVE_REQUIRE),
            (
                f"keep@{D}",
                "postmeister",
                f"keep@{D}",
                SIEVE_REQUIRE
                + 'if header :is "X-Spam" "Yes" {\n  fileinto :create "Junk";\n  stop;\n}\n',
            ),
            (f"nopass@{D}", "postmeister", f"nopass@{D}", SIEVE_REQUIRE),
        },
    ),
}


def test_every_view_returns_the_same_rows_on_this_database(
    sessions: sessionmaker[Session],
) -> None:
    seed(sessions)
    assert set(EXPECTED) == {v.name for v in VIEWS}
    for view in VIEWS:
        columns, expected = EXPECTED[view.name]
        assert rows(sessions, view, columns) == expected, view.name


def test_autoresponder_version_changes_when_the_row_changes(
    sessions: sessionmaker[Session],
) -> None:
    seed(sessions)
    view = next(v for v in VIEWS if v.name == "dataplane_v1_autoresponders")
    (before,) = rows(sessions, view, ("version",))
    with unit_of_work(sessions) as session:
        responder = session.query(m.Autoresponder).one()
        responder.updated_at = dt.datetime(2031, 1, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
        responder.text = "changed"
    (after,) = rows(sessions, view, ("version",))
    assert before != after


def test_view_columns_are_the_documented_ones(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        for view in VIEWS:
            result = session.execute(text(f"SELECT * FROM {view.name} WHERE 1 = 0"))  # noqa: S608
            assert tuple(result.keys()) == view.column_names, view.name


def _migration(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"migration_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _newest_snapshot() -> dict[str, dict[str, str]]:
    """The view snapshot of the newest migration that has one (others change tables)."""
    for path in sorted(VERSIONS.glob("[0-9]*.py"), reverse=True):
        module = _migration(path)
        if hasattr(module, "VIEWS"):
            snapshot: dict[str, dict[str, str]] = module.VIEWS
            return snapshot
    raise AssertionError("no migration defines the contract views")


def test_newest_migration_snapshot_equals_the_contract() -> None:
    snapshot = _newest_snapshot()
    assert list(snapshot) == [v.name for v in VIEWS]
    for view in VIEWS:
        for dialect in ("sqlite", "postgresql"):
            assert snapshot[view.name][dialect].strip() == view.sql_for(dialect), view.name


def test_every_query_reads_only_contract_views() -> None:
    names = {v.name for v in VIEWS}
    queries = [*(mp.query for mp in MAPS), PASSDB_QUERY, APP_PASSDB_QUERY, USER_QUERY]
    # The dict reads Sieve scripts from a view and writes usage into the one contract table.
    for dict_map in DICT_MAPS:
        assert dict_map.table in {*names, MAILBOX_USAGE_TABLE}, dict_map.pattern
    for query in queries:
        assert any(name in query for name in names), query
        assert " addresses" not in query and " domains " not in query, query
    for postfix_map in MAPS:
        assert postfix_map.view.name in postfix_map.query


def test_postfix_and_the_milter_ask_the_one_sender_lookup() -> None:
    """The envelope check and the header check are one statement (issue 10: a second copy
    of a rule drifts); only the milter's login filter is added."""
    (sender_map,) = [mp for mp in MAPS if mp.parameter == "smtpd_sender_login_maps"]
    assert sender_map.query == SENDER_LOOKUP.format(address="'%u@%d'", domain="'%d'")
    assert MAY_SEND_AS.startswith(SENDER_LOOKUP)
    names = {v.name for v in VIEWS}
    for query in (MAY_SEND_AS, POLICY_OF):
        assert any(name in query for name in names), query
        assert " addresses" not in query and " sender_permissions" not in query, query


def test_a_suspended_customers_mailboxes_cannot_log_in_but_still_receive(
    sessions: sessionmaker[Session],
) -> None:
    seed(sessions)
    with unit_of_work(sessions) as session:
        session.query(m.Customer).one().suspended_at = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    by_name = {view.name: view for view in VIEWS}
    for name in ("dataplane_v1_logins", "dataplane_v1_app_passwords"):
        assert rows(sessions, by_name[name], EXPECTED[name][0]) == set(), name
    for name in ("dataplane_v1_mailboxes", "dataplane_v1_aliases", "dataplane_v1_domains"):
        columns, expected = EXPECTED[name]
        assert rows(sessions, by_name[name], columns) == expected, name
    with unit_of_work(sessions) as session:
        session.query(m.Customer).one().suspended_at = None
    for name in ("dataplane_v1_logins", "dataplane_v1_app_passwords"):
        columns, expected = EXPECTED[name]
        assert rows(sessions, by_name[name], columns) == expected, name
