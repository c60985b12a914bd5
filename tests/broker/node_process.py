"""A broker node in a process of its own, for tests that kill it with SIGKILL.

Usage: python -m tests.broker.node_process URL PREFIX NODE_ID
Prints "ready" once registered and subscribed, then runs until killed.
"""

from __future__ import annotations

import sys

import trio

from gateway.broker import RedisBroker

from .support import fast_config, node_info


async def main(url: str, prefix: str, node_id: str) -> None:
    broker = RedisBroker(fast_config(url, prefix), node_info(node_id))
    async with trio.open_nursery() as nursery:
        await nursery.start(broker.run)
        print("ready", flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, *sys.argv[1:4])
