"""A tiny fake gateway for the client_sim tests.

Real sockets on 127.0.0.1, port 0: WebSocket (wsproto, server side) or
length-prefixed TCP. It speaks just enough of CONTRACT.md section 3 to drive a
device: checks `hello` (token), answers `welcome`, answers ping/bind/unbind,
records every payload and frame, and lets a test push, send `bye`, close with a
code, or drop the connection.
"""

from __future__ import annotations

import abc
import shutil
import ssl
import subprocess
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)

from client_sim import Device, DeviceConfig
from protocol import (
    Ack,
    Bind,
    Bound,
    Bye,
    Error,
    Frame,
    Framer,
    Hello,
    ProtocolError,
    Push,
    Unbind,
    Unbound,
    Welcome,
    decode,
    encode,
    verify_bind_signature,
    verify_device_token,
)
from protocol import Ping as PingFrame
from protocol import Pong as PongFrame
from protocol.framing import prefix
from tests.harness import SAFETY_NET

APP = "app-1"
SECRET = "test-secret"
WS_PATH = "/v1/connect"


# --- server side of the two transports ---------------------------------------------


class ServerConn(abc.ABC):
    def __init__(self, stream: trio.abc.Stream, notify: Callable[[], None]) -> None:
        self.stream = stream
        self.notify = notify
        self.lock = trio.Lock()

    async def accept(self) -> bool:
        return True

    async def send(self, *frames: Frame) -> None:
        await self.send_payloads([encode(f) for f in frames])

    async def send_payloads(self, payloads: list[bytes]) -> None:
        async with self.lock:
            await self.stream.send_all(self.wrap(payloads))

    @abc.abstractmethod
    def wrap(self, payloads: list[bytes]) -> bytes: ...

    @abc.abstractmethod
    async def receive_payload(self) -> bytes | None:
        """The next frame body; None once the device is gone."""

    @abc.abstractmethod
    async def close(self, code: int = 1000, reason: str = "") -> None: ...

    @abc.abstractmethod
    async def send_and_close(self, frame: Frame, code: int, reason: str) -> None: ...

    async def drop(self) -> None:
        await trio.aclose_forcefully(self.stream)

    async def _read(self) -> bytes:
        try:
            return await self.stream.receive_some(65_536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""


class TcpServerConn(ServerConn):
    def __init__(self, stream: trio.abc.Stream, notify: Callable[[], None]) -> None:
        super().__init__(stream, notify)
        self.framer = Framer()

    def wrap(self, payloads: list[bytes]) -> bytes:
        return b"".join(prefix(p) + p for p in payloads)

    async def receive_payload(self) -> bytes | None:
        while (payload := self.framer.next_payload()) is None:
            data = await self._read()
            if not data:
                return None
            self.framer.feed(data)
        return payload

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.stream.aclose()

    async def send_and_close(self, frame: Frame, code: int, reason: str) -> None:
        await self.send(frame)
        await self.stream.aclose()


class WsServerConn(ServerConn):
    def __init__(self, stream: trio.abc.Stream, notify: Callable[[], None]) -> None:
        super().__init__(stream, notify)
        self.ws = WSConnection(ConnectionType.SERVER)
        self.ready: deque[bytes] = deque()
        self.partial = bytearray()
        self.texts: list[str] = []
        self.pongs: list[bytes] = []
        self.close_code: int | None = None  # the code the device closed with
        self.done = False

    async def accept(self) -> bool:
        while True:
            data = await self._read()
            if not data:
                return False
            self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, Request):
                    if event.target != WS_PATH:
                        await self.stream.send_all(self.ws.send(RejectConnection(status_code=404)))
                        return False
                    await self.stream.send_all(self.ws.send(AcceptConnection()))
                    return True

    def wrap(self, payloads: list[bytes]) -> bytes:
        return b"".join(self.ws.send(BytesMessage(data=p)) for p in payloads)

    async def send_event(self, event: Any) -> None:
        async with self.lock:
            if self.ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
                await self.stream.send_all(self.ws.send(event))

    async def send_text(self, text: str) -> None:
        await self.send_event(TextMessage(data=text))

    async def ping(self, payload: bytes) -> None:
        await self.send_event(Ping(payload=payload))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.send_event(CloseConnection(code=code, reason=reason))

    async def send_and_close(self, frame: Frame, code: int, reason: str) -> None:
        """The frame and the close frame in one write, as a gateway does after `error`."""
        async with self.lock:
            data = self.wrap([encode(frame)]) + self.ws.send(CloseConnection(code, reason))
            await self.stream.send_all(data)

    async def receive_payload(self) -> bytes | None:
        while not self.ready:
            if self.done or self.ws.state is ConnectionState.CLOSED:
                return None
            data = await self._read()
            self.ws.receive_data(data or None)
            for event in list(self.ws.events()):
                if isinstance(event, BytesMessage):
                    self.partial += event.data
                    if event.message_finished:
                        self.ready.append(bytes(self.partial))
                        self.partial.clear()
                elif isinstance(event, TextMessage):
                    self.texts.append(event.data)
                elif isinstance(event, Ping):
                    await self.send_event(event.response())
                elif isinstance(event, Pong):
                    self.pongs.append(bytes(event.payload))
                    self.notify()
                elif isinstance(event, CloseConnection):
                    self.close_code = event.code
                    if self.ws.state is ConnectionState.REMOTE_CLOSING:
                        await self.send_event(event.response())
                    self.done = True
        return self.ready.popleft()


# --- the gateway --------------------------------------------------------------------


@dataclass(eq=False)
class FakeSession:
    gateway: FakeGateway
    conn: ServerConn
    hello: Hello
    name: str
    peer: str
    frames: list[Frame] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    ended: trio.Event = field(default_factory=trio.Event)

    @property
    def acks(self) -> list[Ack]:
        return [f for f in self.frames if isinstance(f, Ack)]

    @property
    def acked_ids(self) -> list[str]:
        return [i for ack in self.acks for i in ack.ids]

    async def send(self, *frames: Frame) -> None:
        await self.conn.send(*frames)

    async def push(self, *ids: str) -> list[Push]:
        pushes = [make_push(i) for i in ids]
        await self.conn.send(*pushes)
        return pushes

    async def bye(self, reason: str) -> None:
        await self.conn.send(Bye(reason=reason))
        await self.conn.close(1000, reason)

    async def drop(self) -> None:
        await self.conn.drop()


def make_push(message_id: str, *, created: int = 1_700_000_000_000) -> Push:
    return Push(
        id=message_id,
        msg_key=f"key-{message_id}",
        push_type="simple",
        title="hello",
        content=f"content of {message_id}",
        ext={"k": "v"},
        created=created,
        expires=created + 3_600_000,
    )


class FakeGateway:
    def __init__(
        self, transport: str, heartbeat: int = 30, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.transport = transport
        self.ssl_context = ssl_context
        self.heartbeat = heartbeat
        self.app = APP
        self.secret = SECRET
        self.port = 0
        self.sessions: list[FakeSession] = []
        self.rejected: list[Hello] = []
        self._changed = trio.Event()

    @property
    def url(self) -> str:
        tls = self.ssl_context is not None
        if self.transport == "ws":
            return f"{'wss' if tls else 'ws'}://127.0.0.1:{self.port}{WS_PATH}"
        return f"{'tls' if tls else 'tcp'}://127.0.0.1:{self.port}"

    def notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = SAFETY_NET) -> None:
        with trio.fail_after(timeout):
            while not predicate():
                await self._changed.wait()

    async def wait_session(self, n: int = 1, timeout: float = SAFETY_NET) -> FakeSession:
        """The n-th session (1-based), once its welcome went out."""
        await self.wait_for(lambda: len(self.sessions) >= n, timeout)
        return self.sessions[n - 1]

    async def handle(self, socket_stream: trio.SocketStream) -> None:
        peer = socket_stream.socket.getpeername()[0]
        stream: trio.abc.Stream = socket_stream
        if self.ssl_context is not None:
            stream = trio.SSLStream(socket_stream, self.ssl_context, server_side=True)
        kind = WsServerConn if self.transport == "ws" else TcpServerConn
        conn: ServerConn = kind(stream, self.notify)
        session: FakeSession | None = None
        try:
            if not await conn.accept():
                return
            payload = await conn.receive_payload()
            if payload is None:
                return
            hello = decode(payload)
            assert isinstance(hello, Hello)
            if not verify_device_token(SECRET, hello.app, hello.device, hello.token):
                self.rejected.append(hello)
                await conn.send(Error(code="auth_failed", message="bad token"))
                await conn.close(1008, "auth_failed")
                while await conn.receive_payload() is not None:
                    pass
                return
            name = f"session-{len(self.sessions) + 1}"
            await conn.send(Welcome(session=name, heartbeat=self.heartbeat, server_time=0))
            session = FakeSession(gateway=self, conn=conn, hello=hello, name=name, peer=peer)
            self.sessions.append(session)
            self.notify()
            await self._serve(session)
        finally:
            if session is not None:
                session.ended.set()
            await trio.aclose_forcefully(stream)
            self.notify()

    async def _serve(self, session: FakeSession) -> None:
        conn = session.conn
        closing = False
        while (payload := await conn.receive_payload()) is not None:
            if closing:
                continue
            session.payloads.append(payload)
            try:
                frame = decode(payload)
            except ProtocolError as exc:
                await conn.send(Error(code=exc.code, message=exc.message))
                await conn.close(1002, exc.code)
                closing = True
                self.notify()
                continue
            session.frames.append(frame)
            self.notify()
            if isinstance(frame, PingFrame):
                await conn.send(PongFrame())
            elif isinstance(frame, Bind):
                hello = session.hello
                if verify_bind_signature(SECRET, hello.app, hello.device, frame.user, frame.sig):
                    await conn.send(Bound(user=frame.user))
                else:
                    await conn.send(Error(code="bad_signature", message="bad bind sig"))
            elif isinstance(frame, Unbind):
                await conn.send(Unbound())


# --- fixtures -----------------------------------------------------------------------


@pytest.fixture(params=["ws", "tcp"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def start_gateway(
    nursery: trio.Nursery,
    transport: str,
    heartbeat: int = 30,
    ssl_context: ssl.SSLContext | None = None,
) -> FakeGateway:
    gateway = FakeGateway(transport, heartbeat=heartbeat, ssl_context=ssl_context)
    listeners = await nursery.start(partial(trio.serve_tcp, gateway.handle, 0, host="127.0.0.1"))
    gateway.port = listeners[0].socket.getsockname()[1]
    return gateway


@pytest.fixture
async def gateway(nursery: trio.Nursery, transport: str) -> FakeGateway:
    return await start_gateway(nursery, transport, heartbeat=30)


@pytest.fixture
def gateway_factory(nursery: trio.Nursery, transport: str) -> Callable[..., Any]:
    """For another heartbeat or TLS: `await gateway_factory(heartbeat=1, ssl_context=...)`."""
    return partial(start_gateway, nursery, transport)


@dataclass(frozen=True)
class Certs:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A self-signed certificate for 127.0.0.1, and contexts that use and trust it."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("certs")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "1"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-keyout", str(key), "-out", str(cert)),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=10,
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return Certs(server=server, client=client)


@pytest.fixture
def make_device(gateway: FakeGateway) -> Callable[..., Device]:
    def make(device_id: str = "dev-1", **overrides: Any) -> Device:
        on_push = overrides.pop("on_push", None)
        url = overrides.pop("url", gateway.url)
        config = DeviceConfig(url=url, app=APP, device_id=device_id, secret=SECRET, **overrides)
        return Device(config, on_push=on_push)

    return make
