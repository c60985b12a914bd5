"""Structured logs for operators: one line per event, `key=value` pairs.

Messages use the form "event=name key=value ...". Tokens, API keys and
payloads are never logged.
"""

from __future__ import annotations

import logging
import sys
import time


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = (
            f"ts={stamp}.{int(record.msecs):03d}Z level={record.levelname.lower()}"
            f" logger={record.name} {record.getMessage()}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


QUIET_LIBRARIES = ("httpx", "httpcore", "hpack", "h2", "coredis")


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # hypercorn's access log would print every request line; operators get
    # our own events instead.
    logging.getLogger("hypercorn.access").setLevel(logging.WARNING)
    # The HTTP and Redis clients log each request (httpx: at info, with its URL)
    # and each header (hpack: at debug, a vendor's bearer token included): their
    # own lines would bury ours and could carry credentials, even at --log-level
    # debug. Their warnings and errors still come through.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
