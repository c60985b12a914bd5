"""The web console: static files shipped in gateway/console/, served at `/` by the API listener.

Every file gets its own exact route (`/` is index.html), so the console can
never shadow an API path, and an unknown path is the API's ordinary JSON 404.
Only files with a known content type are served; the set is fixed at start.

`GET /v1/console-config` (no auth: it tells nothing about any app) gives the
page the device WebSocket URL, since the WS listener has its own port.
"""

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse

from .context import ApiContext, Ctx

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    "": "text/plain; charset=utf-8",  # LICENSE
}

# The page loads nothing from elsewhere and talks only to this API and the
# gateway's WebSocket listener (another port, hence ws:/wss:).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}


def console_files(root: Path = CONSOLE_DIR) -> dict[str, tuple[Path, str]]:
    """URL path -> (file, content type) for every servable file under `root`."""
    files: dict[str, tuple[Path, str]] = {}
    for path in sorted(root.rglob("*")):
        content_type = CONTENT_TYPES.get(path.suffix)
        if not path.is_file() or content_type is None or path.name.startswith("."):
            continue
        files["/" + path.relative_to(root).as_posix()] = (path, content_type)
    if "/index.html" in files:
        files["/"] = files["/index.html"]
    return files


def _ws_base(ctx: ApiContext) -> str | None:
    if ctx.ws_url:
        return ctx.ws_url
    port = ctx.settings.ws_port
    return f"ws://{ctx.settings.host}:{port}" if port else None


def ws_connect_url(ctx: ApiContext, request: Request) -> str | None:
    """The device WebSocket URL as seen from the browser that asked."""
    base = _ws_base(ctx)
    if base is None:
        return None
    parts = urlsplit(base)
    host = parts.hostname or ""
    if host in WILDCARD_HOSTS:
        # Bound to every interface: the page's own host reaches it.
        seen = request.url.hostname or "127.0.0.1"
        host = f"[{seen}]" if ":" in seen else seen
    elif ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/v1/connect"


router = APIRouter(tags=["console"])


@router.get("/v1/console-config")
async def console_config(request: Request, ctx: Ctx) -> dict[str, Any]:
    return {"ws_url": ws_connect_url(ctx, request)}


def _file_endpoint(path: Path, content_type: str) -> Callable[[], Awaitable[FileResponse]]:
    async def serve() -> FileResponse:
        return FileResponse(path, media_type=content_type, headers=HEADERS)

    return serve


def mount_console(api: FastAPI, root: Path = CONSOLE_DIR) -> None:
    """Add one GET/HEAD route per console file; call it after every /v1 router."""
    for url_path, (path, content_type) in console_files(root).items():
        api.add_api_route(
            url_path,
            _file_endpoint(path, content_type),
            methods=["GET", "HEAD"],
            include_in_schema=False,
            name=f"console:{url_path}",
        )
