"""400s, not 500s: strict JSON types, lone surrogates, cursors of huge numbers, bad bodies."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.harness import RunningGateway, push_simple

SIMPLE = {"delivery_type": "android", "target_id": "dev-1", "title": "t", "content": "c"}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/push/simple", {**SIMPLE, "expired_seconds": "3600"}, "expired_seconds"),
        ("/v1/push/simple", {**SIMPLE, "expired_seconds": 3600.0}, "expired_seconds"),
        ("/v1/push/simple", {**SIMPLE, "expired_seconds": True}, "expired_seconds"),
        ("/v1/push/simple", {**SIMPLE, "title": 7}, "title"),
        ("/v1/push/simple", {**SIMPLE, "ext": {"k": 1}}, "ext.k"),
        ("/v1/push/simple", {**SIMPLE, "target_id": 12}, "target_id"),
        (
            "/v1/push/broadcast",
            {"title": "t", "content": "c", "expired_seconds": "9"},
            "expired_seconds",
        ),
        ("/v1/bindings", {"user_id": 1, "device_id": "d"}, "user_id"),
        ("/v1/messages/x/verify", {"approve": 1}, "approve"),
        ("/v1/messages/x/verify", {"approve": "true"}, "approve"),
    ],
)
async def test_typed_fields_take_only_their_json_type(
    gw: RunningGateway, path: str, body: dict[str, Any], field: str
) -> None:
    async with gw.http() as client:
        response = await client.post(path, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_request", field)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('"title": "a\\ud800b"', "title"),
        ('"content": "\\udfff"', "content"),
        ('"ext": {"k": "\\ud83d"}', "ext.k"),
    ],
)
async def test_lone_surrogates_are_a_400(gw: RunningGateway, raw: str, field: str) -> None:
    body = '{"delivery_type": "android", "target_id": "d", "title": "t", "content": "c", ' + raw
    async with gw.http() as client:
        response = await client.post("/v1/push/simple", content=body + "}")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"].startswith(field)
    # A real pair (an emoji) is fine.
    async with gw.http() as client:
        emoji = '"title": "\\ud83d\\ude00"'
        response = await client.post(
            "/v1/push/simple",
            content='{"delivery_type": "android", "target_id": "d", "content": "c", ' + emoji + "}",
        )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("seq", ["9" * 25, "9" * 60, str(2**63), "0", "-1"])
async def test_a_cursor_of_a_huge_number_is_a_400(gw: RunningGateway, seq: str) -> None:
    cursor = base64.urlsafe_b64encode(f"s:{seq}".encode()).decode().rstrip("=")
    async with gw.http() as client:
        response = await client.get("/v1/messages", params={"cursor": cursor})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "cursor"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "invalid_json"),
        (b"{", "invalid_json"),
        (b'{"a": NaN}', "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"[1, 2]", "invalid_request"),
        (b'"text"', "invalid_request"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_a_400(
    gw: RunningGateway, content: bytes, code: str
) -> None:
    async with gw.http() as client:
        response = await client.post("/v1/push/simple", content=content)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code


async def test_a_body_needs_no_content_type(gw: RunningGateway) -> None:
    """curl -d sends a form content type: the body is read as JSON all the same."""
    async with gw.http() as client:
        await push_simple(client, "dev-ct")
        response = await client.post(
            "/v1/push/simple",
            content=b'{"delivery_type": "ios", "target_id": "d", "title": "t", "content": "c"}',
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 200, response.text


async def test_no_key_is_401_before_the_body_is_looked_at(gw: RunningGateway) -> None:
    async with gw.http() as client:
        response = await client.post(
            "/v1/push/simple", content=b"not json at all", headers={"authorization": ""}
        )
    assert response.status_code == 401
