"""Request bodies: pydantic gives each bad field a 400 that names it."""

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from protocol import is_valid_id

MAX_EXPIRED_SECONDS = 2_592_000
DEFAULT_EXPIRED_SECONDS = 259_200


def _check_id(value: str) -> str:
    if not is_valid_id(value):
        raise ValueError("must be 1-128 characters with no whitespace or control characters")
    return value


Id = Annotated[str, AfterValidator(_check_id)]
DeliveryType = Literal["user", "android", "ios"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PushCommon(_Body):
    msg_key: Id | None = None
    expired_seconds: int = Field(DEFAULT_EXPIRED_SECONDS, ge=1, le=MAX_EXPIRED_SECONDS)
    ext: dict[str, str] = Field(default_factory=dict)


class SimplePushBody(PushCommon):
    delivery_type: DeliveryType
    target_id: Id
    title: str
    content: str


class BindingBody(_Body):
    user_id: Id
    device_id: Id
