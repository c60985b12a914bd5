"""The management API (CONTRACT.md section 4) as a FastAPI app, one router per topic."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from . import channels, console, devices, messages, moderation, nodes, ops, push, stats, templates
from .console import mount_console
from .context import ApiContext
from .docs import mount_docs
from .errors import install_error_handlers
from .models import BODY_MODELS

TITLE = "pushgate"
VERSION = "1"
DESCRIPTION = (
    "Management API of the pushgate push gateway. Every /v1 call but"
    " /v1/console-config takes `Authorization: Bearer <api_key>`."
)
ROUTERS = (ops, push, messages, channels, devices, templates, moderation, stats, nodes, console)
PUBLIC = {"/healthz", "/metrics", "/v1/console-config"}


def create_api(ctx: ApiContext) -> FastAPI:
    api = FastAPI(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        docs_url=None,  # /docs is served from packaged files (docs.py)
        redoc_url=None,
    )
    api.state.ctx = ctx
    install_error_handlers(api)
    for module in ROUTERS:
        api.include_router(module.router)
    mount_docs(api)
    # The web console's files, last: one exact route per file, never a /v1 path.
    mount_console(api)
    api.openapi = lambda: _openapi(api)  # type: ignore[method-assign]
    return api


def _openapi(api: FastAPI) -> dict[str, Any]:
    """FastAPI's description plus what it cannot see: the bodies (read by json_body,
    not by FastAPI), the bearer key, and no 422 (validation errors are 400s)."""
    if api.openapi_schema:
        return api.openapi_schema
    schema = get_openapi(title=TITLE, version=VERSION, description=DESCRIPTION, routes=api.routes)
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in (*BODY_MODELS, *channels.CHANNEL_MODELS):
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(body.pop("$defs", {}))
        schemas[model.__name__] = body
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
            if path not in PUBLIC:
                operation["security"] = [{"bearer": []}]
    api.openapi_schema = schema
    return schema
