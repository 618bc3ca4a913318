"""Mail nodes and mailbox homes (admins only; issue 17): JSON:API documents like `/customers`.

- `GET /mail-nodes`, `POST /mail-nodes`: the node registry, each node with its number of
  mailboxes; `PATCH /mail-nodes/{name}`: `state` active | draining.
- `GET /email-addresses/{id}/home-node`, `PATCH` it: where a mailbox lives, and the switch
  to another node (the mail already stored is not copied yet: the dsync move comes later).

To a customer's token every route answers 404, as for a missing node or mailbox.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import Body, Depends, Path, Request, Response
from pydantic import BaseModel, Field, StrictInt, StrictStr

from postmeister.api.common import current_actor, transaction
from postmeister.api.hosting import requests
from postmeister.api.hosting.media import JSONAPI, JsonApiResponse
from postmeister.api.hosting.render import PageLinks, SelfLink
from postmeister.api.hosting.resources import (
    CollectionDocument,
    Members,
    ResourceDocument,
    Strict,
    collection,
    created,
    document,
    id_path,
    router,
    self_link,
)
from postmeister.domain.access import Actor
from postmeister.domain.placement import service
from postmeister.domain.placement.rules import NodeState

NODES: Final = "/mail-nodes"
routes = router("", "mail nodes and mailbox homes (JSON:API, admins)")
NodeName = Annotated[str, Path(description="the node's name", max_length=63)]
AddressId = Annotated[str, id_path("the mailbox's id")]


class NodeAttributes(BaseModel):
    name: str
    address: str = Field(description="where the other nodes reach it (LMTP, IMAP, POP3)")
    lmtp_port: int
    state: NodeState = Field(description="active: takes new mailboxes; draining: no new ones")
    mailboxes: int = Field(description="mailboxes homed on it")


class NodeResource(BaseModel):
    type: Literal["mail-node"]
    id: str
    attributes: NodeAttributes
    links: SelfLink


class NodeCreateAttributes(Strict):
    name: StrictStr = Field(description="one DNS label, unique", examples=["node1"])
    address: StrictStr = Field(examples=["10.0.0.11"])
    lmtp_port: StrictInt = 24
    state: NodeState = "active"


class NodeCreateResource(Strict):
    type: Literal["mail-node"]
    attributes: NodeCreateAttributes
    meta: Members | None = None


class NodeCreateDocument(Strict):
    data: NodeCreateResource
    jsonapi: Members | None = None
    meta: Members | None = None


class NodePatchAttributes(Strict):
    state: NodeState


class NodePatchResource(Strict):
    type: Literal["mail-node"]
    id: StrictStr
    attributes: NodePatchAttributes
    meta: Members | None = None


class NodePatchDocument(Strict):
    data: NodePatchResource
    jsonapi: Members | None = None
    meta: Members | None = None


class HomeAttributes(BaseModel):
    address: str
    home_node: str | None = Field(description="the node's name; null: unplaced (served locally)")


class HomeResource(BaseModel):
    type: Literal["home-node"]
    id: str
    attributes: HomeAttributes
    links: SelfLink


class HomePatchAttributes(Strict):
    home_node: StrictStr = Field(description="an active node's name")


class HomePatchResource(Strict):
    type: Literal["home-node"]
    id: StrictStr
    attributes: HomePatchAttributes
    meta: Members | None = None


class HomePatchDocument(Strict):
    data: HomePatchResource
    jsonapi: Members | None = None
    meta: Members | None = None


def _node_path(name: str) -> str:
    return f"{NODES}/{name}"


def _home_path(address_id: int) -> str:
    return f"/email-addresses/{address_id}/home-node"


def _node(usage: service.NodeUsage) -> NodeResource:
    node = usage.node
    return NodeResource(
        type="mail-node",
        id=node.name,
        attributes=NodeAttributes(
            name=node.name,
            address=node.address,
            lmtp_port=node.lmtp_port,
            state=node.state,
            mailboxes=usage.mailboxes,
        ),
        links=self_link(_node_path(node.name)),
    )


def _home(placement: service.Placement) -> HomeResource:
    return HomeResource(
        type="home-node",
        id=str(placement.address_id),
        attributes=HomeAttributes(address=placement.address, home_node=placement.home_node),
        links=self_link(_home_path(placement.address_id)),
    )


@routes.get(NODES, response_model=CollectionDocument[NodeResource], summary="List mail nodes")
def list_nodes(request: Request, actor: Annotated[Actor, Depends(current_actor)]) -> Response:
    """Every node by name (a handful: no paging), with its number of mailboxes."""
    with transaction(request) as session:
        nodes = service.list_nodes(session, actor)
        links = PageLinks.model_validate(
            {"self": NODES, "first": NODES, "prev": None, "next": None}
        )
        return JsonApiResponse(collection([_node(usage) for usage in nodes], links))


@routes.post(
    NODES,
    status_code=201,
    response_model=ResourceDocument[NodeResource],
    summary="Register a mail node",
)
def register_node(
    request: Request,
    body: Annotated[NodeCreateDocument, Body(media_type=JSONAPI)],
    actor: Annotated[Actor, Depends(current_actor)],
) -> Response:
    """New mailboxes go to the least used active node from the next create on."""
    given = body.data.attributes
    with transaction(request) as session:
        node = service.register_node(
            session,
            actor,
            name=given.name,
            address=given.address,
            lmtp_port=given.lmtp_port,
            state=given.state,
        )
        answer = document(_node(service.NodeUsage(node, 0)), _node_path(node.name))
    return created(answer, _node_path(node.name))


@routes.patch(
    NODES + "/{name}",
    response_model=ResourceDocument[NodeResource],
    summary="Drain or reactivate a mail node",
)
def update_node(
    request: Request,
    name: NodeName,
    body: Annotated[NodePatchDocument, Body(media_type=JSONAPI)],
    actor: Annotated[Actor, Depends(current_actor)],
) -> Response:
    requests.check_id(body.data.id, name)
    with transaction(request) as session:
        node = service.find_node(session, actor, name)
        service.set_node_state(session, actor, node, body.data.attributes.state)
        usage = next(u for u in service.list_nodes(session, actor) if u.node.id == node.id)
        return JsonApiResponse(document(_node(usage), _node_path(name)))


@routes.get(
    "/email-addresses/{address_id}/home-node",
    response_model=ResourceDocument[HomeResource],
    summary="Where a mailbox lives",
)
def get_home(
    request: Request, address_id: AddressId, actor: Annotated[Actor, Depends(current_actor)]
) -> Response:
    key = requests.parse_id(address_id)
    with transaction(request) as session:
        placement = service.find_placement(session, actor, key)
        return JsonApiResponse(document(_home(placement), _home_path(key)))


@routes.patch(
    "/email-addresses/{address_id}/home-node",
    response_model=ResourceDocument[HomeResource],
    summary="Switch a mailbox to another mail node",
)
def move_home(
    request: Request,
    address_id: AddressId,
    body: Annotated[HomePatchDocument, Body(media_type=JSONAPI)],
    actor: Annotated[Actor, Depends(current_actor)],
) -> Response:
    """Mail and logins go to the new node from the next attempt on; the mail stored on the
    old node stays there (copying it, dsync, is not done yet)."""
    key = requests.parse_id(address_id)
    requests.check_id(body.data.id, address_id)
    with transaction(request) as session:
        placement = service.move_home(session, actor, key, body.data.attributes.home_node)
        return JsonApiResponse(document(_home(placement), _home_path(key)))
