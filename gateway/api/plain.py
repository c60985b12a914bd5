"""The bodies of the hot push routes checked with plain Python, not Pydantic.

`POST /v1/push/simple` and `/v1/push/multiple` run per message sent, and a
Pydantic model per target (and per call) cost more than the rest of the
request. These checks accept exactly what the strict models of models.py
accept; whatever they do not accept is handed to the model, which then gives
its own 400 (so every error answer is the one the model gives, word for
word). The models stay the documented shape (/openapi.json, /docs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from protocol import is_valid_id

from .errors import ApiError, validation_error
from .models import (
    DEFAULT_EXPIRED_SECONDS,
    MAX_EXPIRED_SECONDS,
    MAX_MAP_KEYS,
    MAX_TARGETS,
    MultiplePushBody,
    MultipleTarget,
    SimplePushBody,
)

DELIVERY_TYPES = frozenset(("user", "android", "ios"))
_SURROGATE = re.compile("[\\ud800-\\udfff]")
_ABSENT: Any = object()

# (target_id, msg_key, template_kv) of one target of a multiple push.
Target = tuple[str, str | None, dict[str, str] | None]


@dataclass(slots=True)
class SimpleFields:
    delivery_type: str
    target_id: str
    title: str
    content: str
    msg_key: str | None
    ext: dict[str, str]
    expired_seconds: int


@dataclass(slots=True)
class MultipleFields:
    delivery_type: str
    targets: list[Target]
    template: str | None
    title: str | None
    content: str | None
    ext: dict[str, str]
    expired_seconds: int


class _Refused(Exception):
    """Not accepted by the plain checks: the model decides (and names the field)."""


def _text(value: Any) -> str:
    if type(value) is not str or (not value.isascii() and _SURROGATE.search(value)):
        raise _Refused
    return value


def _id(value: Any) -> str:
    if type(value) is not str or not is_valid_id(value):
        raise _Refused
    return value


def _optional(check: Any, value: Any) -> Any:
    return None if value is None or value is _ABSENT else check(value)


def _text_map(value: Any) -> dict[str, str]:
    if type(value) is not dict or len(value) > MAX_MAP_KEYS:
        raise _Refused
    for key, item in value.items():
        _text(key)
        _text(item)
    return value


def _options(data: dict[str, Any]) -> tuple[dict[str, str], int]:
    ext = data.get("ext", _ABSENT)
    expired = data.get("expired_seconds", _ABSENT)
    if expired is _ABSENT:
        expired = DEFAULT_EXPIRED_SECONDS
    elif type(expired) is not int or not 1 <= expired <= MAX_EXPIRED_SECONDS:
        raise _Refused
    return ({} if ext is _ABSENT else _text_map(ext)), expired


def _delivery_type(value: Any) -> str:
    if type(value) is not str or value not in DELIVERY_TYPES:
        raise _Refused
    return value


def _model_error(model: type[BaseModel], data: Any) -> ApiError:
    """The model's 400 for `data`; a model that accepts it means the checks are wrong."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return validation_error(exc.errors())
    raise AssertionError(f"plain checks refused a body {model.__name__} accepts")


def simple_fields(data: Any) -> SimpleFields:
    """The checked fields of a simple push body, or the ApiError SimplePushBody gives."""
    try:
        if type(data) is not dict:
            raise _Refused
        ext, expired = _options(data)
        return SimpleFields(
            delivery_type=_delivery_type(data.get("delivery_type")),
            target_id=_id(data.get("target_id")),
            title=_text(data.get("title")),
            content=_text(data.get("content")),
            msg_key=_optional(_id, data.get("msg_key", _ABSENT)),
            ext=ext,
            expired_seconds=expired,
        )
    except _Refused:
        raise _model_error(SimplePushBody, data) from None


def target(value: Any) -> Target:
    """One checked target of a multiple push (raises _Refused)."""
    if type(value) is not dict:
        raise _Refused
    kv = value.get("template_kv", _ABSENT)
    return (
        _id(value.get("target_id")),
        _optional(_id, value.get("msg_key", _ABSENT)),
        None if kv is None or kv is _ABSENT else _text_map(kv),
    )


def target_element(key: str, index: int, value: Any) -> Any:
    """parse_json's element hook: each target checked as it is decoded (a large body)."""
    if key != "targets":
        return value
    try:
        return _Checked(target(value))
    except _Refused:
        pass
    try:
        MultipleTarget.model_validate(value)
    except ValidationError as exc:
        errors = [{**e, "loc": (key, index, *e["loc"])} for e in exc.errors()]
        raise validation_error(errors) from None
    raise AssertionError("plain checks refused a target MultipleTarget accepts")


@dataclass(frozen=True, slots=True)
class _Checked:
    """A target the element hook checked already."""

    target: Target


def multiple_fields(data: Any) -> MultipleFields:
    """The checked fields of a multiple push body, or the ApiError MultiplePushBody gives."""
    try:
        if type(data) is not dict:
            raise _Refused
        ext, expired = _options(data)
        delivery_type = _delivery_type(data.get("delivery_type"))
        raw = data.get("targets")
        if type(raw) is not list or not 1 <= len(raw) <= MAX_TARGETS:
            raise _Refused
        targets = [t.target if type(t) is _Checked else target(t) for t in raw]
        return MultipleFields(
            delivery_type=delivery_type,
            targets=targets,
            template=_optional(_id, data.get("template", _ABSENT)),
            title=_optional(_text, data.get("title", _ABSENT)),
            content=_optional(_text, data.get("content", _ABSENT)),
            ext=ext,
            expired_seconds=expired,
        )
    except _Refused:
        raise _model_error(MultiplePushBody, _unchecked(data)) from None


def _unchecked(data: Any) -> Any:
    """The body as the model reads it: targets the hook checked as plain objects again."""
    if type(data) is not dict or type(data.get("targets")) is not list:
        return data
    targets = [
        {"target_id": t.target[0], "msg_key": t.target[1], "template_kv": t.target[2]}
        if type(t) is _Checked
        else t
        for t in data["targets"]
    ]
    return {**data, "targets": targets}
