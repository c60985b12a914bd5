"""Multiple push, customer message IDs across push types, and validation of every push body."""

from __future__ import annotations

from typing import Any

import pytest

from protocol import Push
from tests.api import api_error, call, pushes
from tests.harness import RunningGateway, message_details, receive, receive_nothing


def multiple(targets: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"delivery_type": "android", "targets": targets}
    if "template" not in fields:
        body |= {"title": "Sale", "content": "Everything must go"}
    return body | fields


async def test_thousand_targets_in_one_call_with_mixed_msg_keys(gw: RunningGateway) -> None:
    online = {"t-0": await gw.connect("t-0"), "t-500": await gw.connect("t-500")}
    targets = [
        {"target_id": f"t-{i}", **({"msg_key": f"key-{i}"} if i % 2 else {})} for i in range(1000)
    ]
    async with gw.http() as client:
        answer = await call(client, "POST", "/v1/push/multiple", multiple(targets))
        items = answer["messages"]
        assert [m["target_id"] for m in items] == [f"t-{i}" for i in range(1000)]
        assert all(m["status"] == 0 and "duplicate" not in m for m in items)
        assert len({m["message_id"] for m in items}) == 1000
        for i, m in enumerate(items):
            # Given where given; generated (the message ID) where absent.
            assert m["msg_key"] == (f"key-{i}" if i % 2 else m["message_id"])
        for target, (conn, _) in online.items():
            (frame,) = await pushes(conn, 1)
            item = items[int(target.split("-")[1])]
            assert (frame.id, frame.push_type, frame.title) == (
                item["message_id"],
                "multiple",
                "Sale",
            )
            await conn.aclose()
        details = await message_details(client, items[999]["message_id"])
        assert (details["push_type"], details["target_id"], details["msg_key"]) == (
            "multiple",
            "t-999",
            "key-999",
        )
        # The same call again creates nothing: keyed items are duplicates.
        keyed = [t for t in targets if "msg_key" in t]
        again = await call(client, "POST", "/v1/push/multiple", multiple(keyed))
        assert [m["message_id"] for m in again["messages"]] == [
            m["message_id"] for m in items[1::2]
        ]
        assert all(m["duplicate"] is True for m in again["messages"])


@pytest.mark.parametrize("count", [0, 1001])
async def test_targets_must_be_1_to_1000(gw: RunningGateway, count: int) -> None:
    targets = [{"target_id": f"t-{i}"} for i in range(count)]
    async with gw.http() as client:
        error = await api_error(client, "POST", "/v1/push/multiple", multiple(targets), 400)
        assert (error["code"], error["field"]) == ("invalid_request", "targets")


async def test_one_conflict_rejects_the_whole_call(gw: RunningGateway) -> None:
    async with gw.http() as client:
        first = await call(
            client, "POST", "/v1/push/multiple", multiple([{"target_id": "c-1", "msg_key": "k"}])
        )
        body = multiple(
            [
                {"target_id": "c-2", "msg_key": "k"},
                {"target_id": "c-3"},
                {"target_id": "c-1", "msg_key": "k"},
            ],
            content="other content",
        )
        error = await api_error(client, "POST", "/v1/push/multiple", body, 409)
        assert (error["code"], error["field"]) == ("msg_key_conflict", "targets.2.msg_key")
        assert "'c-1'" in error["message"]
        # The same (target, key) twice in one call with the same content: one message.
        inner = multiple(
            [{"target_id": "c-4", "msg_key": "x"}, {"target_id": "c-4", "msg_key": "x"}]
        )
        assert (await call(client, "POST", "/v1/push/multiple", inner))["messages"][1][
            "duplicate"
        ] is True
        # Nothing of the rejected call was stored: its keys are free, its targets get nothing.
        fresh = await call(
            client,
            "POST",
            "/v1/push/multiple",
            multiple([{"target_id": "c-2", "msg_key": "k"}], content="third content"),
        )
        assert "duplicate" not in fresh["messages"][0]
        assert (await message_details(client, first["messages"][0]["message_id"]))[
            "content"
        ] == "Everything must go"
    conn, _ = await gw.connect("c-3")
    await receive_nothing(conn)
    await conn.aclose()
    conn, _ = await gw.connect("c-2")
    (frame,) = await pushes(conn, 1)
    assert frame.content == "third content"
    await receive_nothing(conn)
    await conn.aclose()


async def test_multiple_with_a_template_renders_each_target(gw: RunningGateway) -> None:
    conn_a, _ = await gw.connect("m-a")
    conn_b, _ = await gw.connect("m-b")
    async with gw.http() as client:
        await call(client, "PUT", "/v1/templates/hi", {"title": "Hi #name#", "content": "#n# new"})
        body = multiple(
            [
                {"target_id": "m-a", "template_kv": {"name": "Ada", "n": "3"}},
                {"target_id": "m-b", "template_kv": {"name": "Bob", "n": "5"}, "msg_key": "kb"},
            ],
            template="hi",
        )
        answer = await call(client, "POST", "/v1/push/multiple", body)
        frame_a, frame_b = (await pushes(conn_a, 1))[0], (await pushes(conn_b, 1))[0]
        assert (frame_a.title, frame_a.content) == ("Hi Ada", "3 new")
        assert (frame_b.title, frame_b.content, frame_b.msg_key) == ("Hi Bob", "5 new", "kb")
        assert [frame_a.id, frame_b.id] == [m["message_id"] for m in answer["messages"]]
        # Same key, other rendering: a conflict.
        body["targets"] = [{"target_id": "m-b", "template_kv": {"name": "Eve", "n": "5"}}]
        body["targets"][0]["msg_key"] = "kb"
        error = await api_error(client, "POST", "/v1/push/multiple", body, 409)
        assert error["field"] == "targets.0.msg_key"
        # Within one call, the later of two renderings under one key conflicts.
        body["targets"] = [
            {"target_id": "m-c", "msg_key": "z", "template_kv": {"name": "A", "n": "1"}},
            {"target_id": "m-c", "msg_key": "z", "template_kv": {"name": "B", "n": "1"}},
        ]
        error = await api_error(client, "POST", "/v1/push/multiple", body, 409)
        assert error["field"] == "targets.1.msg_key"
        # A key missing for one target: 400 naming it, and nothing stored.
        body["targets"] = [
            {"target_id": "m-a", "template_kv": {"name": "Ada", "n": "1"}},
            {"target_id": "m-b", "template_kv": {"n": "1"}},
        ]
        error = await api_error(client, "POST", "/v1/push/multiple", body, 400)
        assert (error["code"], error["field"]) == ("invalid_request", "targets.1.template_kv.name")
        assert "'name'" in error["message"]
        await receive_nothing(conn_a)
        body["template"] = "nope"
        error = await api_error(client, "POST", "/v1/push/multiple", body, 400)
        assert (error["code"], error["field"]) == ("unknown_template", "template")
    await conn_a.aclose()
    await conn_b.aclose()


async def test_multiple_to_users_without_devices_is_no_bind_info(gw: RunningGateway) -> None:
    async with gw.http() as client:
        await call(client, "POST", "/v1/bindings", {"user_id": "u-1", "device_id": "u-dev"})
        body = multiple([{"target_id": "u-1"}, {"target_id": "u-2"}], delivery_type="user")
        answer = await call(client, "POST", "/v1/push/multiple", body)
        assert [m["status"] for m in answer["messages"]] == [0, 1]
    conn, _ = await gw.connect("u-dev")
    (frame,) = await pushes(conn, 1)
    assert frame.id == answer["messages"][0]["message_id"]
    await conn.aclose()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": None, "content": None}, "template"),
        ({"template": "t", "title": "x"}, "template"),
        ({"title": None}, "title"),
        ({"content": None}, "content"),
        ({"targets": [{"target_id": "a b"}]}, "targets.0.target_id"),
        ({"targets": [{"target_id": "a", "msg_key": ""}]}, "targets.0.msg_key"),
        ({"targets": [{"target_id": "a", "template_kv": {"k": "v"}}]}, "targets.0.template_kv"),
        ({"targets": "a"}, "targets"),
        ({"delivery_type": "web"}, "delivery_type"),
        ({"expired_seconds": 0}, "expired_seconds"),
        ({"ext": {"a": 1}}, "ext.a"),
    ],
)
async def test_multiple_validation_names_the_field(
    gw: RunningGateway, fields: dict[str, Any], field: str
) -> None:
    body = multiple([{"target_id": "a"}]) | fields
    body = {k: v for k, v in body.items() if v is not None}
    async with gw.http() as client:
        error = await api_error(client, "POST", "/v1/push/multiple", body, 400)
        assert (error["code"], error["field"]) == ("invalid_request", field)
        assert field in error["message"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/push/template", {"delivery_type": "ios", "target_id": "d"}, "template"),
        (
            "/v1/push/template",
            {"delivery_type": "ios", "target_id": "d", "template": "t", "template_kv": {"a": 1}},
            "template_kv.a",
        ),
        ("/v1/push/template", {"target_id": "d", "template": "t"}, "delivery_type"),
        ("/v1/push/broadcast", {"title": "t"}, "content"),
        ("/v1/push/broadcast", {"title": "t", "content": "c", "platform": "web"}, "platform"),
        ("/v1/push/broadcast", {"title": "t", "content": "c", "msg_key": "a b"}, "msg_key"),
        (
            "/v1/push/broadcast",
            {"title": "t", "content": "c", "expired_seconds": 2_592_001},
            "expired_seconds",
        ),
    ],
)
async def test_other_push_validation_names_the_field(
    gw: RunningGateway, path: str, body: dict[str, Any], field: str
) -> None:
    async with gw.http() as client:
        error = await api_error(client, "POST", path, body, 400)
        assert (error["code"], error["field"]) == ("invalid_request", field)


async def test_payload_limit_applies_to_each_target(gw: RunningGateway) -> None:
    async with gw.http() as client:
        await call(client, "PUT", "/v1/templates/t", {"title": "#v#", "content": "c"})
        body = multiple(
            [
                {"target_id": "p-1", "template_kv": {"v": "short"}},
                {"target_id": "p-2", "template_kv": {"v": "x" * 5000}},
            ],
            template="t",
        )
        error = await api_error(client, "POST", "/v1/push/multiple", body, 413)
        assert (error["code"], error["field"]) == ("payload_too_large", "targets.1")
        big = multiple([{"target_id": "p-1"}], content="x" * 4096)
        assert (await api_error(client, "POST", "/v1/push/multiple", big, 413))["code"]
        error = await api_error(
            client, "POST", "/v1/push/broadcast", {"title": "t", "content": "x" * 4096}, 413
        )
        assert error["code"] == "payload_too_large"
    conn, _ = await gw.connect("p-1")
    await receive_nothing(conn)
    await conn.aclose()


async def test_every_push_type_generates_msg_key_and_answers_duplicates(
    gw: RunningGateway,
) -> None:
    conn, _ = await gw.connect("k-dev")
    async with gw.http() as client:
        await call(client, "PUT", "/v1/templates/t", {"title": "T", "content": "#x#"})
        bodies = {
            "simple": {
                "delivery_type": "android",
                "target_id": "k-dev",
                "title": "T",
                "content": "1",
            },
            "template": {
                "delivery_type": "android",
                "target_id": "k-dev",
                "template": "t",
                "template_kv": {"x": "1"},
            },
            "broadcast": {"title": "T", "content": "1"},
        }
        for push_type, body in bodies.items():
            answer = await call(client, "POST", f"/v1/push/{push_type}", body)
            assert answer["msg_key"] == answer["message_id"], push_type
            frame = await receive(conn)
            assert isinstance(frame, Push) and frame.push_type == push_type
            assert (await message_details(client, frame.id))["push_type"] == push_type
            keyed = {**body, "msg_key": f"key-{push_type}"}
            first = await call(client, "POST", f"/v1/push/{push_type}", keyed)
            frame = await receive(conn)
            assert isinstance(frame, Push) and frame.msg_key == f"key-{push_type}"
            again = await call(client, "POST", f"/v1/push/{push_type}", keyed)
            assert again == {**first, "duplicate": True}, push_type
            await receive_nothing(conn)
            changed = {**keyed, "title": "other"}
            if push_type == "template":
                changed = {**keyed, "template_kv": {"x": "2"}}
            error = await api_error(client, "POST", f"/v1/push/{push_type}", changed, 409)
            assert error["code"] == "msg_key_conflict", push_type
    await conn.aclose()
