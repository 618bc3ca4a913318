"""Client autoconfiguration routes: public, because mail clients ask before they have any
credentials (issue 13, item 5).

- `GET /.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=...` and
  `GET /mail/config-v1.1.xml` (the `autoconfig.<domain>` host form): Thunderbird's
  autoconfig. The domain is the one of `emailaddress`, or without it the `Host` header's
  (`autoconfig.<domain>` or `<domain>`).
- `POST /autodiscover/autodiscover.xml` (and `/Autodiscover/Autodiscover.xml`): Outlook's
  POX autodiscover; the request body names the address in `EMailAddress`.
- `GET /mobileconfig?emailaddress=...`: an Apple configuration profile, as an attachment.

A hosted domain (an alias domain too) gets its document; any other name is a 404; the
mailbox is never looked up (`domain.clientconfig.service`). Bad input is a 4xx in the
controller dialect's problem format: a missing or malformed address 422, an unreadable
autodiscover body 400, one over `MAX_AUTODISCOVER_BODY` 413. Not in the OpenAPI document:
these are mail-client protocols with their own specifications, not part of the API.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Final, NoReturn
from xml.parsers import expat

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from postmeister.api import dialects
from postmeister.api.common import app_state
from postmeister.api.errors import BodyTooLarge, MalformedBody
from postmeister.db import unit_of_work
from postmeister.domain.clientconfig import render
from postmeister.domain.clientconfig.schemas import Account, ClientProfile
from postmeister.domain.clientconfig.service import account_profile, domain_profile
from postmeister.errors import InvalidInput

XML: Final = "application/xml"
# A real request is about 400 bytes; anything much larger is not one.
MAX_AUTODISCOVER_BODY: Final = 16 * 1024


class PublicRoute(APIRoute):
    """A route without authentication whose errors, a bug included, are answered here in
    the controller dialect, so that the answer still passes `transport.Transport` (like
    `routing.AuthenticatedRoute`, without its token check)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answered(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                return dialects.render(exc, request)

        return answered


router = APIRouter(include_in_schema=False, route_class=PublicRoute)


def _domain_from_host(request: Request) -> str:
    host = request.headers.get("host", "")
    # "[v6]:port" or "name:port": a literal address is no domain, normalise_domain says so.
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.strip().lower()
    if name.startswith("autoconfig."):
        name = name.removeprefix("autoconfig.")
    if not name:
        raise InvalidInput.single("emailaddress", "an email address is required")
    return name


def _thunderbird(request: Request, emailaddress: str | None) -> Response:
    settings = app_state(request).settings
    with unit_of_work(app_state(request).sessions, write=False) as session:
        if emailaddress is not None:
            profile, _ = account_profile(session, settings=settings, address=emailaddress)
        else:
            domain = _domain_from_host(request)
            profile = domain_profile(session, settings=settings, domain=domain, field="host")
    return Response(render.autoconfig(profile), media_type=XML)


@router.get("/.well-known/autoconfig/mail/config-v1.1.xml")
def autoconfig_well_known(request: Request, emailaddress: str | None = None) -> Response:
    return _thunderbird(request, emailaddress)


@router.get("/mail/config-v1.1.xml")
def autoconfig_host(request: Request, emailaddress: str | None = None) -> Response:
    return _thunderbird(request, emailaddress)


def _refuse_dtd(*_args: object) -> NoReturn:
    raise MalformedBody("a document type declaration (DTD) is not accepted")


def parse_autodiscover_request(body: bytes) -> str:
    """The `EMailAddress` of a POX autodiscover request.

    Read with the standard library's expat parser with every document type declaration
    refused before its content is read: without a DTD there are no entity declarations, so
    neither entity expansion ("billion laughs") nor external entities can happen, and an
    undeclared entity reference is a well-formedness error. The size is bounded by the
    caller (`MAX_AUTODISCOVER_BODY`). Raises `MalformedBody`."""
    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    texts: dict[str, list[str]] = {"EMailAddress": [], "AcceptableResponseSchema": []}
    current: list[str] = []

    def start(name: str, _attributes: object) -> None:
        current.append(name.rpartition("}")[2])
        if current[-1] in texts:
            texts[current[-1]].append("")

    def end(_name: str) -> None:
        current.pop()

    def characters(data: str) -> None:
        if current and current[-1] in texts:
            texts[current[-1]][-1] += data

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise MalformedBody(f"the body is not well-formed XML ({exc})") from exc
    found = [text.strip() for text in texts["EMailAddress"]]
    if len(found) != 1 or not found[0]:
        raise MalformedBody("the request must name one address in EMailAddress")
    schemas = [text.strip() for text in texts["AcceptableResponseSchema"]]
    if schemas and render.OUTLOOK_RESPONSE not in schemas:
        raise MalformedBody(f"only the response schema {render.OUTLOOK_RESPONSE} is served")
    return found[0]


def _account(request: Request, address: str) -> tuple[ClientProfile, Account]:
    settings = app_state(request).settings
    with unit_of_work(app_state(request).sessions, write=False) as session:
        return account_profile(session, settings=settings, address=address)


async def _autodiscover(request: Request) -> Response:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_AUTODISCOVER_BODY:
            raise BodyTooLarge(MAX_AUTODISCOVER_BODY)
        chunks.append(chunk)
    address = parse_autodiscover_request(b"".join(chunks))
    profile, account = await run_in_threadpool(_account, request, address)
    return Response(render.autodiscover(profile, account), media_type=XML)


@router.post("/autodiscover/autodiscover.xml")
async def autodiscover_lower(request: Request) -> Response:
    return await _autodiscover(request)


@router.post("/Autodiscover/Autodiscover.xml")
async def autodiscover_upper(request: Request) -> Response:
    return await _autodiscover(request)


@router.get("/mobileconfig")
def apple_profile(request: Request, emailaddress: str | None = None) -> Response:
    if emailaddress is None:
        raise InvalidInput.single("emailaddress", "an email address is required")
    profile, account = _account(request, emailaddress)
    return Response(
        render.mobileconfig(profile, account),
        media_type=render.MOBILECONFIG_MEDIA_TYPE,
        # The A-label: plain ASCII, nothing to quote.
        headers={"Content-Disposition": f'attachment; filename="{profile.domain}.mobileconfig"'},
    )
