"""The transactional outbox: deliveries queued in the transaction of the change."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from postmeister.domain.audit.schemas import Event


def enqueue(session: Session, events: Sequence[Event]) -> None:
    """Queue a delivery of each event to every endpoint that subscribed to it."""
    del session, events  # endpoints and deliveries land with the webhooks work (issue 12)
