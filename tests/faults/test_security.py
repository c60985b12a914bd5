"""Security: secrets out of logs and the file, tenants apart, injection inert, TLS, Origin."""

from __future__ import annotations

import hashlib
import inspect
import sqlite3
import ssl
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import trio
import trustme

from client_sim.connection import open_device_connection
from client_sim.errors import ConnectionClosed, HandshakeError
from gateway.settings import AppDeclaration
from protocol import Ack, Bind, Bound, Error, Ping, Pong, Push, bind_signature, device_token, tokens
from tests.harness import (
    APP,
    OTHER_APP,
    ServerProcess,
    api_client,
    connect_device,
    hello_for,
    push_simple,
    receive,
    receive_nothing,
    start_server_process,
)

from .common import assert_clean_log, database_bytes, port_of
from .raw import connect as raw_connect
from .raw import read_until_closed, upgrade_request

# --- secrets never logged, never stored raw ----------------------------------------

SECRET_APP = AppDeclaration("vault", "APIKEY-Sentinel-7f3a9c", "SECRET-Sentinel-51d2e8")
SENTINELS = {
    "api key": SECRET_APP.api_key,
    "secret": SECRET_APP.secret,
    "device token": device_token(SECRET_APP.secret, "vault", "phone-1"),
    "bind sig": bind_signature(SECRET_APP.secret, "vault", "phone-1", "alice"),
    "wrong key": "WRONGKEY-Sentinel-0c4d1b",
    "wrong token": "feedface" * 8,
    "title": "TITLE-Sentinel-93e1",
    "content": "CONTENT-Sentinel-6b0f",
    "ext": "EXTVALUE-Sentinel-2a7c",
    "template": "TEMPLATE-Sentinel-c8d4",
}


async def test_tokens_keys_and_payloads_never_reach_the_log_or_the_file(
    tmp_path: Path, server_processes: list[ServerProcess]
) -> None:
    db = tmp_path / "vault.db"
    server = start_server_process(db, "--log-level", "debug", apps=(SECRET_APP,))
    server_processes.append(server)
    s = SENTINELS
    async with api_client(server.api, SECRET_APP) as client:
        conn, _ = await connect_device(server.ws_url, "phone-1", app=SECRET_APP)
        await conn.send_frame(Bind(user="alice", sig=s["bind sig"]))
        assert isinstance(await receive(conn), Bound)
        answer = await push_simple(
            client, "phone-1", title=s["title"], content=s["content"], ext={"k": s["ext"]}
        )
        push = await receive(conn)
        assert isinstance(push, Push) and push.title == s["title"]
        await conn.send_frame(Ack(ids=(push.id,)))
        template = {"title": s["template"] + " #n#", "content": s["content"]}
        assert (await client.put("/v1/templates/greet", json=template)).status_code == 200
        # Refusals carry the secrets too: a conflict, an oversize push, bad JSON.
        conflict = await client.post(
            "/v1/push/simple",
            json={
                "delivery_type": "android",
                "target_id": "phone-1",
                "msg_key": answer["msg_key"],
                "title": s["title"] + "!",
                "content": s["content"],
            },
        )
        assert conflict.status_code == 409
        big = {"delivery_type": "user", "target_id": "alice", "title": s["title"]}
        big["content"] = s["content"] * 400
        assert (await client.post("/v1/push/simple", json=big)).status_code == 413
        bad = await client.post("/v1/push/simple", content=b"{" + s["content"].encode())
        assert bad.status_code == 400
        await conn.send_frame(Ping())
        assert isinstance(await receive(conn), Pong)
        await conn.aclose()
    async with api_client(server.api, AppDeclaration("vault", s["wrong key"], "x")) as wrong:
        assert (await wrong.get("/v1/devices/phone-1")).status_code == 401
    bad_hello = hello_for("phone-2", app=SECRET_APP)
    conn = await open_device_connection(server.tcp)
    await conn.send_frame(
        type(bad_hello)(v=1, app="vault", device="phone-2", platform="ios", token=s["wrong token"])
    )
    frame = await receive(conn)
    assert isinstance(frame, Error) and frame.code == "auth_failed"
    await conn.aclose()
    assert server.terminate() == 0

    log = server.log()
    assert "event=device_online" in log and "event=hello_rejected" in log  # it did log
    for what, value in s.items():
        assert value not in log, f"the {what} appears in the server log"
    # API keys are stored as SHA-256 only: not in the database file nor its WAL.
    raw = database_bytes(db)
    assert SECRET_APP.api_key.encode() not in raw
    with sqlite3.connect(db) as check:
        (stored,) = check.execute("SELECT api_key_hash FROM apps WHERE app_id = 'vault'").fetchone()
    assert stored == hashlib.sha256(SECRET_APP.api_key.encode()).hexdigest()


def test_tokens_are_compared_in_constant_time() -> None:
    source = inspect.getsource(tokens._matches)
    assert "hmac.compare_digest" in source
    good = device_token(APP.secret, APP.app_id, "d")
    assert tokens.verify_device_token(APP.secret, APP.app_id, "d", good)
    for wrong in (good[:-1] + "0", good[:-1], good + "0", good.upper(), "é" * 64, ""):
        if wrong != good:
            assert not tokens.verify_device_token(APP.secret, APP.app_id, "d", wrong)


# --- tenants apart --------------------------------------------------------------------


async def test_apps_never_see_each_others_devices_or_messages(
    tmp_path: Path, server_processes: list[ServerProcess]
) -> None:
    server = start_server_process(tmp_path / "tenants.db")
    server_processes.append(server)
    a_conn, _ = await connect_device(server.ws_url, "same-id", app=APP, platform="android")
    b_conn, _ = await connect_device(server.tcp, "same-id", app=OTHER_APP, platform="ios")
    async with api_client(server.api, APP) as a, api_client(server.api, OTHER_APP) as b:
        sent = await push_simple(a, "same-id", title="for app1 only")
        got = await receive(a_conn)
        assert isinstance(got, Push) and got.id == sent["message_id"]
        await receive_nothing(b_conn)  # the same device id in another app is another device

        # app2's device acks app1's message: nothing changes.
        await b_conn.send_frame(Ack(ids=(got.id,)))
        await b_conn.send_frame(Ping())
        assert isinstance(await receive(b_conn), Pong)
        assert (await a.get(f"/v1/messages/{got.id}")).json()["status"] == 0

        # app2's key reads, verifies, revokes nothing of app1's.
        mid = got.id
        assert (await b.get(f"/v1/messages/{mid}")).status_code == 404
        assert (await b.delete(f"/v1/messages/{mid}")).status_code == 404
        verify = await b.post(f"/v1/messages/{mid}/verify", json={"approve": True})
        assert verify.status_code == 404
        assert (await b.get(f"/v1/broadcasts/{mid}")).status_code == 404
        search = await b.get("/v1/messages", params={"target_id": "same-id", "msg_key": mid})
        assert search.status_code in (200, 404) and mid not in search.text
        listing = await b.get("/v1/messages")
        assert listing.status_code == 200 and mid not in listing.text
        assert (await b.get("/v1/devices/same-id")).json()["platform"] == "ios"
        assert (await a.get("/v1/devices/same-id")).json()["platform"] == "android"
        # Bindings live per app too.
        assert (
            await b.post("/v1/bindings", json={"user_id": "u", "device_id": "same-id"})
        ).status_code == 200
        assert (await a.get("/v1/devices/same-id")).json()["user_id"] is None
        user_push = await push_simple(b, "u", delivery_type="user", title="app2 user")
        await receive_nothing(a_conn)
        got_b = await receive(b_conn)
        assert isinstance(got_b, Push) and got_b.id == user_push["message_id"]

        # The owner's ack works.
        await a_conn.send_frame(Ack(ids=(mid,)))
        await a_conn.send_frame(Ping())
        assert isinstance(await receive(a_conn), Pong)
        assert (await a.get(f"/v1/messages/{mid}")).json()["status"] == 2
    await a_conn.aclose()
    await b_conn.aclose()
    assert server.terminate() == 0
    assert_clean_log(server)


# --- SQL injection ---------------------------------------------------------------------

INJECTIONS = [
    "x'OR'1'='1",
    "x');DROP/**/TABLE/**/messages;--",
    'x"OR"1"="1',
    "%'--",
    "1;DELETE/**/FROM/**/apps",
    "\\'\\\"",
    "a'||(SELECT/**/secret/**/FROM/**/apps)||'",
    "*/UNION/**/SELECT/**/1,2,3--",
]
WITH_SPACE = "x' OR '1'='1"


async def test_injection_strings_are_plain_data_everywhere(
    tmp_path: Path, server_processes: list[ServerProcess]
) -> None:
    db = tmp_path / "inject.db"
    server = start_server_process(db)
    server_processes.append(server)
    async with api_client(server.api) as client:
        for i, evil in enumerate(INJECTIONS):
            # A device and a user with that ID, pushes keyed by it.
            conn, _ = await connect_device(server.tcp if i % 2 else server.ws_url, evil)
            sig = bind_signature(APP.secret, APP.app_id, evil, evil)
            await conn.send_frame(Bind(user=evil, sig=sig))
            assert isinstance(await receive(conn), Bound)
            sent = await push_simple(client, evil, msg_key=evil, title=evil, content=evil)
            assert sent["msg_key"] == evil
            user_sent = await push_simple(client, evil, delivery_type="user", msg_key=evil + "u")
            for expected in (sent, user_sent):
                got = await receive(conn)
                assert isinstance(got, Push) and got.id == expected["message_id"]
                assert got.msg_key == expected["msg_key"]
            await conn.send_frame(Ack(ids=(str(sent["message_id"]), evil)))
            await conn.aclose()

            q = quote(evil, safe="")
            device = (await client.get(f"/v1/devices/{q}")).json()
            assert device["device_id"] == evil and device["user_id"] == evil
            users = (await client.get(f"/v1/users/{q}/devices")).json()
            assert [d["device_id"] for d in users["items"]] == [evil]
            found = await client.get("/v1/messages", params={"target_id": evil, "msg_key": evil})
            assert found.status_code == 200, found.text
            assert [m["msg_key"] for m in found.json()["items"]] == [evil]
            template = {"title": evil, "content": "#k#"}
            assert (await client.put(f"/v1/templates/{q}", json=template)).status_code == 200
            assert (await client.get(f"/v1/templates/{q}")).json()["title"] == evil
            templated = await client.post(
                "/v1/push/template",
                json={
                    "delivery_type": "android",
                    "target_id": evil,
                    "template": evil,
                    "template_kv": {"k": evil},
                },
            )
            assert templated.status_code == 200, templated.text
            assert (await client.delete(f"/v1/templates/{q}")).status_code in (200, 204)
            for path in (f"/v1/messages/{q}", f"/v1/broadcasts/{q}"):
                assert (await client.get(path)).status_code == 404
            assert (await client.delete(f"/v1/messages/{q}")).status_code == 404
            verify = await client.post(f"/v1/messages/{q}/verify", json={"approve": True})
            assert verify.status_code == 404
            unbind = await client.delete(f"/v1/bindings/{q}")
            assert unbind.status_code == 200

        # IDs with whitespace are refused with a 400 naming the field.
        body = {"delivery_type": "android", "target_id": WITH_SPACE, "title": "t", "content": "c"}
        refused = await client.post("/v1/push/simple", json=body)
        assert refused.status_code == 400 and refused.json()["error"]["field"] == "target_id"
        binding = {"user_id": WITH_SPACE, "device_id": "d"}
        assert (await client.post("/v1/bindings", json=binding)).status_code == 400
    assert server.terminate() == 0
    assert_clean_log(server)

    with sqlite3.connect(db) as check:
        tables = {r[0] for r in check.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"apps", "devices", "messages", "deliveries", "templates"} <= tables
        assert check.execute("SELECT count(*) FROM apps").fetchone()[0] == 2
        count = check.execute("SELECT count(*) FROM messages").fetchone()[0]
        assert count == 3 * len(INJECTIONS)
        stored = {r[0] for r in check.execute("SELECT DISTINCT target_id FROM messages")}
        assert stored == set(INJECTIONS)


# --- TLS --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> tuple[str, str]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    return str(cert_path), str(key_path)


async def test_tls_on_every_listener(
    tmp_path: Path,
    server_processes: list[ServerProcess],
    ca: trustme.CA,
    tls_files: tuple[str, str],
) -> None:
    cert, key = tls_files
    server = start_server_process(tmp_path / "tls.db", "--tls-cert", cert, "--tls-key", key)
    server_processes.append(server)
    assert server.api.startswith("https://")
    assert server.ws.startswith("wss://") and server.tcp.startswith("tls://")
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)

    async with httpx.AsyncClient(
        base_url=server.api, headers={"authorization": f"Bearer {APP.api_key}"}, verify=trusting
    ) as client:
        ids = [(await push_simple(client, f"sec-{t}"))["message_id"] for t in ("ws", "tcp")]
    for transport, url, message_id in zip(
        ("ws", "tcp"), (server.ws_url, server.tcp), ids, strict=True
    ):
        conn = await open_device_connection(url, ssl_context=trusting)
        await conn.send_frame(hello_for(f"sec-{transport}"))
        await receive(conn)  # welcome
        got = await receive(conn)
        assert isinstance(got, Push) and got.id == message_id
        await conn.aclose()

    # Plaintext to a TLS port, or a client that does not trust the certificate:
    # refused at the handshake, and the gateway carries on.
    with pytest.raises((HandshakeError, ConnectionClosed, trio.TooSlowError)):
        await open_device_connection(
            f"ws://127.0.0.1:{port_of(server.ws)}/v1/connect", connect_timeout=3
        )
    with pytest.raises(ConnectionClosed):
        await open_device_connection(server.tcp, ssl_context=ssl.create_default_context())
    conn = await open_device_connection(server.ws_url, ssl_context=trusting)
    await conn.send_frame(hello_for("after"))
    await receive(conn)
    await conn.send_frame(Ping())
    assert isinstance(await receive(conn), Pong)
    await conn.aclose()
    assert server.terminate() == 0
    assert "event=tls_handshake_failed" in server.log()
    assert_clean_log(server)


# --- Origin allow-list -----------------------------------------------------------------


async def test_origin_allow_list(tmp_path: Path, server_processes: list[ServerProcess]) -> None:
    allowed = "https://console.example.com"
    server = start_server_process(
        tmp_path / "origin.db", "--ws-origin", allowed, "--ws-origin", "http://localhost:8080"
    )
    server_processes.append(server)
    port = port_of(server.ws)

    def upgrade(origin: str | None) -> bytes:
        sock = raw_connect(port)
        sock.sendall(upgrade_request(port, origin=origin))
        data = b""
        sock.settimeout(5)
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        if data.startswith(b"HTTP/1.1 403"):
            data += read_until_closed(sock)[0]
        sock.close()
        return data

    evil = await trio.to_thread.run_sync(upgrade, "https://evil.example")
    assert evil.startswith(b"HTTP/1.1 403"), evil
    assert b"origin not allowed" in evil
    for origin in (allowed, "http://localhost:8080", None):  # None: a native app
        answer = await trio.to_thread.run_sync(upgrade, origin)
        assert answer.startswith(b"HTTP/1.1 101"), (origin, answer)
    conn, _ = await connect_device(server.ws_url, "native")  # no Origin header at all
    await conn.aclose()
    assert server.terminate() == 0
    assert_clean_log(server)
