"""The message list, the search, push details and the status codes, over real HTTP."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
import trio

from gateway.clock import ManualClock
from gateway.store import NewMessage
from protocol.status_codes import CATALOG, channels
from tests.harness import APP, OTHER_APP, RunningGateway, api_client, push_simple, wait_until

LIST_FIELDS = {
    "message_id",
    "msg_key",
    "push_type",
    "delivery_type",
    "target_id",
    "title",
    "created_at",
    "status",
}


async def insert(
    gw: RunningGateway, push_type: str, target: str, msg_key: str | None = None, **kw: Any
) -> str:
    """Store a row of any push type directly (as the push endpoints do)."""
    app = await gw.gateway.store.get_app(kw.pop("app_id", APP.app_id))
    assert app is not None
    delivery_type = "all" if push_type == "broadcast" else kw.pop("delivery_type", "android")
    item = NewMessage(
        push_type=push_type,
        delivery_type=delivery_type,
        target_id=target,
        title=kw.pop("title", f"{push_type} title"),
        content="c",
        msg_key=msg_key,
        **kw,
    )
    (outcome,) = await gw.gateway.store.insert_messages(app, [item])
    return outcome.message.message_id


async def page(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/messages", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"items", "next_cursor"}
    return body


async def walk(client: httpx.AsyncClient, limit: int) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        body = await page(client, **params)
        assert len(body["items"]) <= limit
        ids += [item["message_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids
        assert len(body["items"]) == limit


async def search(client: httpx.AsyncClient, target: str, msg_key: str) -> list[dict[str, Any]]:
    body = await page(client, target_id=target, msg_key=msg_key)
    assert body["next_cursor"] is None
    items: list[dict[str, Any]] = body["items"]
    return items


# --- the list -----------------------------------------------------------------------


async def test_list_is_newest_first_with_the_list_fields(
    gw: RunningGateway, clock: ManualClock
) -> None:
    async with gw.http() as client:
        pushed = []
        for i in range(3):
            clock.advance(1000)
            pushed.append(await push_simple(client, f"dev-{i}", title=f"t{i}", msg_key=f"k{i}"))
        body = await page(client)
    assert body["next_cursor"] is None
    items = body["items"]
    assert [i["message_id"] for i in items] == [p["message_id"] for p in reversed(pushed)]
    assert all(set(i) == LIST_FIELDS for i in items)
    assert items[0] == {
        "message_id": pushed[2]["message_id"],
        "msg_key": "k2",
        "push_type": "simple",
        "delivery_type": "android",
        "target_id": "dev-2",
        "title": "t2",
        "created_at": "2026-11-18T11:06:43.000Z",
        "status": 0,
    }


async def test_list_holds_simple_and_template_only(gw: RunningGateway) -> None:
    simple = await insert(gw, "simple", "d1")
    template = await insert(gw, "template", "d2", template="welcome")
    await insert(gw, "multiple", "d3", msg_key="m1")
    await insert(gw, "broadcast", "", msg_key="b1")
    async with gw.http() as client:
        body = await page(client)
    assert [(i["message_id"], i["push_type"]) for i in body["items"]] == [
        (template, "template"),
        (simple, "simple"),
    ]


async def test_default_limit_is_20_and_pages_cover_everything_once(gw: RunningGateway) -> None:
    app = await gw.gateway.store.get_app(APP.app_id)
    assert app is not None
    outcomes = await gw.gateway.store.insert_messages(
        app,
        [
            NewMessage(
                push_type="simple", delivery_type="ios", target_id=f"d{i}", title="t", content="c"
            )
            for i in range(47)
        ],
    )
    created = [o.message.message_id for o in outcomes]
    async with gw.http() as client:
        first = await page(client)
        assert len(first["items"]) == 20 and first["next_cursor"]
        assert await walk(client, 20) == created[::-1]
        assert await walk(client, 7) == created[::-1]
        assert await walk(client, 100) == created[::-1]
        last = await page(client, limit=47)
        assert last["next_cursor"] is None  # exactly the rest: no empty extra page


async def test_paging_while_messages_arrive_never_skips_or_repeats(gw: RunningGateway) -> None:
    """Push continuously while another client pages: the pages hold exactly the
    messages that existed at the first page, newest first, each once."""
    async with gw.http() as client:
        created: list[str] = []
        for i in range(60):
            created.append(str((await push_simple(client, f"dev-{i % 5}"))["message_id"]))
        seen: list[str] = []
        done = trio.Event()

        async def pusher() -> None:
            n = 0
            while not done.is_set():
                answer = await push_simple(client, f"late-{n % 3}")
                created.append(str(answer["message_id"]))
                n += 1

        async def pushes_landed(count: int) -> None:
            await wait_until(lambda: len(created) >= count, f"{count} messages created")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pusher)
            cursor: str | None = None
            while True:
                params: dict[str, Any] = {"limit": 7}
                if cursor:
                    params["cursor"] = cursor
                body = await page(client, **params)
                seen += [item["message_id"] for item in body["items"]]
                # Let several pushes land between two pages.
                await pushes_landed(len(created) + 3)
                cursor = body["next_cursor"]
                if cursor is None:
                    break
            done.set()
    assert len(seen) == len(set(seen)), "a message was listed twice"
    assert len(seen) >= 60
    assert len(created) > len(seen), "no push landed while paging: the test proved nothing"
    # Newest first, nothing skipped: the first len(seen) messages created, reversed.
    assert seen == created[: len(seen)][::-1]


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5"])
async def test_limit_outside_1_to_100_is_400(gw: RunningGateway, limit: str) -> None:
    async with gw.http() as client:
        response = await client.get("/v1/messages", params={"limit": limit})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_request", "limit")


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "nope",
        "!!!!",
        _b64("x:5"),
        _b64("s:"),
        _b64("s:0"),
        _b64("s:-3"),
        _b64("s:1e3"),
        "A" * 65,
    ],
)
async def test_a_bad_cursor_is_400(gw: RunningGateway, cursor: str) -> None:
    async with gw.http() as client:
        response = await client.get("/v1/messages", params={"cursor": cursor})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_request", "cursor")


# --- the search -------------------------------------------------------------------


async def test_search_finds_the_exact_target_and_customer_message_id(gw: RunningGateway) -> None:
    async with gw.http() as client:
        answer = await push_simple(client, "dev-a", msg_key="order-1", title="Yours")
        await push_simple(client, "dev-b", msg_key="order-1")
        await push_simple(client, "dev-a", msg_key="order-2")
        found = await search(client, "dev-a", "order-1")
        assert [(i["message_id"], i["title"]) for i in found] == [(answer["message_id"], "Yours")]
        assert set(found[0]) == LIST_FIELDS
        assert await search(client, "dev-a", "order-3") == []
        assert await search(client, "dev-c", "order-1") == []
        assert await search(client, "DEV-A", "order-1") == []  # exact, case-sensitive


async def test_multiple_is_not_listed_but_is_found(gw: RunningGateway) -> None:
    multi = await insert(gw, "multiple", "dev-m", msg_key="campaign-7")
    template = await insert(gw, "template", "dev-t", msg_key="tpl-1", template="x")
    async with gw.http() as client:
        listed = [i["message_id"] for i in (await page(client))["items"]]
        assert multi not in listed and template in listed
        found = await search(client, "dev-m", "campaign-7")
        assert [(i["message_id"], i["push_type"]) for i in found] == [(multi, "multiple")]
        assert [i["message_id"] for i in await search(client, "dev-t", "tpl-1")] == [template]
        # And its details are readable.
        assert (await client.get(f"/v1/messages/{multi}")).status_code == 200


async def test_broadcasts_are_never_listed_nor_found(gw: RunningGateway) -> None:
    await insert(gw, "broadcast", "", msg_key="news")
    # A broadcast row with a target, in case a store ever gives it one.
    await insert(gw, "broadcast", "dev-x", msg_key="news-2")
    async with gw.http() as client:
        assert (await page(client))["items"] == []
        assert await search(client, "dev-x", "news-2") == []
        response = await client.get("/v1/messages", params={"target_id": "", "msg_key": "news"})
        assert response.status_code == 400


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"target_id": "dev-a"}, "msg_key"),
        ({"msg_key": "k"}, "target_id"),
        ({"target_id": "bad id", "msg_key": "k"}, "target_id"),
        ({"target_id": "dev-a", "msg_key": "x" * 129}, "msg_key"),
        ({"target_id": "a b"}, "msg_key"),  # the missing one is named first
    ],
)
async def test_search_needs_both_fields(
    gw: RunningGateway, params: dict[str, str], field: str
) -> None:
    async with gw.http() as client:
        response = await client.get("/v1/messages", params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_request", field)
    assert field in error["message"]


# --- isolation between apps --------------------------------------------------------


async def test_apps_never_see_each_others_messages(gw: RunningGateway) -> None:
    async with gw.http() as one:
        mine = await push_simple(one, "shared-device", msg_key="same-key")
    async with gw.http(OTHER_APP) as two:
        assert (await page(two))["items"] == []
        assert await search(two, "shared-device", "same-key") == []
        assert (await two.get(f"/v1/messages/{mine['message_id']}")).status_code == 404
        theirs = await push_simple(two, "shared-device", msg_key="same-key", title="other")
        assert [i["message_id"] for i in await search(two, "shared-device", "same-key")] == [
            theirs["message_id"]
        ]
    async with gw.http() as one:
        assert [i["message_id"] for i in (await page(one))["items"]] == [mine["message_id"]]
        found = await search(one, "shared-device", "same-key")
        assert [i["message_id"] for i in found] == [mine["message_id"]]
        assert (await one.get(f"/v1/messages/{theirs['message_id']}")).status_code == 404


async def test_reading_needs_the_api_key(gw: RunningGateway) -> None:
    async with api_client(gw.addresses.api) as client:
        for path in ("/v1/messages", "/v1/status-codes", "/v1/messages/x"):
            response = await client.get(path, headers={"authorization": "Bearer nope"})
            assert response.status_code == 401, path


# --- push details -------------------------------------------------------------------


async def test_push_details_give_status_name_description_expiry_and_deliveries(
    gw: RunningGateway, clock: ManualClock
) -> None:
    async with gw.http() as client:
        to_user = await push_simple(client, "nobody", delivery_type="user", expired_seconds=60)
        details = (await client.get(f"/v1/messages/{to_user['message_id']}")).json()
        assert details["status"] == 1
        assert details["status_name"] == "NoBindInfo"
        assert details["status_description"].startswith("There is no binding relationship.")
        assert details["expires_at"] == "2026-11-18T11:07:40.000Z"
        assert details["modified_at"] == details["created_at"]
        assert details["deliveries"] == []
        assert set(details) >= LIST_FIELDS

        clock.advance(5)
        await client.post("/v1/bindings", json={"user_id": "nobody", "device_id": "phone"})
        details = (await client.get(f"/v1/messages/{to_user['message_id']}")).json()
        assert details["status_name"] == "DeviceNotOnlineOrNoResponse"
        assert [(d["device_id"], d["status"]) for d in details["deliveries"]] == [("phone", 0)]
        assert details["modified_at"] == "2026-11-18T11:06:40.005Z"


# --- status codes -------------------------------------------------------------------


async def test_status_codes_are_the_whole_catalog(gw: RunningGateway) -> None:
    async with gw.http() as client:
        body = (await client.get("/v1/status-codes")).json()
    assert body["next_cursor"] is None
    assert len(body["items"]) == 116 == len(CATALOG)
    assert body["items"][0] == {
        "channel": "common",
        "code": -1,
        "name": "WaitingForVerify",
        "description": "Waiting for verification.",
    }
    assert {(i["channel"], i["code"]) for i in body["items"]} == {
        (s.channel, s.code) for s in CATALOG
    }
    fcm = [i for i in body["items"] if i["channel"] == "fcm"]
    assert ("NotRegistered", 90000003) in {(i["name"], i["code"]) for i in fcm}


@pytest.mark.parametrize("channel", channels())
async def test_status_codes_filter_by_channel(gw: RunningGateway, channel: str) -> None:
    async with gw.http() as client:
        body = (await client.get("/v1/status-codes", params={"channel": channel})).json()
    expected = [s for s in CATALOG if s.channel == channel]
    assert [(i["channel"], i["code"], i["name"]) for i in body["items"]] == [
        (s.channel, s.code, s.name) for s in expected
    ]


async def test_unknown_status_code_channel_is_400(gw: RunningGateway) -> None:
    async with gw.http() as client:
        response = await client.get("/v1/status-codes", params={"channel": "pigeon"})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "channel"


# --- OpenAPI ------------------------------------------------------------------------


async def test_openapi_docs_list_the_routes(gw: RunningGateway) -> None:
    async with api_client(gw.addresses.api) as client:
        docs = await client.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        schema = (await client.get("/openapi.json")).json()
    paths = schema["paths"]
    for path in (
        "/v1/messages",
        "/v1/messages/{message_id}",
        "/v1/status-codes",
        "/v1/push/simple",
        "/healthz",
        "/metrics",
    ):
        assert path in paths, path
    params = {p["name"] for p in paths["/v1/messages"]["get"]["parameters"]}
    assert {"limit", "cursor", "target_id", "msg_key"} <= params
