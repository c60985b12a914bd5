"""How long records are kept: 30 days, by the gateway's clock (CONTRACT.md section 4)."""

DAY_MS = 86_400_000
RETENTION_MS = 30 * DAY_MS
"""Records are kept 30 days: created_at >= now - RETENTION_MS is readable."""


def retention_cutoff(now: int) -> int:
    """The oldest created_at still kept at `now` (inclusive)."""
    return now - RETENTION_MS
