"""The lean push routes (gateway/api/lean.py) answer exactly as the FastAPI routes do.

Each body goes to the running gateway (its API serves /v1/push/simple and
/multiple from lean.py) and to the FastAPI app alone (create_api, over the same
hub and store, through httpx's ASGI transport); status, error bodies and
headers must be the same. Accepted pushes are compared by shape (their IDs
differ), each side pushing to its own targets.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.api import ApiContext, create_api
from tests.harness import APP, RunningGateway

SIMPLE = {"delivery_type": "android", "target_id": "dev-1", "title": "t", "content": "c"}
MULTIPLE = {"delivery_type": "ios", "targets": [{"target_id": "a"}], "title": "t", "content": "c"}
BIG = "x" * 4000

SIMPLE_BODIES: list[Any] = [
    SIMPLE,
    {**SIMPLE, "msg_key": "k-1", "ext": {"a": "b"}, "expired_seconds": 60, "extra": [1]},
    {**SIMPLE, "delivery_type": "user", "title": "é\U0001f600"},
    {**SIMPLE, "msg_key": None},
    {**SIMPLE, "expired_seconds": "3600"},
    {**SIMPLE, "expired_seconds": 3600.0},
    {**SIMPLE, "expired_seconds": True},
    {**SIMPLE, "expired_seconds": 0},
    {**SIMPLE, "expired_seconds": 2_592_001},
    {**SIMPLE, "title": 7},
    {**SIMPLE, "content": None},
    {**SIMPLE, "ext": {"k": 1}},
    {**SIMPLE, "ext": None},
    {**SIMPLE, "ext": {str(i): "v" for i in range(257)}},
    {**SIMPLE, "target_id": 12},
    {**SIMPLE, "target_id": "a b"},
    {**SIMPLE, "target_id": "x" * 129},
    {**SIMPLE, "msg_key": ""},
    {**SIMPLE, "delivery_type": "web"},
    {**SIMPLE, "delivery_type": ["android"]},
    {k: v for k, v in SIMPLE.items() if k != "title"},
    {**SIMPLE, "title": BIG, "content": BIG},  # 413 payload_too_large
    [1, 2],
    "text",
    None,
]

MULTIPLE_BODIES: list[Any] = [
    MULTIPLE,
    {**MULTIPLE, "targets": [{"target_id": "a", "msg_key": "m-1"}, {"target_id": "b"}]},
    {**MULTIPLE, "ext": {"k": "v"}, "expired_seconds": 10},
    {**MULTIPLE, "targets": []},
    {**MULTIPLE, "targets": [{"target_id": f"t{i}"} for i in range(1001)]},
    {**MULTIPLE, "targets": [{"target_id": "a"}, {"target_id": 5}]},
    {**MULTIPLE, "targets": [{"target_id": "a"}, "b"]},
    {**MULTIPLE, "targets": [{"target_id": "a", "template_kv": {"k": "v"}}]},
    {**MULTIPLE, "targets": [{"target_id": "a", "template_kv": {"k": 1}}]},
    {**MULTIPLE, "targets": "a"},
    {**MULTIPLE, "title": None},
    {k: v for k, v in MULTIPLE.items() if k not in ("title", "content")},
    {**MULTIPLE, "template": "nope"},
    {**MULTIPLE, "template": "nope", "title": None, "content": None},
    {**MULTIPLE, "delivery_type": "all"},
    {**MULTIPLE, "expired_seconds": -1, "targets": [{"target_id": 1}]},
    {**MULTIPLE, "title": BIG, "content": BIG},
    # Over 64 KiB: decoded in pieces, each target checked as it is decoded.
    {**MULTIPLE, "targets": [{"target_id": f"t{i}-{'y' * 90}"} for i in range(1000)]},
    {
        **MULTIPLE,
        "targets": [{"target_id": f"t{i}-{'y' * 90}"} for i in range(999)] + [{"target_id": ""}],
    },
    {
        **MULTIPLE,
        "expired_seconds": "9",
        "targets": [{"target_id": f"t{i}-{'y' * 90}"} for i in range(1000)],
    },
]


@pytest.fixture
async def both(gw: RunningGateway) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    g = gw.gateway
    ctx = ApiContext(hub=g.hub, store=g.store, settings=g.settings, clock=g.clock)
    transport = httpx.ASGITransport(app=create_api(ctx))
    headers = {"authorization": f"Bearer {APP.api_key}"}
    async with (
        gw.http() as lean,
        httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as plain,
    ):
        yield lean, plain


def _retarget(body: Any, side: str) -> Any:
    """The same body with its IDs made this side's own (so neither is a duplicate)."""
    if not isinstance(body, dict):
        return body
    body = dict(body)
    for key in ("target_id", "msg_key"):
        if isinstance(body.get(key), str) and body[key]:
            body[key] = f"{side}{body[key]}"
    if isinstance(body.get("targets"), list):
        body["targets"] = [_retarget(t, side) for t in body["targets"]]
    return body


def _shape(value: Any) -> Any:
    """An answer with the parts that differ per side (IDs, per-side keys) blanked."""
    if isinstance(value, dict):
        return {
            k: "*" if k in ("message_id", "msg_key", "target_id") else _shape(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return value


async def _compare(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], path: str, body: Any
) -> httpx.Response:
    lean, plain = both
    answers = []
    for client, side in ((lean, "L"), (plain, "P")):
        content = json.dumps(_retarget(body, side))
        answers.append(await client.post(path, content=content))
    a, b = answers
    assert a.status_code == b.status_code, (str(body)[:200], a.text, b.text)
    assert a.headers["content-type"] == b.headers["content-type"]
    assert a.headers.get("retry-after") == b.headers.get("retry-after")
    if a.status_code == 200:
        assert _shape(a.json()) == _shape(b.json())
    else:
        assert a.json() == b.json()
    return a


async def test_simple_answers_equal_fastapi(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    # One gateway for every body (a gateway per case would cost a second each).
    for body in SIMPLE_BODIES:
        await _compare(both, "/v1/push/simple", body)


async def test_multiple_answers_equal_fastapi(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    for body in MULTIPLE_BODIES:
        await _compare(both, "/v1/push/multiple", body)


# httpx's ASGI transport leaves its body iterator open when an app answers
# without reading to the end (the 401s, the 413): a warning of the test client.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"", {}),
        (b"{", {}),
        (b'{"a": NaN}', {}),
        (b"\xff\xfe", {}),
        (b"{}", {"authorization": ""}),
        (b"{}", {"authorization": "Bearer nope"}),
        (b"{}", {"authorization": "Basic abc"}),
        (b"{}" + b" " * (1024 * 1024), {}),  # over the 1 MiB of /simple: 413
    ],
)
async def test_raw_bodies_and_keys_answer_equal_fastapi(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient], content: bytes, headers: dict[str, str]
) -> None:
    lean, plain = both
    a = await lean.post("/v1/push/simple", content=content, headers=headers)
    b = await plain.post("/v1/push/simple", content=content, headers=headers)
    assert (a.status_code, a.json()) == (b.status_code, b.json())
    assert a.headers.get("www-authenticate") == b.headers.get("www-authenticate")


async def test_a_duplicate_and_a_conflict_answer_equal_fastapi(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    body = {**SIMPLE, "msg_key": "dup"}
    for _ in range(2):
        answer = await _compare(both, "/v1/push/simple", body)
    assert answer.json()["duplicate"] is True
    # The same (target, msg_key) with other content: 409 on both, for both routes.
    lean, plain = both
    for path, changed in (
        ("/v1/push/simple", {**body, "title": "other"}),
        ("/v1/push/multiple", {**MULTIPLE, "targets": [{"target_id": "dev-1", "msg_key": "dup"}]}),
    ):
        a = await lean.post(path, json=_retarget(changed, "L"))
        b = await plain.post(path, json=_retarget(changed, "P"))
        assert a.status_code == b.status_code == 409, (a.text, b.text)
        assert a.json() == json.loads(b.text.replace("'Pd", "'Ld"))


async def test_the_lean_routes_stay_documented(gw: RunningGateway) -> None:
    async with gw.http() as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert "/v1/push/simple" in paths and "/v1/push/multiple" in paths
        # Other methods on the same paths still reach FastAPI.
        assert (await client.get("/v1/push/simple")).status_code == 405
