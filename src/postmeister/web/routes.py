"""Mounting the web interface into the application (`api.app.create_app`)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from postmeister.web import account, admin, customer, login, mailbox, security
from postmeister.web.templating import STATIC


def install(app: FastAPI) -> None:
    """The pages under /ui, their own static files (no CDN), and their security headers."""
    for module in (login, customer, mailbox, admin, account):
        app.include_router(module.router)
    app.mount(security.PREFIX + "/static", StaticFiles(directory=STATIC), name="web-static")
    app.add_middleware(security.WebHeaders)
