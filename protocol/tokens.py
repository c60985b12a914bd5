"""Device tokens and bind signatures: lowercase hex HMAC-SHA256 keyed by the app's secret."""

from __future__ import annotations

import hashlib
import hmac


def _sign(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def device_token(secret: str, app: str, device: str) -> str:
    return _sign(secret, f"device:{app}:{device}")


def bind_signature(secret: str, app: str, device: str, user: str) -> str:
    # Newline separators: IDs may hold ":" but never a newline, so no two
    # (device, user) pairs sign the same text (with ":", device "mal" + user
    # "x:alice" and device "mal:x" + user "alice" did).
    return _sign(secret, f"bind\n{app}\n{device}\n{user}")


def _matches(expected: str, given: str) -> bool:
    # compare_digest raises TypeError on a non-ASCII str; a hex digest is
    # ASCII, so such a value (sent by a peer) simply does not match.
    return given.isascii() and hmac.compare_digest(expected, given)


def verify_device_token(secret: str, app: str, device: str, token: str) -> bool:
    """Constant-time comparison, so a token cannot be guessed byte by byte."""
    return _matches(device_token(secret, app, device), token)


def verify_bind_signature(secret: str, app: str, device: str, user: str, sig: str) -> bool:
    return _matches(bind_signature(secret, app, device, user), sig)
