"""What the simulator added to `Device` and `DeviceConnection`: hooks, drop, abort."""

from __future__ import annotations

from functools import partial

import trio
from trio.testing import MockClock, wait_all_tasks_blocked
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request

from client_sim import Device, DeviceConfig, open_device_connection
from client_sim.received import ReceivedPush
from tests.harness import APP, SAFETY_NET, RunningGateway, push_simple


def config(gw: RunningGateway, device_id: str = "dev", **overrides) -> DeviceConfig:
    return DeviceConfig(
        url=gw.ws_url,
        app=APP.app_id,
        device_id=device_id,
        secret=APP.secret,
        backoff_base=0.05,
        backoff_cap=0.1,
        **overrides,
    )


async def test_hooks_see_pushes_repeats_acks_and_connections(live: RunningGateway):
    pushes: list[ReceivedPush] = []
    repeats: list[ReceivedPush] = []
    acked: list[tuple[str, ...]] = []
    connections: list[bool] = []
    device = Device(
        config(live, ack_mode="never"),
        on_push=pushes.append,
        on_duplicate=repeats.append,
        on_acked=lambda ids: acked.append(tuple(ids)),
        on_connection=connections.append,
    )
    with trio.fail_after(SAFETY_NET):
        async with trio.open_nursery() as nursery, live.http() as http:
            await nursery.start(device.run)
            answer = await push_simple(http, "dev")
            await device.wait_for_pushes(1, timeout=SAFETY_NET)
            first_session = device.session
            # A network failure: no goodbye; the device comes back by itself
            # and, having acked nothing, gets the message again.
            await device.drop()
            await device.wait_for(lambda: device.duplicates == 1, timeout=SAFETY_NET)
            await device.ack([str(answer["message_id"])])
            await device.close()
    assert [p.push.id for p in pushes] == [answer["message_id"]]
    assert [r.push.id for r in repeats] == [answer["message_id"]]
    assert repeats[0].session != first_session == pushes[0].session
    assert acked == [(answer["message_id"],)]
    assert connections == [True, False, True, False]
    assert device.welcomes == 2


async def test_drop_when_not_connected_does_nothing(live: RunningGateway):
    device = Device(config(live))
    await device.drop()
    assert device.connection is None


async def silent_ws_server(stream: trio.SocketStream) -> None:
    """Accepts the WebSocket upgrade, then reads and never answers anything."""
    ws = WSConnection(ConnectionType.SERVER)
    while data := await stream.receive_some(65536):
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, Request):
                await stream.send_all(ws.send(AcceptConnection()))


async def test_abort_ends_a_close_handshake_waiting_for_an_answer(autojump_clock: MockClock):
    with trio.fail_after(SAFETY_NET):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, silent_ws_server, 0))
            port = listeners[0].socket.getsockname()[1]
            conn = await open_device_connection(
                f"ws://127.0.0.1:{port}/v1/connect", close_timeout=3.0
            )

            async def read() -> None:
                try:
                    await conn.receive_frame()
                except Exception:
                    pass

            nursery.start_soon(read)
            await wait_all_tasks_blocked()  # the reader waits in receive_frame
            started = trio.current_time()
            async with trio.open_nursery() as closing:
                closing.start_soon(conn.aclose)  # waits for a close answer that never comes
                await wait_all_tasks_blocked()
                await conn.abort()
            assert trio.current_time() - started < 3.0  # the close_timeout, in virtual time
            assert conn.closed
            nursery.cancel_scope.cancel()
