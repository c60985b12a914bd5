"""The example in docs/scale-out.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import trio

from .support import MACHINE_REDIS

DOC = Path(__file__).resolve().parents[2] / "docs" / "scale-out.md"


async def test_the_docs_example_runs(prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1
    namespace: dict[str, Any] = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)
    with trio.fail_after(20):
        await namespace["two_nodes"](MACHINE_REDIS, prefix)
    assert capsys.readouterr().out.count("re-read the unacked deliveries") == 2
