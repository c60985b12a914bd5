"""The management API (CONTRACT.md section 4) as a FastAPI app, one router per topic."""

from fastapi import FastAPI

from . import devices, messages, ops, push
from .context import ApiContext
from .errors import install_error_handlers


def create_api(ctx: ApiContext) -> FastAPI:
    api = FastAPI(
        title="pushgate",
        version="1",
        description="Management API of the pushgate push gateway.",
    )
    install_error_handlers(api)
    for module in (ops, push, messages, devices):
        api.include_router(module.router(ctx))
    return api
