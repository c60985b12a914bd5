"""The management API (CONTRACT.md section 4) as a FastAPI app, one router per topic."""

from fastapi import FastAPI

from . import console, devices, messages, moderation, ops, push, stats, templates
from .context import ApiContext
from .errors import install_error_handlers


def create_api(ctx: ApiContext) -> FastAPI:
    api = FastAPI(
        title="pushgate",
        version="1",
        description="Management API of the pushgate push gateway.",
    )
    install_error_handlers(api)
    for module in (ops, push, messages, devices, templates, moderation):
        api.include_router(module.router(ctx))
    for module in (stats, console):
        api.include_router(module.router(ctx))
    # The web console's files, last: one exact route per file, never a /v1 path.
    console.mount_console(api)
    return api
