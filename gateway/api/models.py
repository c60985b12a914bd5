"""Request bodies: pydantic gives each bad field a 400 that names it."""

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool

from protocol import is_valid_id

MAX_EXPIRED_SECONDS = 2_592_000
DEFAULT_EXPIRED_SECONDS = 259_200
MAX_TARGETS = 1000
MAX_TEMPLATE_TEXT = 65_536  # characters of a stored template's title or content


def _check_id(value: str) -> str:
    if not is_valid_id(value):
        raise ValueError("must be 1-128 characters with no whitespace or control characters")
    return value


Id = Annotated[str, AfterValidator(_check_id)]
DeliveryType = Literal["user", "android", "ios"]
Platform = Literal["android", "ios"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PushOptions(_Body):
    """What every push type takes: expiry and extra fields."""

    expired_seconds: int = Field(DEFAULT_EXPIRED_SECONDS, ge=1, le=MAX_EXPIRED_SECONDS)
    ext: dict[str, str] = Field(default_factory=dict)


class PushCommon(PushOptions):
    msg_key: Id | None = None


class SimplePushBody(PushCommon):
    delivery_type: DeliveryType
    target_id: Id
    title: str
    content: str


class TemplatePushBody(PushCommon):
    delivery_type: DeliveryType
    target_id: Id
    template: Id
    template_kv: dict[str, str] = Field(default_factory=dict)


class MultipleTarget(_Body):
    target_id: Id
    msg_key: Id | None = None
    template_kv: dict[str, str] | None = None


class MultiplePushBody(PushOptions):
    """Either `template` (each target's `template_kv` fills it) or `title` + `content`.

    Which of the two is given is checked by the handler (push.py), which
    names the field in its 400.
    """

    delivery_type: DeliveryType
    targets: list[MultipleTarget] = Field(min_length=1, max_length=MAX_TARGETS)
    template: Id | None = None
    title: str | None = None
    content: str | None = None


class BroadcastPushBody(PushCommon):
    title: str
    content: str
    platform: Platform | None = None


class TemplateBody(_Body):
    title: str = Field(max_length=MAX_TEMPLATE_TEXT)
    content: str = Field(max_length=MAX_TEMPLATE_TEXT)


class VerifyBody(_Body):
    approve: StrictBool


class BindingBody(_Body):
    user_id: Id
    device_id: Id
