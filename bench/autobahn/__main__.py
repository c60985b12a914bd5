"""Run Autobahn|Testsuite's fuzzingclient against both echo servers and summarise.

    python -m bench.autobahn                 # every case but 12.* and 13.* (compression)
    python -m bench.autobahn --cases '5.*'   # a few
    python -m bench.autobahn --install       # make the Python 2.7 virtualenv with wstest

Starts `bench.autobahn.echo` twice (the gateway's transport, plain wsproto) as
child processes on free ports, runs `wstest -m fuzzingclient` against both,
prints the summary of `index.json` and exits 1 if the pushgate agent has a
FAILED case or a close that is not OK. Reports go to `--out`
(default artifacts/autobahn; the HTML report is reports/index.html).

wstest needs Python 2.7: `--install` makes `bench/autobahn/.wstest` with the
interpreter in $PYTHON2 (default: pyenv's ~/.pyenv/versions/2.7.18/bin/python);
`--wstest PATH` or $WSTEST points at one made elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from .report import render, summarise

HERE = Path(__file__).resolve().parent
VENV = HERE / ".wstest"
DEFAULT_PYTHON2 = Path.home() / ".pyenv/versions/2.7.18/bin/python"
AGENTS = ("pushgate", "wsproto")
WSTEST_TIMEOUT = 3600.0  # seconds: the whole suite takes minutes on a quiet machine


def install(python2: str) -> Path:
    """A Python 2.7 virtualenv holding autobahntestsuite; its wstest."""
    run = [python2, "-m", "pip", "install", "--quiet", "virtualenv<20.22"]
    subprocess.run(run, check=True)
    subprocess.run([python2, "-m", "virtualenv", "--quiet", str(VENV)], check=True)
    pip = [str(VENV / "bin/pip"), "install", "--quiet", "autobahntestsuite"]
    subprocess.run(pip, check=True)
    return VENV / "bin/wstest"


def start_echo(impl: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.autobahn.echo", "--impl", impl, "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=HERE.parent.parent,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("port="):
        process.kill()
        raise RuntimeError(f"echo server {impl} did not start: {line!r}")
    return process, int(line.removeprefix("port="))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.autobahn",
        description="Autobahn|Testsuite against the gateway's WebSocket transport.",
    )
    parser.add_argument("--cases", nargs="+", default=["*"], help="case patterns (default: *)")
    parser.add_argument("--exclude", nargs="*", default=["12.*", "13.*"])
    parser.add_argument("--out", type=Path, default=Path("artifacts/autobahn"))
    parser.add_argument("--wstest", default=os.environ.get("WSTEST", str(VENV / "bin/wstest")))
    parser.add_argument("--install", action="store_true", help="make the wstest virtualenv")
    parser.add_argument("--python2", default=os.environ.get("PYTHON2", str(DEFAULT_PYTHON2)))
    args = parser.parse_args(argv)

    wstest = Path(args.wstest)
    if args.install:
        wstest = install(args.python2)
    if not wstest.exists():
        print(f"no wstest at {wstest}: run with --install (needs Python 2.7), or --wstest PATH")
        return 2

    out: Path = args.out.resolve()
    reports = out / "reports"
    out.mkdir(parents=True, exist_ok=True)
    servers = [start_echo(impl) for impl in AGENTS]
    try:
        spec = {
            "outdir": str(reports),
            "servers": [
                {"agent": impl, "url": f"ws://127.0.0.1:{port}"}
                for impl, (_, port) in zip(AGENTS, servers, strict=True)
            ],
            "cases": args.cases,
            "exclude-cases": args.exclude,
            "exclude-agent-cases": {},
        }
        (out / "spec.json").write_text(json.dumps(spec, indent=2))
        subprocess.run(
            [str(wstest), "-m", "fuzzingclient", "-s", str(out / "spec.json")],
            cwd=out,
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=WSTEST_TIMEOUT,
        )
    finally:
        for process, _ in servers:
            process.terminate()
            process.wait(timeout=10)
    summaries = summarise(reports)
    text = render(summaries)
    (out / "summary.txt").write_text(text + "\n")
    print(text)
    ours = next(s for s in summaries if s.agent == "pushgate")
    return 1 if ours.failed else 0


if __name__ == "__main__":
    sys.exit(main())
