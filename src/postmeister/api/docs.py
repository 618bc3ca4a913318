"""/docs (Swagger UI) and /redoc (ReDoc), served with their assets from this process.

FastAPI's default pages load their scripts from a CDN, so they are blank on an offline
install. The assets come from the `fastapi-offline` package (Swagger UI 5 and ReDoc 2,
released with it on PyPI); only its files are used, through FastAPI's own page builders.
The pages name no external URL: the Swagger validator badge, which would call out, is off,
and ReDoc does not load Google Fonts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from postmeister.errors import NotFound

ASSETS_PATH: Final = "/docs/assets"
# The only files served: a fixed list, so that no request names a path of its own.
_ASSETS: Final = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
# The assets change only with the package; a day in a cache costs nothing.
_ASSET_CACHE: Final = "public, max-age=86400"


def install(app: FastAPI) -> None:
    """Add /docs, /redoc and their assets; create the app with `docs_url=None, redoc_url=None`."""
    directory = Path(fastapi_offline.__file__).parent / "static"
    openapi_url = app.openapi_url or "/openapi.json"
    title = app.title

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} API",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} API",
            redoc_js_url=f"{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )

    @app.get(ASSETS_PATH + "/{name}", include_in_schema=False)
    def asset(name: str) -> FileResponse:
        media_type = _ASSETS.get(name)
        if media_type is None:
            raise NotFound("file", name)
        return FileResponse(
            directory / name, media_type=media_type, headers={"Cache-Control": _ASSET_CACHE}
        )
