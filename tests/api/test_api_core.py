"""The API's core calls and its errors, over real HTTP."""

from __future__ import annotations

import pytest

from tests.harness import OTHER_APP, RunningGateway, api_client, push_simple


async def test_healthz_needs_no_key(gw: RunningGateway) -> None:
    async with api_client(gw.addresses.api) as client:
        response = await client.get("/healthz", headers={"authorization": ""})
        assert response.status_code == 200 and response.json()["status"] == "ok"


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic a2V5", "Bearer"])
async def test_wrong_or_missing_key_is_401(gw: RunningGateway, header: str | None) -> None:
    async with api_client(gw.addresses.api) as client:
        headers = {} if header is None else {"authorization": header}
        if header is None:
            del client.headers["authorization"]
        response = await client.post(
            "/v1/push/simple",
            json={"delivery_type": "android", "target_id": "d", "title": "t", "content": "c"},
            headers=headers,
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"target_id": "d", "title": "t", "content": "c"}, "delivery_type"),
        ({"delivery_type": "web", "target_id": "d", "title": "t", "content": "c"}, "delivery_type"),
        ({"delivery_type": "ios", "target_id": "", "title": "t", "content": "c"}, "target_id"),
        ({"delivery_type": "ios", "target_id": "a b", "title": "t", "content": "c"}, "target_id"),
        (
            {"delivery_type": "ios", "target_id": "x" * 129, "title": "t", "content": "c"},
            "target_id",
        ),
        ({"delivery_type": "ios", "target_id": "d", "content": "c"}, "title"),
        (
            {
                "delivery_type": "ios",
                "target_id": "d",
                "title": "t",
                "content": "c",
                "expired_seconds": 0,
            },
            "expired_seconds",
        ),
        (
            {
                "delivery_type": "ios",
                "target_id": "d",
                "title": "t",
                "content": "c",
                "expired_seconds": 2_592_001,
            },
            "expired_seconds",
        ),
        (
            {
                "delivery_type": "ios",
                "target_id": "d",
                "title": "t",
                "content": "c",
                "ext": {"a": 1},
            },
            "ext.a",
        ),
        (
            {
                "delivery_type": "ios",
                "target_id": "d",
                "title": "t",
                "content": "c",
                "msg_key": "\n",
            },
            "msg_key",
        ),
    ],
)
async def test_validation_errors_name_the_field(
    gw: RunningGateway, body: dict[str, object], field: str
) -> None:
    async with gw.http() as client:
        response = await client.post("/v1/push/simple", json=body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_request"
        assert error["field"] == field
        assert field in error["message"]


async def test_invalid_json_is_400(gw: RunningGateway) -> None:
    async with gw.http() as client:
        response = await client.post(
            "/v1/push/simple", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_json"


async def test_payload_over_4096_encoded_bytes_is_413(gw: RunningGateway) -> None:
    async with gw.http() as client:
        response = await client.post(
            "/v1/push/simple",
            json={"delivery_type": "ios", "target_id": "d", "title": "t", "content": "x" * 4096},
        )
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
        ok = await push_simple(client, "d", content="x" * 3900)
        assert ok["status"] == 0


async def test_another_apps_message_is_404(gw: RunningGateway) -> None:
    async with gw.http() as client:
        answer = await push_simple(client, "d")
        assert (await client.get(f"/v1/messages/{answer['message_id']}")).status_code == 200
    async with gw.http(OTHER_APP) as other:
        response = await other.get(f"/v1/messages/{answer['message_id']}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        assert (await other.get("/v1/messages/does-not-exist")).status_code == 404


async def test_unknown_device_is_404_and_unknown_route_keeps_the_error_shape(
    gw: RunningGateway,
) -> None:
    async with gw.http() as client:
        response = await client.get("/v1/devices/never-seen")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        response = await client.get("/v1/nothing-here")
        assert response.status_code == 404
        assert "error" in response.json()


async def test_times_are_iso_utc_with_milliseconds(gw: RunningGateway, clock: object) -> None:
    clock.advance(123)  # type: ignore[attr-defined]
    async with gw.http() as client:
        answer = await push_simple(client, "d", expired_seconds=10)
        details = (await client.get(f"/v1/messages/{answer['message_id']}")).json()
    # START_MS is 1_795_000_000_000
    assert details["created_at"] == "2026-11-18T11:06:40.123Z"
    assert details["modified_at"] == "2026-11-18T11:06:40.123Z"
    assert details["expires_at"] == "2026-11-18T11:06:50.123Z"
