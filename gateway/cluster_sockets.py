"""Listening sockets several node processes share (SO_REUSEPORT): `serve --workers N`.

The kernel spreads new connections over every process listening on the port.
trio.open_tcp_listeners does not set the option, so these are made here
(same addresses, same backlog as Trio's).
"""

from __future__ import annotations

import socket

import trio


async def open_shared_listeners(port: int, host: str) -> list[trio.SocketListener]:
    """Listeners on (host, port) with SO_REUSEPORT; port 0 picks a free one."""
    infos = await trio.socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    listeners: list[trio.SocketListener] = []
    try:
        for family, type_, proto, _, sockaddr in infos:
            sock = trio.socket.socket(family, type_, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                await sock.bind(sockaddr)
                sock.listen(socket.SOMAXCONN)
            except BaseException:
                sock.close()
                raise
            listeners.append(trio.SocketListener(sock))
            if port == 0:
                break  # one free port: the other families could not all get it
    except BaseException:
        for listener in listeners:
            await listener.aclose()
        raise
    return listeners
