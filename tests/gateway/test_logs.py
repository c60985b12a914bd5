"""The gateway's log: its own events, not the libraries' request and header lines."""

from __future__ import annotations

import logging

from gateway.logs import QUIET_LIBRARIES, setup_logging


def test_library_chatter_stays_out_even_at_debug() -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        setup_logging("debug")
        assert logging.getLogger("pushgate.session").isEnabledFor(logging.DEBUG)
        for name in QUIET_LIBRARIES:
            logger = logging.getLogger(name)
            assert not logger.isEnabledFor(logging.INFO), name  # httpx logs requests at info
            assert logger.isEnabledFor(logging.WARNING), name
        assert {"httpx", "hpack", "coredis"} <= set(QUIET_LIBRARIES)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
