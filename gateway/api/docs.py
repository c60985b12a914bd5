"""`/docs`: Swagger UI from files shipped in a Python package (fastapi-offline), never a CDN.

The page and its assets are served from this origin under a strict
Content-Security-Policy: scripts only from here (the page's start-up code is a
file too, not an inline script), connections only to this origin. The
console's origin is the same, and its API key lives in sessionStorage: no
third-party script ever runs here.
"""

from collections.abc import Awaitable, Callable
from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

DOCS_URL = "/docs"
ASSETS = files("fastapi_offline") / "static"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>pushgate API</title>
<link rel="icon" type="image/png" href="/docs/favicon.png">
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""

INIT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout",
  });
});
"""

# URL -> (content, content type); the bundle is read once, at start.
_FILES: dict[str, tuple[str, str]] = {
    "/docs/swagger-ui-bundle.js": ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "/docs/swagger-ui.css": ("swagger-ui.css", "text/css; charset=utf-8"),
    "/docs/favicon.png": ("favicon.png", "image/png"),
}


def _asset(content: bytes, content_type: str) -> Callable[[], Awaitable[Response]]:
    async def serve() -> Response:
        return Response(content, media_type=content_type, headers=HEADERS)

    return serve


def mount_docs(api: FastAPI) -> None:
    """Add /docs, its start-up script and the Swagger UI files (exact GET routes)."""
    routes: dict[str, Callable[[], Awaitable[Any]]] = {}
    for url, (name, content_type) in _FILES.items():
        routes[url] = _asset((ASSETS / name).read_bytes(), content_type)
    routes["/docs/init.js"] = _asset(INIT.encode(), "text/javascript; charset=utf-8")

    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE, headers=HEADERS)

    routes[DOCS_URL] = page
    for url, endpoint in routes.items():
        api.add_api_route(url, endpoint, methods=["GET", "HEAD"], include_in_schema=False)
