"""Push types and moderation through the real HTTP API; helpers shared by these tests."""

from __future__ import annotations

from typing import Any

import httpx

from client_sim.transport import DeviceConnection
from protocol import Push
from tests.harness import receive, wait_until


async def call(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: object = None,
    *,
    expect: int = 200,
) -> dict[str, Any]:
    """One API call; asserts the HTTP status and returns the JSON answer."""
    response = await client.request(method, path, json=body)
    assert response.status_code == expect, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def api_error(
    client: httpx.AsyncClient, method: str, path: str, body: object, expect: int
) -> dict[str, Any]:
    """The `error` object of a call that must fail with `expect`."""
    error: dict[str, Any] = (await call(client, method, path, body, expect=expect))["error"]
    return error


async def pushes(conn: DeviceConnection, count: int) -> list[Push]:
    """The next `count` frames, each of which must be a push."""
    frames = [await receive(conn) for _ in range(count)]
    assert all(isinstance(f, Push) for f in frames), frames
    return [f for f in frames if isinstance(f, Push)]


async def wait_for_answer(
    client: httpx.AsyncClient, path: str, expected: dict[str, Any]
) -> dict[str, Any]:
    """Poll GET `path` until the answer holds every key of `expected`; return it."""

    async def answer_if_expected() -> dict[str, Any] | None:
        answer = await call(client, "GET", path)
        return answer if all(answer.get(k) == v for k, v in expected.items()) else None

    return await wait_until(answer_if_expected, f"GET {path} to show {expected}")
