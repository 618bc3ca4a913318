"""The customer's sync sources (Basic JSON URLs the controller polls) and their runs: add
one, see each run, confirm a held mass deletion, remove a source.

The same service calls as the controller API's `/sync/sources/` (`domain.sync_sources`),
with the customer's actor: another customer's source id in the URL is "not found".
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from postmeister.api.common import app_state, transaction
from postmeister.domain.sync_sources import service as sync_sources
from postmeister.errors import FieldProblem, InvalidInput
from postmeister.web import forms, security
from postmeister.web.auth import Customer, Form, Visitor
from postmeister.web.pages import SHOWN_ON_FORM, Problem, key, problems_of, status_of
from postmeister.web.templating import page, redirect

router = APIRouter(prefix=security.PREFIX + "/customer/sync", include_in_schema=False)
BASE = security.PREFIX + "/customer/sync"
RUNS_SHOWN = 20


def _list(request: Request, who: Visitor, *, status: int = 200,
          problems: list[Problem] | None = None) -> Response:  # fmt: skip
    interval = app_state(request).settings.sync.default_interval_seconds
    with transaction(request) as session:
        shown = [
            (source, sync_sources.recent_runs(session, source, limit=1))
            for source in sync_sources.list_sources(session, who.actor)
        ]
        notice = next((k for k in ("saved", "deleted") if k in request.query_params), None)
        return page(request, who, "customer/sync.html", status=status, shown=shown,
                    problems=problems or [], notice=notice, base=BASE,
                    default_interval=interval)  # fmt: skip


@router.get("")
def source_list(request: Request, who: Customer) -> Response:
    return _list(request, who)


@router.post("")
def create_source(request: Request, who: Customer, form: Form) -> Response:
    problems: list[FieldProblem] = []
    interval = forms.optional_number(form, "interval_seconds", problems)
    try:
        if problems:
            raise InvalidInput(problems)
        with who.writing(request) as session:
            created = sync_sources.create_source(
                session, who.actor, url=forms.text(form, "url").strip(),
                interval_seconds=interval, settings=app_state(request).settings.sync,
            ).id  # fmt: skip
    except SHOWN_ON_FORM as exc:
        return _list(request, who, status=status_of(exc), problems=problems_of(exc))
    return redirect(f"{BASE}/{created}?saved=1")


def _detail(request: Request, who: Visitor, source_id: int, *, status: int = 200,
            problems: list[Problem] | None = None) -> Response:  # fmt: skip
    with transaction(request) as session:
        source = sync_sources.get_source(session, who.actor, source_id)
        notice = next((k for k in ("saved", "confirmed") if k in request.query_params), None)
        return page(request, who, "customer/sync_source.html", status=status, source=source,
                    runs=sync_sources.recent_runs(session, source, limit=RUNS_SHOWN),
                    domains=sync_sources.managed_domains(session, source),
                    problems=problems or [], notice=notice, base=f"{BASE}/{source.id}")  # fmt: skip


@router.get("/{source_id}")
def source_detail(request: Request, source_id: str, who: Customer) -> Response:
    return _detail(request, who, key(source_id))


@router.post("/{source_id}/confirm")
def confirm(request: Request, source_id: str, who: Customer, form: Form) -> Response:
    """Allow the held document (it deletes many addresses) to be applied at the next poll,
    which is due at once."""
    ident = key(source_id)
    try:
        with who.writing(request) as session:
            source = sync_sources.get_source(session, who.actor, ident)
            sync_sources.confirm_held_document(session, who.actor, source)
    except SHOWN_ON_FORM as exc:
        return _detail(request, who, ident, status=status_of(exc), problems=problems_of(exc))
    return redirect(f"{BASE}/{ident}?confirmed=1")


@router.post("/{source_id}/delete")
def delete(request: Request, source_id: str, who: Customer, form: Form) -> Response:
    with who.writing(request) as session:
        source = sync_sources.get_source(session, who.actor, key(source_id))
        sync_sources.delete_source(session, who.actor, source)
    return redirect(f"{BASE}?deleted=1")
