"""The delivery oracle: did every accepted message reach exactly the devices it should?

Pure logic, no I/O and no clock: it is fed records and gives a `Verdict`.

    oracle = Oracle()
    oracle.accept(AcceptedPush(message_id="m1", expected=frozenset({"d1"}), ...))
    oracle.arrive(Arrival(device="d1", message_id="m1", session="s1", ...))
    oracle.ack("d1", ["m1"], acked_ms=...)
    oracle.presence("d1", online=True, at_ms=...)
    verdict = oracle.verdict(end_ms=...)

Records may come in any order (a device often receives a push before the HTTP
answer that accepted it reaches the driver); everything is resolved in
`verdict()`. A few counters are kept up to date as records arrive, for live
progress (`outstanding`, `delivered`, `acked`).

Definitions. A *delivery* is a pair (message, expected device): a device push
expects its target, a user push every device bound to the user when it was
pushed, a broadcast every device of the app (of its platform).

- delivered: the expected device received the message at least once.
- lost: never received, although the device was online for at least
  `grace_ms` between the push and the message's expiry (or the end of the run,
  if that came first). A failure.
- unreachable: never received, and the device was (nearly) offline for that
  whole window, so no gateway could have delivered it. Not a failure. Without
  presence tracking (`track_presence=False`) every undelivered pair is lost.
- late: an arrival of an accepted message after its `expires`, plus
  `late_tolerance_ms` for the time the frame spent on the wire. The arrival is
  converted to the gateway's clock with the connection's clock offset
  (`welcome.server_time` minus the device's clock). A failure: the contract
  says never after expiry.
- misdelivered: an accepted message received by a device that is not one of
  its expected devices (counted once per message and device). A failure.
- unknown: a message id nobody accepted in this run (left over from an
  earlier run on the same device ids, or a push whose HTTP answer was lost).
  Not a failure.
- redelivery: the same message again at the same device, on a connection
  (session) that had not delivered it before: at-least-once after a reconnect,
  as the contract allows.
- duplicate: the same message again at the same device on a connection that
  had already delivered it: a true duplicate. Reported; not a failure (the
  contract lets the gateway resend until acked), but a good gateway has none.

Latency: push→receive is a delivery's first arrival minus the moment the
driver sent the HTTP request (`pushed_ms`, the simulator's wall clock, which
the devices share); push→ack is the first ack sent for the delivery minus the
same origin.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

EXAMPLES_PER_CATEGORY = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptedPush:
    """A message the gateway accepted (answered 200 for)."""

    message_id: str
    expected: frozenset[str]  # device ids that must receive it
    pushed_ms: int  # wall clock when the request was sent: the latency origin
    accepted_ms: int  # wall clock when the answer came back
    expires_ms: int  # latest possible expiry: accepted_ms + expired_seconds * 1000
    target: str = ""  # the device or user id; "*" for a broadcast
    push_type: str = "simple"


@dataclass(frozen=True, slots=True, kw_only=True)
class Arrival:
    """One `push` frame received by a device (first time or again)."""

    device: str
    message_id: str
    received_ms: int  # the device's wall clock
    session: str  # `welcome.session` of the connection it came on
    expires_ms: int  # the frame's `expires` (gateway clock)
    clock_offset_ms: int = 0  # gateway clock minus device clock, measured at welcome


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyStats:
    """Percentiles (nearest rank) of a set of latencies, in milliseconds."""

    count: int
    mean: float | None
    p50: int | None
    p90: int | None
    p99: int | None
    max: int | None

    @classmethod
    def of(cls, samples: Sequence[int]) -> LatencyStats:
        if not samples:
            return cls(count=0, mean=None, p50=None, p90=None, p99=None, max=None)
        ordered = sorted(samples)
        return cls(
            count=len(ordered),
            mean=sum(ordered) / len(ordered),
            p50=percentile(ordered, 50),
            p90=percentile(ordered, 90),
            p99=percentile(ordered, 99),
            max=ordered[-1],
        )


def percentile(ordered: Sequence[int], pct: float) -> int:
    """Nearest-rank percentile of an already sorted, non-empty sequence."""
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What the oracle found; see the module docstring for the definitions."""

    messages: int
    expected_deliveries: int
    delivered: int
    lost: int
    lost_messages: int
    unreachable: int
    late: int
    misdelivered: int
    unknown: int
    redeliveries: int
    duplicates: int
    acked: int
    receive_latency: LatencyStats
    ack_latency: LatencyStats
    examples: dict[str, list[tuple[str, str]]]  # category -> [(message_id, device)]
    first_push_ms: int | None = None  # the earliest `pushed_ms`
    last_delivery_ms: int | None = None  # the latest first arrival of a delivery
    # Raw samples (ms), for plots; not part of `to_dict()`.
    receive_latencies: tuple[int, ...] = field(default=(), repr=False)
    ack_latencies: tuple[int, ...] = field(default=(), repr=False)

    @property
    def failures(self) -> dict[str, int]:
        """The contract violations found (empty when the run is clean)."""
        found = {"lost": self.lost, "misdelivered": self.misdelivered, "late": self.late}
        return {name: n for name, n in found.items() if n}

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["receive_latencies"], data["ack_latencies"]
        data["examples"] = {
            k: [{"message_id": m, "device": d} for m, d in v] for k, v in self.examples.items()
        }
        data["ok"] = self.ok
        data["failures"] = self.failures
        return data


# Per (message, device): the first arrival's time and the sessions that delivered it.
@dataclass(slots=True)
class _Seen:
    received_ms: int
    sessions: set[str]


class Oracle:
    """Collects accepted pushes, arrivals, acks and presence; judges with `verdict()`.

    `late_tolerance_ms`: how far past `expires` an arrival may be before it
    counts as late. `grace_ms`: how long a device must have been online in a
    message's window for a missing delivery to count as lost rather than
    unreachable. `track_presence`: whether presence records are fed at all
    (if not, every undelivered pair is lost).
    """

    def __init__(
        self,
        *,
        late_tolerance_ms: int = 1000,
        grace_ms: int = 2000,
        track_presence: bool = True,
    ) -> None:
        self.late_tolerance_ms = late_tolerance_ms
        self.grace_ms = grace_ms
        self.track_presence = track_presence
        self._accepted: dict[str, AcceptedPush] = {}
        self._seen: dict[str, dict[str, _Seen]] = {}  # message_id -> device -> _Seen
        self._acks: dict[str, dict[str, int]] = {}  # message_id -> device -> first ack ms
        self._late: list[tuple[str, str]] = []  # (message_id, device) per late arrival
        self._duplicates: list[tuple[str, str]] = []
        self._redeliveries = 0
        # Presence: device -> [start, end, start, end, ...] (ms); an odd length
        # means the device is online now.
        self._presence: dict[str, list[int]] = {}
        # Live counters.
        self.outstanding = 0  # expected deliveries of accepted messages not received yet
        self.delivered = 0  # expected deliveries received
        self.arrivals = 0  # every arrival, repeats included
        self.acked = 0  # expected deliveries acked

    # --- feeding ------------------------------------------------------------------

    def accept(self, push: AcceptedPush) -> None:
        """A message the gateway accepted. The same id again (a retried request
        answered `duplicate`) is ignored."""
        if push.message_id in self._accepted:
            return
        self._accepted[push.message_id] = push
        seen = self._seen.get(push.message_id, {})
        hits = sum(1 for device in push.expected if device in seen)
        self.delivered += hits
        self.outstanding += len(push.expected) - hits
        acks = self._acks.get(push.message_id, {})
        self.acked += sum(1 for device in push.expected if device in acks)

    def arrive(self, arrival: Arrival) -> None:
        """A device received a `push` frame (its first time or not)."""
        self.arrivals += 1
        per_device = self._seen.setdefault(arrival.message_id, {})
        seen = per_device.get(arrival.device)
        pair = (arrival.message_id, arrival.device)
        if arrival.received_ms + arrival.clock_offset_ms > (
            arrival.expires_ms + self.late_tolerance_ms
        ):
            self._late.append(pair)
        if seen is None:
            per_device[arrival.device] = _Seen(arrival.received_ms, {arrival.session})
            push = self._accepted.get(arrival.message_id)
            if push is not None and arrival.device in push.expected:
                self.delivered += 1
                self.outstanding -= 1
        elif arrival.session in seen.sessions:
            self._duplicates.append(pair)
        else:
            seen.sessions.add(arrival.session)
            self._redeliveries += 1

    def ack(self, device: str, message_ids: Iterable[str], acked_ms: int) -> None:
        """The device sent an `ack` for these ids at `acked_ms` (its wall clock)."""
        for message_id in message_ids:
            per_device = self._acks.setdefault(message_id, {})
            if device in per_device:
                continue
            per_device[device] = acked_ms
            push = self._accepted.get(message_id)
            if push is not None and device in push.expected:
                self.acked += 1

    def presence(self, device: str, *, online: bool, at_ms: int) -> None:
        """The device got a `welcome` (online) or lost its connection (offline)."""
        marks = self._presence.setdefault(device, [])
        is_online = len(marks) % 2 == 1
        if online != is_online:
            # Keep the marks sorted even if the wall clock stepped back.
            marks.append(max(at_ms, marks[-1]) if marks else at_ms)

    # --- judging ------------------------------------------------------------------

    def online_ms(self, device: str, start_ms: int, end_ms: int) -> int:
        """How long `device` was online within [start_ms, end_ms]."""
        marks = self._presence.get(device, [])
        total = 0
        # Intervals are in time order; skip those that ended before the window.
        first = bisect.bisect_left(marks, start_ms)
        first -= first % 2
        for i in range(first, len(marks), 2):
            up = marks[i]
            if up >= end_ms:
                break
            down = marks[i + 1] if i + 1 < len(marks) else end_ms
            total += max(0, min(down, end_ms) - max(up, start_ms))
        return total

    def verdict(self, *, end_ms: int) -> Verdict:
        """Judge everything fed so far; `end_ms` is when observation stopped."""
        examples: dict[str, list[tuple[str, str]]] = {}

        def example(category: str, pair: tuple[str, str]) -> None:
            found = examples.setdefault(category, [])
            if len(found) < EXAMPLES_PER_CATEGORY:
                found.append(pair)

        expected_total = delivered = lost = unreachable = misdelivered = acked = 0
        lost_ids: set[str] = set()
        receive_latencies: list[int] = []
        ack_latencies: list[int] = []
        first_push_ms: int | None = None
        last_delivery_ms: int | None = None
        for message_id, push in self._accepted.items():
            if first_push_ms is None or push.pushed_ms < first_push_ms:
                first_push_ms = push.pushed_ms
            seen = self._seen.get(message_id, {})
            acks = self._acks.get(message_id, {})
            expected_total += len(push.expected)
            for device in push.expected:
                got = seen.get(device)
                if got is not None:
                    delivered += 1
                    receive_latencies.append(got.received_ms - push.pushed_ms)
                    if last_delivery_ms is None or got.received_ms > last_delivery_ms:
                        last_delivery_ms = got.received_ms
                    acked_ms = acks.get(device)
                    if acked_ms is not None:
                        acked += 1
                        ack_latencies.append(acked_ms - push.pushed_ms)
                elif self._had_a_chance(device, push, end_ms):
                    lost += 1
                    lost_ids.add(message_id)
                    example("lost", (message_id, device))
                else:
                    unreachable += 1
                    example("unreachable", (message_id, device))
            for device in seen:
                if device not in push.expected:
                    misdelivered += 1
                    example("misdelivered", (message_id, device))
        unknown = 0
        for message_id, per_device in self._seen.items():
            if message_id not in self._accepted:
                unknown += len(per_device)
                for device in per_device:
                    example("unknown", (message_id, device))
        late = [pair for pair in self._late if pair[0] in self._accepted]
        for pair in late:
            example("late", pair)
        for pair in self._duplicates:
            example("duplicate", pair)
        return Verdict(
            messages=len(self._accepted),
            expected_deliveries=expected_total,
            delivered=delivered,
            lost=lost,
            lost_messages=len(lost_ids),
            unreachable=unreachable,
            late=len(late),
            misdelivered=misdelivered,
            unknown=unknown,
            redeliveries=self._redeliveries,
            duplicates=len(self._duplicates),
            acked=acked,
            receive_latency=LatencyStats.of(receive_latencies),
            ack_latency=LatencyStats.of(ack_latencies),
            examples=examples,
            first_push_ms=first_push_ms,
            last_delivery_ms=last_delivery_ms,
            receive_latencies=tuple(receive_latencies),
            ack_latencies=tuple(ack_latencies),
        )

    def _had_a_chance(self, device: str, push: AcceptedPush, end_ms: int) -> bool:
        """Was the device online long enough while the message was deliverable?"""
        if not self.track_presence:
            return True
        window_end = min(push.expires_ms, end_ms)
        return self.online_ms(device, push.pushed_ms, window_end) >= self.grace_ms
