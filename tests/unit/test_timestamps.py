from datetime import UTC, datetime, timedelta, timezone

import pytest

from llmops_operator.timestamps import format_time, parse_rfc3339, parse_time, seconds_since


def test_a_timestamp_is_utc_whole_seconds_and_reads_back_as_the_same_aware_moment() -> None:
    moment = datetime(2026, 3, 1, 14, 30, 5, 900_000, tzinfo=timezone(timedelta(hours=2)))
    text = format_time(moment)
    assert text == "2026-03-01T12:30:05Z"
    assert parse_time(text) == moment.replace(microsecond=0) and parse_time(text).tzinfo is UTC


def test_a_naive_datetime_is_refused_rather_than_taken_for_some_time_zone() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_time(datetime(2026, 3, 1, 12, 0, 0))
    with pytest.raises(ValueError, match="naive"):
        seconds_since("2026-03-01T12:00:00Z", datetime(2026, 3, 1, 12, 1, 0))


def test_seconds_since_no_timestamp_is_forever() -> None:
    now = datetime(2026, 3, 1, 12, 1, 0, tzinfo=UTC)
    assert seconds_since("2026-03-01T12:00:00Z", now) == 60.0
    assert seconds_since(None, now) == float("inf") and seconds_since("", now) == float("inf")


def test_a_users_rfc3339_time_keeps_its_offset_and_one_without_a_zone_is_refused() -> None:
    later = datetime(2026, 3, 1, 12, 30, 5, 250_000, tzinfo=UTC)
    assert parse_rfc3339("2026-03-01T14:30:05.25+02:00") == later
    assert parse_rfc3339("2026-03-01T12:30:05Z") == datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)
    with pytest.raises(ValueError, match="no time zone"):
        parse_rfc3339("2026-03-01T12:30:05")
