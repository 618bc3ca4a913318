"""`/email-addresses/{id}/sending-limits`: a mailbox's sending limits and what it sent.

GET shows the mailbox's own limits (null: its package's), the effective ones, its domain's,
and the counts of this hour and today (UTC) from every mail node. PATCH sets own limits; a
customer may only tighten the package's, an admin may set any (`domain.sending_limits`).
Another customer's mailbox, or a forward, is 404 like a missing one.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import Body, Depends, Request, Response
from pydantic import BaseModel, Field, StrictInt, StrictStr

from postmeister.api.common import current_actor, transaction
from postmeister.api.hosting import requests
from postmeister.api.hosting.media import JSONAPI, JsonApiResponse
from postmeister.api.hosting.render import BASE_PATH, SelfLink
from postmeister.api.hosting.resources import (
    Members,
    ResourceDocument,
    Strict,
    document,
    id_path,
    router,
    self_link,
)
from postmeister.domain.access import Actor
from postmeister.domain.sending_limits import service
from postmeister.domain.sending_limits.rules import Limits as DomainLimits
from postmeister.scheduler.clock import Calendar

TYPE: Final = "sending-limits"
routes = router(BASE_PATH, "sending limits (JSON:API)")
AddressId = Annotated[str, id_path("the mailbox's id")]
_OWN = "the mailbox's own limit; null: its package's"


class Limits(BaseModel):
    messages_per_hour: int | None
    messages_per_day: int | None
    recipients_per_hour: int | None
    recipients_per_day: int | None


class Usage(BaseModel):
    messages_this_hour: int
    recipients_this_hour: int
    messages_today: int
    recipients_today: int


class SendingLimitsAttributes(BaseModel):
    address: str
    messages_per_hour: int | None = Field(description=_OWN)
    messages_per_day: int | None = Field(description=_OWN)
    recipients_per_hour: int | None = Field(description=_OWN)
    recipients_per_day: int | None = Field(description=_OWN)
    effective: Limits = Field(description="what the mail nodes apply; null: no limit")
    domain_limits: Limits = Field(description="of all the domain's mailboxes together")
    usage: Usage = Field(description="sent by this mailbox this UTC hour and today")
    domain_usage: Usage = Field(description="sent by all mailboxes of the domain")


class SendingLimitsResource(BaseModel):
    type: Literal["sending-limits"]
    id: str
    attributes: SendingLimitsAttributes
    links: SelfLink


class SendingLimitsPatchAttributes(Strict):
    """Only what is given changes; null: the package's limit again."""

    messages_per_hour: StrictInt | None = Field(default=None, description=_OWN)
    messages_per_day: StrictInt | None = Field(default=None, description=_OWN)
    recipients_per_hour: StrictInt | None = Field(default=None, description=_OWN)
    recipients_per_day: StrictInt | None = Field(default=None, description=_OWN)


class SendingLimitsPatchResource(Strict):
    type: Literal["sending-limits"]
    id: StrictStr
    attributes: SendingLimitsPatchAttributes
    meta: Members | None = None


class SendingLimitsPatchDocument(Strict):
    data: SendingLimitsPatchResource
    jsonapi: Members | None = None
    meta: Members | None = None


def path_of(address_id: int) -> str:
    return f"{BASE_PATH}/{address_id}/sending-limits"


def _limits(limits: DomainLimits) -> Limits:
    return Limits(**limits.as_dict())


def resource(found: service.SendingLimits) -> SendingLimitsResource:
    return SendingLimitsResource(
        type="sending-limits",
        id=str(found.address.id),
        attributes=SendingLimitsAttributes(
            address=found.address.address,
            **found.own.as_dict(),
            effective=_limits(found.effective),
            domain_limits=_limits(found.domain),
            usage=Usage(**vars(found.usage)),
            domain_usage=Usage(**vars(found.domain_usage)),
        ),
        links=self_link(path_of(found.address.id)),
    )


def _calendar(request: Request) -> Calendar:
    calendar: Calendar = request.app.state.calendar
    return calendar


@routes.get(
    "/{address_id}/sending-limits",
    response_model=ResourceDocument[SendingLimitsResource],
    summary="Get a mailbox's sending limits and what it sent",
)
def get_sending_limits(
    request: Request, address_id: AddressId, actor: Annotated[Actor, Depends(current_actor)]
) -> Response:
    key = requests.parse_id(address_id)
    with transaction(request) as session:
        found = service.sending_limits_of(session, actor, key, now=_calendar(request).now())
        return JsonApiResponse(document(resource(found), path_of(key)))


@routes.patch(
    "/{address_id}/sending-limits",
    response_model=ResourceDocument[SendingLimitsResource],
    summary="Set a mailbox's own sending limits",
)
def change_sending_limits(
    request: Request,
    address_id: AddressId,
    body: Annotated[SendingLimitsPatchDocument, Body(media_type=JSONAPI)],
    actor: Annotated[Actor, Depends(current_actor)],
) -> Response:
    """A customer may only set limits at or below its package's; an admin may set any."""
    key = requests.parse_id(address_id)
    requests.check_id(body.data.id, address_id)
    attributes = body.data.attributes
    changes = {name: getattr(attributes, name) for name in attributes.model_fields_set}
    with transaction(request) as session:
        found = service.change_sending_limits(
            session, actor, key, changes, now=_calendar(request).now()
        )
        return JsonApiResponse(document(resource(found), path_of(key)))
