"""The autoresponder over HTTP with a controlled clock: what `active` shows is whether it
answers now, dates switch it at local midnight in Europe/Berlin (also on the days the
clocks change), and a controller that was down catches up at start."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from postmeister.api.app import create_app
from postmeister.config import SchedulerSettings, Settings
from postmeister.models import Autoresponder
from tests.api.hosting.jsonapi import attributes_of, get, mailbox, patch, pointers
from tests.support.clock import ControlledClock
from tests.support.factories import Tenant
from tests.support.snapshot import snapshot

UTC = dt.UTC


def responder(client: TestClient, tenant: Tenant, address_id: str) -> dict[str, Any]:
    state: dict[str, Any] = attributes_of(get(client, tenant, address_id))["autoresponder"]
    return state


def stored(sessions: sessionmaker[Session]) -> tuple[bool, dt.date | None, dt.date | None]:
    with sessions() as session:
        row = session.scalar(select(Autoresponder))
        assert row is not None
        return row.active, row.activates, row.expires


def run_jobs(client: TestClient) -> None:
    app: FastAPI = client.app  # type: ignore[assignment]
    outcomes = app.state.scheduler.run_due()
    assert {outcome.outcome for outcome in outcomes} <= {"ran", "not-due"}


def test_text_and_switch(client: TestClient, alice: Tenant) -> None:
    info = mailbox(client, alice)
    response = patch(client, alice, info["id"], {"autoresponder": {"text": "Ich bin im Urlaub."}})
    assert attributes_of(response)["autoresponder"] == {
        "text": "Ich bin im Urlaub.",
        "active": False,
        "activates": None,
        "expires": None,
    }
    assert responder(client, alice, info["id"])["text"] == "Ich bin im Urlaub."
    on = patch(client, alice, info["id"], {"autoresponder": {"active": True}})
    assert attributes_of(on)["autoresponder"]["active"] is True
    assert attributes_of(on)["autoresponder"]["text"] == "Ich bin im Urlaub."
    off = patch(client, alice, info["id"], {"autoresponder": {"active": False}})
    assert attributes_of(off)["autoresponder"]["active"] is False


def test_spec_example_date_in_the_past_switches_on_at_once(
    client: TestClient, alice: Tenant
) -> None:
    info = mailbox(client, alice)
    response = patch(client, alice, info["id"], {"autoresponder": {"activates": "2020-03-05"}})
    assert attributes_of(response)["autoresponder"]["active"] is True
    assert attributes_of(response)["autoresponder"]["activates"] is None
    expired = patch(client, alice, info["id"], {"autoresponder": {"expires": "2020-03-06"}})
    assert attributes_of(expired)["autoresponder"]["active"] is False
    assert attributes_of(expired)["autoresponder"]["expires"] is None


def test_activation_shortly_after_local_midnight(
    client: TestClient, alice: Tenant, clock: ControlledClock, sessions: sessionmaker[Session]
) -> None:
    info = mailbox(client, alice)
    patch(
        client, alice, info["id"], {"autoresponder": {"text": "Urlaub", "activates": "2026-03-12"}}
    )
    assert responder(client, alice, info["id"]) == {
        "text": "Urlaub",
        "active": False,
        "activates": "2026-03-12",
        "expires": None,
    }
    clock.set(dt.datetime(2026, 3, 11, 22, 59, 59, tzinfo=UTC))  # 23:59:59 in Berlin (CET)
    assert responder(client, alice, info["id"])["active"] is False
    clock.set(dt.datetime(2026, 3, 11, 23, 0, 0, tzinfo=UTC))  # 00:00 on the 12th
    shown = responder(client, alice, info["id"])
    assert shown["active"] is True
    assert shown["activates"] is None
    run_jobs(client)
    assert stored(sessions) == (True, None, None)


def test_expiry_switches_off_and_a_later_switch_on_is_not_undone(
    client: TestClient, alice: Tenant, clock: ControlledClock, sessions: sessionmaker[Session]
) -> None:
    info = mailbox(client, alice)
    patch(client, alice, info["id"], {"autoresponder": {"active": True, "expires": "2026-03-20"}})
    assert responder(client, alice, info["id"])["expires"] == "2026-03-20"
    clock.set(dt.datetime(2026, 3, 19, 23, 0, 1, tzinfo=UTC))
    assert responder(client, alice, info["id"])["active"] is False
    run_jobs(client)
    assert stored(sessions) == (False, None, None)
    again = patch(client, alice, info["id"], {"autoresponder": {"active": True}})
    assert attributes_of(again)["autoresponder"]["active"] is True
    clock.advance(dt.timedelta(days=3))
    run_jobs(client)
    assert responder(client, alice, info["id"])["active"] is True


def test_a_vacation_window_in_one_request(
    client: TestClient, alice: Tenant, clock: ControlledClock
) -> None:
    info = mailbox(client, alice)
    response = patch(
        client,
        alice,
        info["id"],
        {"autoresponder": {"text": "Bis bald", "activates": "2026-04-01", "expires": "2026-04-15"}},
    )
    assert attributes_of(response)["autoresponder"] == {
        "text": "Bis bald",
        "active": False,
        "activates": "2026-04-01",
        "expires": "2026-04-15",
    }
    expected = [
        (dt.datetime(2026, 3, 31, 21, 59, tzinfo=UTC), False),  # 23:59 CEST, March 31st
        (dt.datetime(2026, 3, 31, 22, 0, 30, tzinfo=UTC), True),  # 00:00:30, April 1st
        (dt.datetime(2026, 4, 14, 21, 59, tzinfo=UTC), True),
        (dt.datetime(2026, 4, 14, 22, 0, 30, tzinfo=UTC), False),
    ]
    for instant, active in expected:
        clock.set(instant)
        run_jobs(client)
        assert responder(client, alice, info["id"])["active"] is active, instant


@pytest.mark.parametrize(
    ("dates", "before", "after"),
    [
        # 2026-03-29: clocks go forward at 02:00 CET; local midnight is 23:00 UTC the day before.
        (
            {"activates": "2026-03-29"},
            dt.datetime(2026, 3, 28, 22, 59, 59),
            dt.datetime(2026, 3, 28, 23, 0, 0),
        ),
        # 2026-10-25: clocks go back at 03:00 CEST; local midnight is 22:00 UTC the day before.
        (
            {"activates": "2026-10-25"},
            dt.datetime(2026, 10, 24, 21, 59, 59),
            dt.datetime(2026, 10, 24, 22, 0, 0),
        ),
        # The day after each change, midnight is at the new offset.
        (
            {"activates": "2026-03-30"},
            dt.datetime(2026, 3, 29, 21, 59, 59),
            dt.datetime(2026, 3, 29, 22, 0, 0),
        ),
        (
            {"activates": "2026-10-26"},
            dt.datetime(2026, 10, 25, 22, 59, 59),
            dt.datetime(2026, 10, 25, 23, 0, 0),
        ),
    ],
)
def test_switching_across_daylight_saving_changes(
    client: TestClient,
    alice: Tenant,
    clock: ControlledClock,
    sessions: sessionmaker[Session],
    dates: dict[str, str],
    before: dt.datetime,
    after: dt.datetime,
) -> None:
    info = mailbox(client, alice)
    patch(client, alice, info["id"], {"autoresponder": {"text": "Weg", **dates}})
    clock.set(before.replace(tzinfo=UTC))
    run_jobs(client)
    assert responder(client, alice, info["id"])["active"] is False
    assert stored(sessions)[1] is not None  # the activation is still pending
    clock.set(after.replace(tzinfo=UTC))
    assert responder(client, alice, info["id"])["active"] is True
    run_jobs(client)
    assert stored(sessions) == (True, None, None)


def test_expiry_across_the_autumn_change(
    client: TestClient, alice: Tenant, clock: ControlledClock, sessions: sessionmaker[Session]
) -> None:
    info = mailbox(client, alice)
    patch(client, alice, info["id"], {"autoresponder": {"active": True, "expires": "2026-10-25"}})
    clock.set(dt.datetime(2026, 10, 24, 21, 59, 59, tzinfo=UTC))  # 23:59:59 CEST
    run_jobs(client)
    assert responder(client, alice, info["id"])["active"] is True
    assert stored(sessions) == (True, None, dt.date(2026, 10, 25))
    clock.set(dt.datetime(2026, 10, 24, 22, 0, 0, tzinfo=UTC))  # 00:00 CEST on the 25th
    run_jobs(client)
    assert responder(client, alice, info["id"])["active"] is False
    assert stored(sessions) == (False, None, None)


def test_cancelling_dates_with_null(
    client: TestClient, alice: Tenant, clock: ControlledClock
) -> None:
    info = mailbox(client, alice)
    patch(
        client,
        alice,
        info["id"],
        {"autoresponder": {"activates": "2026-03-15", "expires": "2026-03-20"}},
    )
    cancelled = patch(client, alice, info["id"], {"autoresponder": {"activates": None}})
    assert attributes_of(cancelled)["autoresponder"] == {
        "text": "",
        "active": False,
        "activates": None,
        "expires": "2026-03-20",
    }
    clock.set(dt.datetime(2026, 3, 16, 12, 0, tzinfo=UTC))
    assert responder(client, alice, info["id"])["active"] is False
    patch(client, alice, info["id"], {"autoresponder": {"active": True}})
    no_end = patch(client, alice, info["id"], {"autoresponder": {"expires": None}})
    assert attributes_of(no_end)["autoresponder"]["expires"] is None
    clock.set(dt.datetime(2026, 3, 25, 12, 0, tzinfo=UTC))
    assert responder(client, alice, info["id"])["active"] is True


def test_switching_on_cancels_a_pending_activation(client: TestClient, alice: Tenant) -> None:
    info = mailbox(client, alice)
    patch(client, alice, info["id"], {"autoresponder": {"activates": "2026-06-01"}})
    on = patch(client, alice, info["id"], {"autoresponder": {"active": True}})
    assert attributes_of(on)["autoresponder"]["active"] is True
    assert attributes_of(on)["autoresponder"]["activates"] is None
    later = patch(
        client, alice, info["id"], {"autoresponder": {"active": False, "activates": "2026-06-01"}}
    )
    assert attributes_of(later)["autoresponder"]["active"] is False
    assert attributes_of(later)["autoresponder"]["activates"] == "2026-06-01"


@pytest.mark.parametrize(
    ("autoresponder", "pointer"),
    [
        ({"active": True, "activates": "2026-06-01"}, "/data/attributes/autoresponder/active"),
        (
            {"activates": "2026-06-10", "expires": "2026-06-01"},
            "/data/attributes/autoresponder/expires",
        ),
        ({"activates": "05.03.2026"}, "/data/attributes/autoresponder/activates"),
        ({"activates": "2026-02-30"}, "/data/attributes/autoresponder/activates"),
        ({"expires": "2026-03-05T00:00:00"}, "/data/attributes/autoresponder/expires"),
        ({"expires": 20260305}, "/data/attributes/autoresponder/expires"),
        ({"text": "x" * 65537}, "/data/attributes/autoresponder/text"),
        ({"text": "bad \u0000 byte"}, "/data/attributes/autoresponder/text"),
        ({"text": None}, "/data/attributes/autoresponder/text"),
    ],
)
def test_invalid_autoresponder_changes(
    client: TestClient,
    alice: Tenant,
    sessions: sessionmaker[Session],
    autoresponder: dict[str, Any],
    pointer: str,
) -> None:
    info = mailbox(client, alice)
    before = snapshot(sessions)
    response = patch(client, alice, info["id"], {"autoresponder": autoresponder})
    assert response.status_code == 422, response.text
    assert pointers(response) == [pointer]
    assert snapshot(sessions) == before


def test_multiline_text_is_fine(client: TestClient, alice: Tenant) -> None:
    info = mailbox(client, alice)
    text = "Guten Tag,\r\n\tich bin bis Montag im Urlaub.\n\nGrüße"
    response = patch(client, alice, info["id"], {"autoresponder": {"text": text}})
    assert attributes_of(response)["autoresponder"]["text"] == text


def test_missed_switches_are_caught_up_at_start(
    client: TestClient, alice: Tenant, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    info = mailbox(client, alice)
    patch(client, alice, info["id"], {"autoresponder": {"active": True, "expires": "2026-03-12"}})
    assert stored(sessions) == (True, None, dt.date(2026, 3, 12))
    # The controller was down over the 12th; it starts again on the 15th.
    later = ControlledClock(dt.datetime(2026, 3, 15, 8, 0, tzinfo=UTC))
    with TestClient(create_app(settings, clock=later), base_url="https://testserver"):
        assert stored(sessions) == (False, None, None)


def test_the_scheduler_ticks_in_the_background(
    settings: Settings, alice: Tenant, sessions: sessionmaker[Session]
) -> None:
    fast = settings.model_copy(update={"scheduler": SchedulerSettings(tick_seconds=0.05)})
    clock = ControlledClock(dt.datetime(2026, 3, 10, 11, 0, tzinfo=UTC))
    with TestClient(create_app(fast, clock=clock), base_url="https://testserver") as client:
        info = mailbox(client, alice)
        patch(
            client, alice, info["id"], {"autoresponder": {"active": True, "expires": "2026-03-11"}}
        )
        clock.set(dt.datetime(2026, 3, 10, 23, 0, 5, tzinfo=UTC))  # 00:00:05 on the 11th
        deadline = time.monotonic() + 10
        while stored(sessions)[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stored(sessions) == (False, None, None)
