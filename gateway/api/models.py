"""Request bodies: pydantic gives each bad field a 400 that names it.

Every model is strict: a field is of its JSON type or the call is a 400
(`"expired_seconds": "3600"` is not a number, `1.0` not an integer, `1` not a
boolean). Text may hold any Unicode character but no lone surrogate (`\\ud800`
in JSON): such a string cannot be stored or sent as UTF-8.
"""

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from protocol import is_valid_id

MAX_EXPIRED_SECONDS = 2_592_000
DEFAULT_EXPIRED_SECONDS = 259_200
MAX_TARGETS = 1000
MAX_TEMPLATE_TEXT = 65_536  # characters of a stored template's title or content
MAX_MAP_KEYS = 256  # keys of one `ext` or `template_kv`

_SURROGATE = re.compile("[\\ud800-\\udfff]")


def _check_id(value: str) -> str:
    if not is_valid_id(value):
        raise ValueError("must be 1-128 characters with no whitespace or control characters")
    return value


def _check_text(value: str) -> str:
    if not value.isascii() and _SURROGATE.search(value):
        raise ValueError("must not contain a lone UTF-16 surrogate (not encodable as UTF-8)")
    return value


# The JSON schema documents the rule (for /docs and for fuzzers); _check_id enforces it.
ID_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[^\\s\\x00-\\x1f]+$"}
Id = Annotated[str, AfterValidator(_check_id), WithJsonSchema(ID_SCHEMA)]
Text = Annotated[str, AfterValidator(_check_text)]
TextMap = Annotated[dict[Text, Text], Field(max_length=MAX_MAP_KEYS)]
DeliveryType = Literal["user", "android", "ios"]
Platform = Literal["android", "ios"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class PushOptions(_Body):
    """What every push type takes: expiry and extra fields."""

    expired_seconds: int = Field(DEFAULT_EXPIRED_SECONDS, ge=1, le=MAX_EXPIRED_SECONDS)
    ext: TextMap = {}


class PushCommon(PushOptions):
    msg_key: Id | None = None


class SimplePushBody(PushCommon):
    delivery_type: DeliveryType
    target_id: Id
    title: Text
    content: Text


class TemplatePushBody(PushCommon):
    delivery_type: DeliveryType
    target_id: Id
    template: Id
    template_kv: TextMap = {}


class MultipleTarget(_Body):
    target_id: Id
    msg_key: Id | None = None
    template_kv: TextMap | None = None


class MultiplePushBody(PushOptions):
    """Either `template` (each target's `template_kv` fills it) or `title` + `content`.

    Which of the two is given is checked by the handler (push.py), which
    names the field in its 400.
    """

    delivery_type: DeliveryType
    targets: list[MultipleTarget] = Field(min_length=1, max_length=MAX_TARGETS)
    template: Id | None = None
    title: Text | None = None
    content: Text | None = None


class BroadcastPushBody(PushCommon):
    title: Text
    content: Text
    platform: Platform | None = None


class TemplateBody(_Body):
    title: Text = Field(max_length=MAX_TEMPLATE_TEXT)
    content: Text = Field(max_length=MAX_TEMPLATE_TEXT)


class VerifyBody(_Body):
    approve: bool


class BindingBody(_Body):
    user_id: Id
    device_id: Id


BODY_MODELS: tuple[type[BaseModel], ...] = (
    SimplePushBody,
    TemplatePushBody,
    MultiplePushBody,
    BroadcastPushBody,
    TemplateBody,
    VerifyBody,
    BindingBody,
)
