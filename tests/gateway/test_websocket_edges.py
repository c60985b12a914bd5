"""WebSocket edge cases over real sockets (issue 9, item 13).

- A whole message followed, in the same read, by a close or a bad frame is
  still delivered: a device's last ack before it closes is recorded.
- The gateway's close is a close handshake (RFC 6455 §7.1.1): a peer still
  sending when the gateway closes gets every byte the gateway sent and a clean
  end of stream, not a reset; the wait for its answer is bounded in time and
  in bytes.
- A message in many pieces is put together in linear time.

Gateway-level tests drive a real gateway on free ports with hand-made frames;
transport-level tests put `WebSocketTransport` on one end of a real loopback
TCP connection and a raw peer on the other.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from gateway.transports.ws import (
    CLOSE_DRAIN_BYTES,
    CLOSE_DRAIN_SECONDS,
    RECEIVE_CHUNK,
    WebSocketClosed,
    WebSocketTransport,
    data_frame,
)
from protocol import Ack, Bye, Error, ErrorCode, Frame, ProtocolError, Push, Welcome, decode, encode
from tests.faults.common import port_of
from tests.faults.raw import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    parse_server_frames,
    upgrade_request,
    ws_frame,
)
from tests.harness import RunningGateway, hello_for, message_details, push_simple

CLOSE_1000 = struct.pack(">H", 1000)


class RawPeer:
    """The client end of a WebSocket: hand-made frames out, server frames parsed in."""

    def __init__(self, stream: trio.SocketStream, early: bytes) -> None:
        self.stream = stream
        self.received = bytearray(early)

    @classmethod
    async def upgrade(cls, stream: trio.SocketStream, port: int) -> RawPeer:
        return await cls.upgrade_with(stream, port, b"")

    @classmethod
    async def upgrade_with(cls, stream: trio.SocketStream, port: int, early: bytes) -> RawPeer:
        """The upgrade, with `early` (frames) sent in the same write as the request."""
        await stream.send_all(upgrade_request(port) + early)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(4096)
            assert chunk, f"closed during the upgrade: {data!r}"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(stream, rest)

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def next_frame(self) -> tuple[int, bytes]:
        """The next whole server frame (opcode, payload); server frames are unmasked."""
        while True:
            parsed = _split_frame(self.received)
            if parsed is not None:
                opcode, payload, used = parsed
                del self.received[:used]
                return opcode, payload
            chunk = await self.stream.receive_some(65_536)
            assert chunk, "the gateway closed before a whole frame"
            self.received += chunk

    async def next_message(self) -> Frame:
        opcode, payload = await self.next_frame()
        assert opcode == OP_BINARY, (opcode, payload)
        return decode(payload)

    async def read_to_end(self) -> tuple[bytes, bool]:
        """Everything until the gateway's end of stream; (bytes, reset)."""
        chunks = [bytes(self.received)]
        self.received.clear()
        try:
            while chunk := await self.stream.receive_some(65_536):
                chunks.append(chunk)
        except trio.BrokenResourceError:
            return b"".join(chunks), True
        return b"".join(chunks), False

    async def peek(self, size: int) -> bytes:
        """The next `size` bytes, left unread (MSG_PEEK): what the gateway sent stays
        in our receive buffer, where a connection reset would drop it."""
        assert not self.received
        sock = self.stream.socket
        while len(data := await sock.recv(size, trio.socket.MSG_PEEK)) < size:
            await trio.sleep(0.01)  # more is on its way: wait_readable would return at once
        return data


def _split_frame(data: bytearray) -> tuple[int, bytes, int] | None:
    if len(data) < 2:
        return None
    size, start = data[1] & 0x7F, 2
    if size == 126:
        if len(data) < 4:
            return None
        size, start = struct.unpack(">H", data[2:4])[0], 4
    elif size == 127:
        if len(data) < 10:
            return None
        size, start = struct.unpack(">Q", data[2:10])[0], 10
    if len(data) < start + size:
        return None
    return data[0] & 0x0F, bytes(data[start : start + size]), start + size


def binary(frame: Frame) -> bytes:
    return ws_frame(OP_BINARY, encode(frame))


# --- against a running gateway ------------------------------------------------------


@asynccontextmanager
async def open_device(gw: RunningGateway, device: str) -> AsyncIterator[RawPeer]:
    """A device past `welcome` on a raw connection, closed at the end."""
    port = port_of(gw.addresses.ws)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        peer = await RawPeer.upgrade(stream, port)
        await peer.send(binary(hello_for(device)))
        assert isinstance(await peer.next_message(), Welcome)
        yield peer
    finally:
        await trio.aclose_forcefully(stream)


async def wait_acked(gw: RunningGateway, message_id: object) -> None:
    """The store committed the ack (status 2): polled through the API."""
    async with gw.http() as client:
        while (await message_details(client, message_id))["status"] != 2:
            await trio.sleep(0.02)


async def pushed(gw: RunningGateway, peer: RawPeer, device: str) -> str:
    async with gw.http() as client:
        answer = await push_simple(client, device)
    push = await peer.next_message()
    assert isinstance(push, Push) and push.id == answer["message_id"]
    return push.id


async def to_wsproto(peer: RawPeer) -> None:
    """A WebSocket ping: from here on the gateway reads this connection with wsproto."""
    await peer.send(ws_frame(OP_PING, b"p"))
    assert await peer.next_frame() == (OP_PONG, b"p")


READERS = ["fast_path", "wsproto"]


@pytest.mark.parametrize("reader", READERS)
async def test_an_ack_sent_with_the_close_is_recorded(gw: RunningGateway, reader: str) -> None:
    with trio.fail_after(20):
        async with open_device(gw, "last-ack") as peer:
            if reader == "wsproto":
                await to_wsproto(peer)
            message_id = await pushed(gw, peer, "last-ack")
            # The device's last ack and its close, in one write (so in one read).
            await peer.send(binary(Ack(ids=(message_id,))) + ws_frame(OP_CLOSE, CLOSE_1000))
            rest, reset = await peer.read_to_end()
            assert not reset
            assert parse_server_frames(rest).close_code == 1000
            await wait_acked(gw, message_id)


BAD_AFTER_ACK = [
    pytest.param(ws_frame(OP_BINARY, b"x", rsv=4), 1002, None, id="rsv_bit"),
    pytest.param(ws_frame(0x3, b"reserved"), 1002, None, id="reserved_opcode"),
    pytest.param(ws_frame(OP_CONT, b"orphan"), 1002, None, id="orphan_continuation"),
    pytest.param(ws_frame(OP_TEXT, b"hello"), 1003, ErrorCode.TEXT_NOT_ALLOWED, id="text"),
    pytest.param(
        ws_frame(OP_BINARY, b"\0" * 65_537), 1009, ErrorCode.FRAME_TOO_LARGE, id="too_large"
    ),
]


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(("bad", "close_code", "error"), BAD_AFTER_ACK)
async def test_an_ack_followed_by_a_bad_frame_is_recorded(
    gw: RunningGateway, reader: str, bad: bytes, close_code: int, error: str | None
) -> None:
    with trio.fail_after(20):
        device = f"bad-after-ack-{reader}-{close_code}"
        async with open_device(gw, device) as peer:
            if reader == "wsproto":
                await to_wsproto(peer)
            message_id = await pushed(gw, peer, device)
            await peer.send(binary(Ack(ids=(message_id,))) + bad + ws_frame(OP_CLOSE, CLOSE_1000))
            rest, _ = await peer.read_to_end()
            reply = parse_server_frames(rest)
            assert reply.close_code == close_code, reply
            errors = [decode(m) for m in reply.messages]
            assert all(isinstance(e, Error) for e in errors)
            assert [e.code for e in errors if isinstance(e, Error)] == ([error] if error else [])
            await wait_acked(gw, message_id)


@pytest.mark.parametrize("reader", READERS)
async def test_a_device_still_sending_when_replaced_gets_a_clean_close(
    gw: RunningGateway, reader: str
) -> None:
    with trio.fail_after(20):
        async with open_device(gw, "replaced") as old:
            if reader == "wsproto":
                await to_wsproto(old)
            async with open_device(gw, "replaced"):  # the gateway closes `old`
                closing = data_frame(encode(Bye(reason="replaced"))) + b"\x88\x02" + CLOSE_1000
                # Unread, `bye` and the close wait in our receive buffer while we still
                # send: a gateway closing at once with our frames unread resets the
                # connection, and the reset drops them.
                assert await old.peek(len(closing)) == closing
                await old.send(b"".join(binary(Ack(ids=(f"late-{i}",))) for i in range(50)))
                await old.send(ws_frame(OP_CLOSE, CLOSE_1000))  # our answer to its close
                rest, reset = await old.read_to_end()
                assert not reset
                reply = parse_server_frames(rest)
                assert [decode(m) for m in reply.messages] == [Bye(reason="replaced")]
                assert reply.close_code == 1000


# --- the transport alone, on a real loopback connection ---------------------------


class CountingStream(trio.abc.Stream):
    """A socket stream that counts the bytes read from it."""

    def __init__(self, inner: trio.SocketStream) -> None:
        self.inner = inner
        self.received = 0

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        data = await self.inner.receive_some(max_bytes)
        self.received += len(data)
        return bytes(data)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def transport_and_peer(
    max_frame_size: int = 65_536, *, counted: bool = False
) -> AsyncIterator[tuple[WebSocketTransport, RawPeer, CountingStream | None]]:
    """An upgraded transport on the server end of a loopback TCP connection, the
    peer on the client end (`counted`: the transport reads through a CountingStream)."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listeners[0].accept()
    await listeners[0].aclose()
    counter = CountingStream(server) if counted else None
    transport = WebSocketTransport(counter or server, "test", max_frame_size)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(transport.handshake)
        peer = await RawPeer.upgrade(client, port)
    try:
        yield transport, peer, counter
    finally:
        await trio.aclose_forcefully(client)
        await transport.aclose_forcefully()


async def test_messages_before_the_peers_close_come_first() -> None:
    with trio.fail_after(10):
        async with transport_and_peer() as (transport, peer, _):
            first, second = binary(Ack(ids=("1",))), binary(Ack(ids=("2",)))
            # After a ping wsproto reads: both messages and the close in one read.
            await peer.send(
                ws_frame(OP_PING, b"") + first + second + ws_frame(OP_CLOSE, CLOSE_1000)
            )
            assert decode(await transport.receive() or b"") == Ack(ids=("1",))
            assert decode(await transport.receive() or b"") == Ack(ids=("2",))
            assert await transport.receive() is None
            assert await peer.next_frame() == (OP_PONG, b"")
            assert await peer.next_frame() == (OP_CLOSE, CLOSE_1000)  # the answer


async def test_a_reply_to_the_last_message_goes_before_the_close_answer() -> None:
    # RFC 6455 §5.5.1: the answering close may wait until replies are sent.
    with trio.fail_after(10):
        async with transport_and_peer() as (transport, peer, _):
            await peer.send(binary(Ack(ids=("last",))) + ws_frame(OP_CLOSE, CLOSE_1000))
            assert decode(await transport.receive() or b"") == Ack(ids=("last",))
            await transport.send([b"reply"])
            assert await transport.receive() is None
            assert await peer.next_frame() == (OP_BINARY, b"reply")
            assert await peer.next_frame() == (OP_CLOSE, CLOSE_1000)
            with pytest.raises(trio.ClosedResourceError):
                await transport.send([b"after the close"])


async def test_the_close_wait_is_bounded_in_time_for_a_silent_peer(
    autojump_clock: trio.testing.MockClock,  # the wait is virtual: no real 2 s
) -> None:
    with trio.fail_after(30):
        async with transport_and_peer() as (transport, peer, _):
            started = trio.current_time()
            await transport.close()  # the peer never answers
            waited = trio.current_time() - started
            rest, reset = await peer.read_to_end()
    assert waited == pytest.approx(CLOSE_DRAIN_SECONDS)
    assert not reset  # nothing was left unread: a plain end of stream
    assert parse_server_frames(rest).close_code == 1000


async def test_the_close_wait_is_bounded_in_bytes_for_a_flooding_peer() -> None:
    flood = ws_frame(OP_BINARY, b"f" * 4000) * 256  # 1 MB, four times the budget
    cut_off = False

    async def keep_sending(peer: RawPeer) -> None:
        nonlocal cut_off
        try:
            await peer.send(flood)
        except trio.BrokenResourceError:
            cut_off = True

    with trio.fail_after(30):
        async with transport_and_peer(counted=True) as (transport, peer, counter):
            assert counter is not None
            async with trio.open_nursery() as nursery:
                nursery.start_soon(keep_sending, peer)
                await transport.close()
    assert cut_off  # the gateway stopped reading and closed while the flood went on
    assert counter.received <= CLOSE_DRAIN_BYTES + RECEIVE_CHUNK, counter.received


async def test_a_message_in_many_pieces_is_put_together_in_linear_time() -> None:
    pieces, piece = 16_384, b"0123456789abcdef" * 64  # 16 MiB in 1 KiB fragments
    # Copying the whole buffer per piece would move 128 GiB: far past the deadline.
    with trio.fail_after(60):
        limit = pieces * len(piece)
        async with transport_and_peer(max_frame_size=limit) as (transport, peer, _):

            async def send_pieces() -> None:
                await peer.send(ws_frame(OP_BINARY, piece, fin=False))
                middle = ws_frame(OP_CONT, piece, fin=False)
                for _ in range((pieces - 2) // 256):
                    await peer.send(middle * 256)
                await peer.send(middle * ((pieces - 2) % 256) + ws_frame(OP_CONT, piece))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_pieces)
                message = await transport.receive()
    assert message == piece * pieces


async def test_an_oversize_message_fails_before_its_bytes_are_kept() -> None:
    with trio.fail_after(10):
        async with transport_and_peer(max_frame_size=1000) as (transport, peer, _):
            await peer.send(
                binary(Ack(ids=("a",)))
                + ws_frame(OP_BINARY, b"x" * 600, fin=False)
                + ws_frame(OP_CONT, b"y" * 600)
            )
            assert decode(await transport.receive() or b"") == Ack(ids=("a",))
            with pytest.raises(ProtocolError) as failed:
                await transport.receive()
            assert failed.value.code == ErrorCode.FRAME_TOO_LARGE


async def test_broken_framing_after_messages_returns_them_then_fails() -> None:
    with trio.fail_after(10):
        async with transport_and_peer() as (transport, peer, _):
            first, second = binary(Ack(ids=("1",))), binary(Ack(ids=("2",)))
            await peer.send(ws_frame(OP_PING, b"") + first + second + ws_frame(0x3, b""))
            assert decode(await transport.receive() or b"") == Ack(ids=("1",))
            assert decode(await transport.receive() or b"") == Ack(ids=("2",))
            with pytest.raises(WebSocketClosed) as failed:
                await transport.receive()
            assert failed.value.code == 1002
            await transport.aclose_forcefully()  # as the session does after it
            rest, _ = await peer.read_to_end()
    reply = parse_server_frames(rest)
    assert reply.other == [OP_PONG]
    assert reply.close_code == 1002
