"""Mounting the web interface into the application (`api.app.create_app`)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from postmeister.web import (
    account,
    admin,
    admin_audit,
    admin_health,
    customer,
    domains,
    login,
    mailbox,
    packages,
    security,
    sync,
    tokens,
)
from postmeister.web.templating import STATIC


def install(app: FastAPI) -> None:
    """The pages under /ui, their own static files (no CDN), and their security headers."""
    modules = (login, customer, packages, domains, tokens, sync, mailbox, admin, admin_audit,
               admin_health, account)  # fmt: skip
    for module in modules:
        app.include_router(module.router)
    app.mount(security.PREFIX + "/static", StaticFiles(directory=STATIC), name="web-static")
    app.add_middleware(security.WebHeaders)
