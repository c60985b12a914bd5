"""Autobahn|Testsuite's report (`index.json` and one JSON file per case) as a summary."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A case has two verdicts: `behavior` (the data exchange, counted here as in
# Autobahn's own report) and `behaviorClose` (the closing handshake: OK,
# INFORMATIONAL, or FAILED, UNCLEAN, WRONG CODE, FAILED BY CLIENT).
BEHAVIORS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
GOOD_CLOSE = ("OK", "INFORMATIONAL")


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    case_id: str
    behavior: str
    behavior_close: str
    reason: str  # Autobahn's own words: `result`, plus `resultClose` when that is not OK


@dataclass(slots=True, kw_only=True)
class AgentSummary:
    agent: str
    counts: Counter[str] = field(default_factory=Counter)  # by `behavior`
    bad_closes: int = 0  # cases whose `behaviorClose` is not OK or INFORMATIONAL
    not_ok: list[Case] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return self.counts["FAILED"] + self.bad_closes


def case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case_id.split(".") if part.isdigit())


def summarise(reports: Path) -> list[AgentSummary]:
    """The summary of every agent in `reports/index.json`."""
    index: dict[str, dict[str, dict[str, Any]]] = json.loads((reports / "index.json").read_text())
    summaries = []
    for agent, cases in sorted(index.items()):
        summary = AgentSummary(agent=agent)
        for case_id in sorted(cases, key=case_key):
            entry = cases[case_id]
            behavior = str(entry["behavior"])
            behavior_close = str(entry.get("behaviorClose", "OK"))
            summary.counts[behavior] += 1
            bad_close = behavior_close not in GOOD_CLOSE
            summary.bad_closes += bad_close
            if behavior != "OK" or bad_close:
                detail = json.loads((reports / str(entry["reportfile"])).read_text())
                reason = str(detail.get("result", ""))
                if behavior_close != "OK":
                    reason += f" / close {behavior_close}: {detail.get('resultClose', '')}"
                summary.not_ok.append(
                    Case(
                        case_id=case_id,
                        behavior=behavior,
                        behavior_close=behavior_close,
                        reason=reason,
                    )
                )
        summaries.append(summary)
    return summaries


def render(summaries: list[AgentSummary]) -> str:
    lines = []
    for summary in summaries:
        total = sum(summary.counts.values())
        counts = ", ".join(f"{b} {summary.counts[b]}" for b in BEHAVIORS if summary.counts[b])
        lines.append(
            f"{summary.agent}: {total} cases: {counts}; closes not OK: {summary.bad_closes}"
        )
        for case in summary.not_ok:
            lines.append(f"  {case.case_id} {case.behavior}/{case.behavior_close}: {case.reason}")
    return "\n".join(lines)
