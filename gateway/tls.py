"""Optional TLS on the device listeners (`--tls-cert` / `--tls-key`).

With a certificate the WebSocket and TCP listeners wrap each accepted socket
in a `trio.SSLStream` (printed as `wss://` and `tls://`), and the HTTP API is
served over HTTPS by hypercorn from the same files. The TLS handshake runs
under the hello timeout like the rest of the connection setup, so a client
that stalls mid-handshake holds nothing for long.
"""

from __future__ import annotations

import logging
import ssl

import trio

log = logging.getLogger("pushgate.tls")


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context from PEM files; TLS 1.2 or newer, no client certificates."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


async def accept_tls(
    stream: trio.SocketStream, context: ssl.SSLContext, peer: str
) -> trio.SSLStream[trio.SocketStream] | None:
    """Complete the server side of the handshake; None (logged) if it fails.

    The caller bounds it in time and closes the socket either way.
    """
    tls = trio.SSLStream(stream, context, server_side=True)
    try:
        await tls.do_handshake()
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        cause = exc.__cause__ or exc
        log.info("event=tls_handshake_failed peer=%s reason=%r", peer, str(cause)[:200])
        return None
    return tls
