"""ISO 8601 as DALI 1.1 wants it: UTC, ``Z`` suffix, parsed leniently."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_iso", "parse_iso"]


def format_iso(dt: datetime) -> str:
    """``2026-11-25T23:50:36.123Z`` (milliseconds, UTC; pyvo reads this form).

    Any value formats, even at the ends of ``datetime``'s range (a stored year
    1 whose conversion would leave it): such a time is shown as that end.
    """
    try:
        dt = dt.astimezone(UTC)
    except (OverflowError, ValueError):
        dt = (datetime.min if dt.year < 5000 else datetime.max).replace(tzinfo=UTC)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}"
        f":{dt.second:02d}.{dt.microsecond // 1000:03d}Z"
    )


def parse_iso(text: str) -> datetime:
    """Parse a DALI timestamp; no zone means UTC. Raises ValueError if malformed."""
    value = text.strip()
    if not value:
        raise ValueError("empty timestamp")
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"not an ISO 8601 timestamp: {text!r} (expected e.g. 2030-01-31T12:00:00Z)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except OverflowError:  # e.g. year 9999 with a negative offset
        raise ValueError(f"timestamp out of range: {text!r}") from None
