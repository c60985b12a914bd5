"""How the orchestrator drives its helper processes: one JSON object per line.

Every helper (device workers, publishers) reads commands on stdin and answers
on stdout, one JSON object a line; its stderr goes to a log file. The
orchestrator is plain synchronous Python: a thread per helper reads its
answers into a queue, so every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from typing import IO, Any

import trio

REPO_ROOT = Path(__file__).resolve().parent.parent


class HelperFailed(RuntimeError):
    pass


class Helper:
    """A helper process (`python -m bench.<module> ...`) and its answer queue."""

    def __init__(self, name: str, module: str, args: Sequence[str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            text=True,
            bufsize=1,
        )
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            line = line.strip()
            if line:
                try:
                    self._answers.put(json.loads(line))
                except json.JSONDecodeError:
                    self._answers.put({"event": "garbage", "line": line[:200]})
        self._answers.put(None)

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, cmd: str, **fields: Any) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise HelperFailed(f"{self.name}: cannot send {cmd!r}: {exc}{self.tail()}") from None

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        """The next answer, which must be `event`; HelperFailed otherwise."""
        try:
            answer = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise HelperFailed(
                f"{self.name}: no {event!r} within {timeout:.0f}s{self.tail()}"
            ) from None
        if answer is None:
            raise HelperFailed(f"{self.name}: exited while waiting for {event!r}{self.tail()}")
        if answer.get("event") != event:
            raise HelperFailed(f"{self.name}: expected {event!r}, got {answer!r}{self.tail()}")
        return answer

    def expect_all(self, events: set[str], timeout: float) -> dict[str, dict[str, Any]]:
        """The next answers, one of each of `events` in any order."""
        got: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while len(got) < len(events):
            missing = sorted(events - set(got))
            try:
                answer = self._answers.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise HelperFailed(
                    f"{self.name}: no {missing} within {timeout:.0f}s{self.tail()}"
                ) from None
            if answer is None:
                raise HelperFailed(f"{self.name}: exited while waiting for {missing}{self.tail()}")
            event = answer.get("event")
            if event not in events or event in got:
                raise HelperFailed(f"{self.name}: expected {missing}, got {answer!r}{self.tail()}")
            got[str(event)] = answer
        return got

    def tail(self, lines: int = 15) -> str:
        self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return ("\n  " + "\n  ".join(text)) if text else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.send("quit")
            except HelperFailed:
                pass
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


def answer(event: str, **fields: Any) -> None:
    """Helper side: write one answer line."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def stdin_commands() -> AsyncGenerator[dict[str, Any], None]:
    """The JSON-lines commands a Trio worker receives from the parent on stdin, until EOF."""
    stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    buffer = b""
    while data := await stream.receive_some(65536):
        buffer += data
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)


async def asyncio_stdin_commands() -> AsyncGenerator[dict[str, Any], None]:
    """The same commands for a worker on an asyncio (uvloop) event loop."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip():
            yield json.loads(line)
