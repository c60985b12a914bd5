"""The API's error shape: {"error": {"code", "message", "field"?}} for every failure."""

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.store import MsgKeyConflict, StoreUnavailable


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return {"error": error}


def _field_of(loc: Sequence[Any]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def validation_error(errors: Sequence[Any]) -> ApiError:
    """A 400 invalid_request naming the first field pydantic found at fault."""
    first = errors[0] if errors else {}
    field = _field_of(first.get("loc", ()))
    message = str(first.get("msg", "invalid request"))
    if field:
        message = f"{field}: {message}"
    return ApiError(400, "invalid_request", message, field=field)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}

# OpenAPI: the error answers a route may give, with their shape.
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string"},
            },
        }
    },
}
_ERROR_TEXT = {
    400: "Invalid request: `field` names the part at fault",
    401: "Missing or wrong API key",
    404: "No such resource in this app",
    408: "The request body did not arrive in time",
    409: "Conflict with the stored state",
    413: "The body, or the push it makes, is over its limit",
    429: "Over the app's rate limit (see Retry-After)",
    503: "The store cannot commit (disk full); retry after Retry-After",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "description": _ERROR_TEXT[status],
            "content": {"application/json": {"schema": ERROR_SCHEMA}},
        }
        for status in statuses
    }


# What every authenticated route can answer besides its own errors.
AUTHENTICATED = (400, 401, 429, 503)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.field), exc.status, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        error = validation_error(exc.errors())
        return JSONResponse(error_body(error.code, error.message, error.field), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)

    @app.exception_handler(MsgKeyConflict)
    async def _conflict(request: Request, exc: MsgKeyConflict) -> JSONResponse:
        return JSONResponse(error_body("msg_key_conflict", str(exc), "msg_key"), 409)

    @app.exception_handler(StoreUnavailable)
    async def _unavailable(request: Request, exc: StoreUnavailable) -> JSONResponse:
        return JSONResponse(
            error_body("store_unavailable", f"the message store cannot commit: {exc}"),
            503,
            headers={"Retry-After": "5"},
        )
