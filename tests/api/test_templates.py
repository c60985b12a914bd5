"""Templates: PUT/GET/DELETE per app, and template pushes rendered from `template_kv`."""

from __future__ import annotations

from typing import Any

import pytest

from protocol import Push
from tests.api import api_error, call, pushes
from tests.harness import OTHER_APP, RunningGateway, message_details, receive, receive_nothing

ORDER = {"title": "Hi #name#", "content": "Order #order# has shipped to #name#."}


def template_push(target: str = "dev-t", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "delivery_type": "android",
        "target_id": target,
        "template": "order",
        "template_kv": {"name": "Ada", "order": "A-17"},
    }
    return {**body, **overrides}


async def test_put_get_replace_delete(gw: RunningGateway) -> None:
    async with gw.http() as client:
        created = await call(client, "PUT", "/v1/templates/order", ORDER)
        assert created == {
            **ORDER,
            "name": "order",
            "updated_at": "2026-11-18T11:06:40.000Z",
            "created": True,
        }
        assert await call(client, "GET", "/v1/templates/order") == {
            **ORDER,
            "name": "order",
            "updated_at": "2026-11-18T11:06:40.000Z",
        }
        replaced = await call(client, "PUT", "/v1/templates/order", {"title": "t", "content": "c"})
        assert replaced["created"] is False
        assert (await call(client, "GET", "/v1/templates/order"))["content"] == "c"
        assert await call(client, "DELETE", "/v1/templates/order") == {
            "name": "order",
            "deleted": True,
        }
        for method in ("GET", "DELETE"):
            error = await api_error(client, method, "/v1/templates/order", None, 404)
            assert error["code"] == "not_found"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/templates/a%20b", ORDER, "name"),
        ("/v1/templates/" + "x" * 129, ORDER, "name"),
        ("/v1/templates/ok", {"content": "c"}, "title"),
        ("/v1/templates/ok", {"title": "t", "content": 3}, "content"),
    ],
)
async def test_template_validation_names_the_field(
    gw: RunningGateway, path: str, body: dict[str, Any], field: str
) -> None:
    async with gw.http() as client:
        error = await api_error(client, "PUT", path, body, 400)
        assert (error["code"], error["field"]) == ("invalid_request", field)


async def test_templates_are_per_app(gw: RunningGateway) -> None:
    async with gw.http() as client, gw.http(OTHER_APP) as other:
        await call(client, "PUT", "/v1/templates/order", ORDER)
        assert (await api_error(other, "GET", "/v1/templates/order", None, 404))["code"]
        error = await api_error(other, "POST", "/v1/push/template", template_push(), 400)
        assert (error["code"], error["field"]) == ("unknown_template", "template")
        await api_error(other, "DELETE", "/v1/templates/order", None, 404)
        await call(client, "GET", "/v1/templates/order")  # still there


async def test_template_push_is_rendered_and_delivered(gw: RunningGateway) -> None:
    conn, _ = await gw.connect("dev-t")
    async with gw.http() as client:
        await call(client, "PUT", "/v1/templates/order", ORDER)
        answer = await call(client, "POST", "/v1/push/template", template_push(ext={"k": "v"}))
        assert answer["status"] == 0 and answer["msg_key"] == answer["message_id"]
        (frame,) = await pushes(conn, 1)
        assert (frame.id, frame.push_type, frame.title, frame.content, dict(frame.ext)) == (
            answer["message_id"],
            "template",
            "Hi Ada",
            "Order A-17 has shipped to Ada.",
            {"k": "v"},
        )
        details = await message_details(client, answer["message_id"])
        assert (details["push_type"], details["title"], details["content"]) == (
            "template",
            "Hi Ada",
            "Order A-17 has shipped to Ada.",
        )
        # Deleting the template later changes nothing already pushed.
        await call(client, "DELETE", "/v1/templates/order")
        assert (await message_details(client, answer["message_id"]))["title"] == "Hi Ada"
    await conn.aclose()


async def test_missing_key_is_a_400_naming_it_and_stores_nothing(gw: RunningGateway) -> None:
    async with gw.http() as client:
        await call(client, "PUT", "/v1/templates/order", ORDER)
        body = template_push(template_kv={"name": "Ada"})
        error = await api_error(client, "POST", "/v1/push/template", body, 400)
        assert (error["code"], error["field"]) == ("invalid_request", "template_kv.order")
        assert "'order'" in error["message"]
    conn, _ = await gw.connect("dev-t")
    await receive_nothing(conn)
    await conn.aclose()


async def test_unknown_template_is_a_400_naming_the_field(gw: RunningGateway) -> None:
    async with gw.http() as client:
        error = await api_error(client, "POST", "/v1/push/template", template_push(), 400)
        assert (error["code"], error["field"]) == ("unknown_template", "template")


async def test_placeholders_fill_once_and_other_hashes_are_literal(gw: RunningGateway) -> None:
    conn, _ = await gw.connect("dev-t")
    async with gw.http() as client:
        await call(
            client,
            "PUT",
            "/v1/templates/tricky",
            {"title": "#a##b#", "content": "Issue #12 and # b # and ## and #a#"},
        )
        body = template_push(template="tricky", template_kv={"a": "#b#", "b": "B", "unused": "x"})
        await call(client, "POST", "/v1/push/template", body)
        frame = await receive(conn)
        assert isinstance(frame, Push)
        assert frame.title == "#b#B"  # a value is inserted as it is, never expanded again
        assert frame.content == "Issue #12 and # b # and ## and #b#"
    await conn.aclose()


async def test_repeat_is_judged_on_the_rendered_content(gw: RunningGateway) -> None:
    async with gw.http() as client:
        await call(client, "PUT", "/v1/templates/order", ORDER)
        first = await call(client, "POST", "/v1/push/template", template_push(msg_key="k1"))
        again = await call(client, "POST", "/v1/push/template", template_push(msg_key="k1"))
        assert again == {**first, "duplicate": True}
        # Same rendering from another template: still the same content.
        await call(client, "PUT", "/v1/templates/copy", ORDER)
        same = await call(
            client, "POST", "/v1/push/template", template_push(msg_key="k1", template="copy")
        )
        assert same["message_id"] == first["message_id"] and same["duplicate"] is True
        other = template_push(msg_key="k1", template_kv={"name": "Bob", "order": "A-17"})
        error = await api_error(client, "POST", "/v1/push/template", other, 409)
        assert error["code"] == "msg_key_conflict"


async def test_payload_limit_applies_after_rendering(gw: RunningGateway) -> None:
    async with gw.http() as client:
        await call(client, "PUT", "/v1/templates/order", ORDER)
        big = template_push(template_kv={"name": "x" * 2100, "order": "1"})  # twice in the frame
        error = await api_error(client, "POST", "/v1/push/template", big, 413)
        assert error["code"] == "payload_too_large"
        fits = template_push(template_kv={"name": "x" * 1900, "order": "1"})
        assert (await call(client, "POST", "/v1/push/template", fits))["status"] == 0
