"""Names of every Redis key and pub/sub channel, under one prefix per deployment.

An app ID may hold `:`; it is escaped (`%` → `%25`, `:` → `%3A`) so that
`dev:{app}:{device}` names exactly one (app, device) pair.
"""

from __future__ import annotations


def _escape(app: str) -> str:
    return app.replace("%", "%25").replace(":", "%3A")


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.nodes = f"{prefix}nodes"  # ZSET node ID → last heartbeat (Redis time, ms)
        self.all_channel = f"{prefix}ch:all"

    def node(self, node_id: str) -> str:
        """STRING: the node's JSON info, expiring `node_ttl` after its last heartbeat."""
        return f"{self.prefix}node:{node_id}"

    def online(self, node_id: str) -> str:
        """HASH app → devices online on that node, written with each heartbeat."""
        return f"{self.prefix}online:{node_id}"

    def device(self, app: str, device: str) -> str:
        """STRING `{node}:{epoch}`: the node holding the device's live connection."""
        return f"{self.prefix}dev:{_escape(app)}:{device}"

    def rate(self, app: str) -> str:
        """HASH tokens, ts: the app's API token bucket, shared by all nodes."""
        return f"{self.prefix}rate:{_escape(app)}"

    def node_channel(self, node_id: str) -> str:
        return f"{self.prefix}ch:node:{node_id}"
