"""atheris (libFuzzer) harness for the sans-IO protocol: run by test_hostile.py.

    python tests/faults/atheris_protocol.py -atheris_runs=30000

Properties, for arbitrary bytes:
- `decode` returns a frame or raises ProtocolError, nothing else; a frame it
  returns encodes and decodes back to itself;
- the TCP `Framer` fed the bytes whole and one byte at a time yields the same
  payloads (or the same ProtocolError), never holding more than one frame.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from protocol import ProtocolError, decode, encode
    from protocol.framing import Framer

MAX = 1024


def payloads(chunks: list[bytes]) -> tuple[list[bytes], str | None]:
    framer = Framer(MAX)
    out: list[bytes] = []
    try:
        for chunk in chunks:
            framer.feed(chunk)
            while (payload := framer.next_payload()) is not None:
                out.append(payload)
            assert framer.buffered <= MAX + 4 + len(chunk)
    except ProtocolError as exc:
        return out, exc.code
    return out, None


def one_input(data: bytes) -> None:
    try:
        frame = decode(data, max_size=MAX)
    except ProtocolError:
        pass
    else:
        assert decode(encode(frame), max_size=1 << 20) == frame, frame
    whole = payloads([data])
    bytewise = payloads([data[i : i + 1] for i in range(len(data))])
    assert whole == bytewise, (whole, bytewise)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
