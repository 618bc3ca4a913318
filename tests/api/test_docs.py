"""/docs and /redoc work offline (issue 10, finding 8): the pages name no external URL and
every asset they load is served by the controller itself."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

ASSET = re.compile(r"""(?:src|href)=["']?([^"' >]+)""")
LOADED = re.compile(r"""\burl:\s*['"]([^'"]+)['"]|spec-url=["']([^"']+)""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_page_loads_only_local_assets(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "http://" not in html
    assert "https://" not in html
    assets = ASSET.findall(html)
    assert any(asset.endswith(".js") for asset in assets), assets
    for asset in assets:
        assert asset.startswith("/"), asset
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert served.content, asset
        assert served.headers["x-content-type-options"] == "nosniff"
        assert served.headers["cache-control"] == "public, max-age=86400"
    specs = [url for pair in LOADED.findall(html) for url in pair if url]
    assert specs == ["/openapi.json"]
    assert client.get("/openapi.json").json()["info"]["title"] == "Postmeister"


def test_swagger_ui_assets_have_their_media_types(client: TestClient) -> None:
    script = client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert b"SwaggerUIBundle" in script.content
    style = client.get("/docs/assets/swagger-ui.css")
    assert style.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize(
    "name", ["index.html", "..%2F..%2Fpyproject.toml", "swagger-ui.css.map", "core.py"]
)
def test_only_the_listed_assets_are_served(client: TestClient, name: str) -> None:
    assert client.get(f"/docs/assets/{name}").status_code == 404
