"""The one timestamp format of status fields and conditions (RFC 3339 in UTC, whole seconds) and
its parsing. Every datetime that goes in or comes out is timezone-aware, so naive and aware times
never meet in a subtraction."""

from __future__ import annotations

import math
from datetime import UTC, datetime

FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MICRO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # an Event's eventTime (metav1.MicroTime)


def now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"a naive datetime ({moment.isoformat()}): say which time zone")
    return moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    return _aware(moment).strftime(FORMAT)


def format_micro_time(moment: datetime) -> str:
    return _aware(moment).strftime(MICRO_FORMAT)


def now_text() -> str:
    return format_time(now())


def parse_time(text: str) -> datetime:
    """A timestamp this module formatted (or the API server wrote), whole seconds or micro, as an
    aware UTC datetime."""
    return datetime.strptime(text, MICRO_FORMAT if "." in text else FORMAT).replace(tzinfo=UTC)


def parse_rfc3339(text: str) -> datetime:
    """Any RFC 3339 time a user writes in a spec (an offset other than Z, fractions of a second),
    keeping its offset; one without a zone is refused, since it could be any moment."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone: say which")
    return moment


def seconds_since(text: str | None, moment: datetime) -> float:
    """Seconds from the timestamp ``text`` to ``moment``; infinite when there is none."""
    return math.inf if not text else (_aware(moment) - parse_time(text)).total_seconds()
