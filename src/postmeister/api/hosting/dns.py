"""`GET /domains/{domain_id}/dns`: the DNS records a domain needs, checked live (issue 14,
item 3).

A JSON:API document of type `domain-dns` (id: the domain's), one entry per record with
what to publish (`expected`), its live `state` (`ok`, `missing`, `different`, `unknown`)
and what the resolver `found`; with `?format=zone` the records as a zone-file snippet in
`text/plain` (nothing looked up). The query parameter rather than content negotiation,
because a zone snippet is a different representation a customer copies, best linked as a
URL, and the JSON:API `Accept` rules stay as they are for the document. Tenancy is the
domain lookup's: another customer's domain is 404 like a missing one; read scope suffices.
The rules are in `domain.dns`; the check runs after the read transaction has ended.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from fastapi import Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from postmeister.api.common import app_state, current_actor, transaction
from postmeister.api.errors import InvalidQueryParameter
from postmeister.api.hosting import requests
from postmeister.api.hosting.domains import BASE_PATH, DOMAIN, DomainId
from postmeister.api.hosting.media import JsonApiResponse
from postmeister.api.hosting.render import VERSION, JsonApiObject, SelfLink, dump
from postmeister.api.hosting.resources import router
from postmeister.api.hosting.routes import JsonApiRoute
from postmeister.domain.access import Actor
from postmeister.domain.dns import service
from postmeister.domain.dns.check import RecordCheck
from postmeister.domain.dns.compare import State
from postmeister.domain.dns.rules import Purpose, RecordType, shown_name
from postmeister.domain.dns.service import DomainRecords

TYPE: Final = "domain-dns"
ZONE: Final = "zone"


class DnsRoute(JsonApiRoute):
    """A JSON:API route whose `?format=zone` answer is plain text: for that one the
    `Accept` header need not allow JSON:API (the other checks stay)."""

    async def check_request(self, request: Request) -> None:
        if request.query_params.get("format") != ZONE:
            await super().check_request(request)
            return
        for name in request.query_params:
            if name not in self.declared_query:
                raise InvalidQueryParameter(name, "this endpoint has no such query parameter")


# Every resource router's settings (authentication, errors, media type), with the route
# class above for the routes added below.
routes = router(BASE_PATH, "hosting (JSON:API): domains")
routes.route_class = DnsRoute


class DnsRecordState(BaseModel):
    name: str = Field(description="the record's name, the domain as entered (Unicode)")
    ascii_name: str = Field(description="the name as published: IDNA A-labels")
    type: RecordType
    purpose: Purpose = Field(description="what the record is: mx, spf, dkim, dmarc, srv, ...")
    expected: str = Field(
        description="the record data to publish (TXT: the text, unquoted), as in a zone file"
    )
    state: State = Field(
        description="ok; missing; different (see note); unknown: the resolver gave no answer"
    )
    found: list[str] = Field(description="what the resolver answered at that name")
    note: str = Field(description="why the state is not ok, or what the record is for")


class DomainDnsAttributes(BaseModel):
    domain: str = Field(description="the domain as entered (Unicode)")
    ascii_domain: str
    ok: bool = Field(description="every record is ok")
    records: list[DnsRecordState]


class DomainDnsLinks(BaseModel):
    self_: str = Field(alias="self")
    zone: str = Field(description="the records as a zone-file snippet (text/plain)")


class DomainDnsResource(BaseModel):
    type: Literal["domain-dns"]
    id: str
    attributes: DomainDnsAttributes
    links: SelfLink


class DomainDnsDocument(BaseModel):
    jsonapi: JsonApiObject
    data: DomainDnsResource
    links: DomainDnsLinks


def dns_path(domain_id: int) -> str:
    return f"{BASE_PATH}/{domain_id}/dns"


def record_state(records: DomainRecords, check: RecordCheck) -> DnsRecordState:
    record, verdict = check.record, check.verdict
    return DnsRecordState(
        name=shown_name(
            record.name, ascii_domain=records.ascii_name, shown_domain=records.shown_name
        ),
        ascii_name=record.name,
        type=record.type,
        purpose=record.purpose,
        expected=record.value,
        state=verdict.state,
        found=list(verdict.found),
        note=verdict.note or record.note,
    )


def resource(records: DomainRecords, checks: list[RecordCheck]) -> DomainDnsResource:
    path = dns_path(records.domain_id)
    return DomainDnsResource(
        type="domain-dns",
        id=str(records.domain_id),
        attributes=DomainDnsAttributes(
            domain=records.shown_name,
            ascii_domain=records.ascii_name,
            ok=all(check.verdict.state == "ok" for check in checks),
            records=[record_state(records, check) for check in checks],
        ),
        links=SelfLink.model_validate({"self": path}),
    )


def dns_document(records: DomainRecords, checks: list[RecordCheck]) -> dict[str, Any]:
    path = dns_path(records.domain_id)
    links = DomainDnsLinks.model_validate({"self": path, "zone": f"{path}?format={ZONE}"})
    return dump(DomainDnsDocument(jsonapi=VERSION, data=resource(records, checks), links=links))


_ZONE_RESPONSE: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "description": "the records and their state; with format=zone a zone-file snippet",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


@routes.get(
    "/{domain_id}/dns",
    response_model=DomainDnsDocument,
    responses=_ZONE_RESPONSE,
    summary="The domain's DNS records, checked live (?format=zone: a zone-file snippet)",
)
def get_domain_dns(
    request: Request,
    domain_id: DomainId,
    actor: Annotated[Actor, Depends(current_actor)],
    output: Annotated[
        Literal["jsonapi", "zone"],
        Query(
            alias="format",
            description="jsonapi (default): checked live; zone: text/plain, no lookups",
        ),
    ] = "jsonapi",
) -> Response:
    """Every record the domain needs (MX, SPF, DKIM, DMARC, MTA-STS and TLS-RPT when
    enabled, autoconfig/autodiscover, RFC 6186 SRV) with its state as the configured
    resolver sees it now."""
    key = requests.parse_id(domain_id, DOMAIN)
    settings = app_state(request).settings
    with transaction(request) as session:
        records = service.domain_records(session, actor, key, settings=settings)
    if output == ZONE:
        return PlainTextResponse(records.zone())
    return JsonApiResponse(dns_document(records, service.check(records, settings.dns)))
