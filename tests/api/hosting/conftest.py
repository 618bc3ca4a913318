"""The app with a controlled clock: 2026-03-10 12:00 in Berlin unless a test moves it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from postmeister.api.app import create_app
from postmeister.config import Settings
from tests.support.clock import ControlledClock

START = dt.datetime(2026, 3, 10, 11, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> ControlledClock:
    return ControlledClock(START)


@pytest.fixture
def client(settings: Settings, clock: ControlledClock) -> Iterator[TestClient]:
    with TestClient(create_app(settings, clock=clock), base_url="https://testserver") as client:
        yield client
