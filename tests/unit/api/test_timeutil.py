"""RFC 3339 timestamps and kubectl-style durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ketch.api import timeutil


def test_format_second_and_micro_precision():
    moment = datetime(2024, 5, 1, 10, 0, 7, 123456, tzinfo=UTC)
    assert timeutil.format_rfc3339(moment) == "2024-05-01T10:00:07Z"
    assert timeutil.format_rfc3339_micro(moment) == "2024-05-01T10:00:07.123456Z"


def test_now_is_parseable_and_utc():
    text = timeutil.now_rfc3339()
    assert text.endswith("Z") and len(text) == 20
    assert abs((timeutil.parse_rfc3339(text) - timeutil.now()).total_seconds()) < 2


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-05-01T10:00:07Z", datetime(2024, 5, 1, 10, 0, 7, tzinfo=UTC)),
        ("2024-05-01T10:00:07.5Z", datetime(2024, 5, 1, 10, 0, 7, 500000, tzinfo=UTC)),
        ("2024-05-01T10:00:07.123456789Z", datetime(2024, 5, 1, 10, 0, 7, 123456, tzinfo=UTC)),
        ("2024-05-01T12:00:07+02:00", datetime(2024, 5, 1, 10, 0, 7, tzinfo=UTC)),
        ("2024-05-01T08:30:07-01:30", datetime(2024, 5, 1, 10, 0, 7, tzinfo=UTC)),
    ],
)
def test_parse(text, expected):
    assert timeutil.parse_rfc3339(text) == expected


@pytest.mark.parametrize(
    "bad", ["", "2024-05-01", "2024-13-01T00:00:00Z", "yesterday", "2024-05-01T10:00:07"]
)
def test_parse_rejects(bad):
    with pytest.raises(ValueError):
        timeutil.parse_rfc3339(bad)


@pytest.mark.parametrize(
    "seconds, text",
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (59, "59s"),
        (119, "119s"),
        (120, "2m"),
        (302, "5m2s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 25 * 60, "3h25m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (3 * 86400 + 5 * 3600, "3d5h"),
        (8 * 86400, "8d"),
        (400 * 86400, "400d"),
        (730 * 86400, "2y"),
        (731 * 86400, "2y1d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration(seconds, text):
    assert timeutil.human_duration(seconds) == text


@pytest.mark.parametrize(
    "seconds, text",
    [
        (30, "30s"),
        (125, "2m"),
        (7200, "2h"),
        (3 * 86400, "3d"),
        (800 * 86400, "2y"),
        (-3, "<invalid>"),
    ],
)
def test_short_human_duration(seconds, text):
    assert timeutil.short_human_duration(seconds) == text


def test_age_from_timestamp():
    at = datetime(2024, 5, 1, 10, 5, 2, tzinfo=UTC)
    assert timeutil.age("2024-05-01T10:00:00Z", at) == "5m2s"
    assert timeutil.age(at - timedelta(days=3), at) == "3d"
    assert timeutil.age(None, at) == "<unknown>"
    assert timeutil.age("garbage", at) == "<unknown>"


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("5m2s", 302),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("300ms", 0.3),
        ("0", 0),
        ("-2s", -2),
        ("10s", 10),
    ],
)
def test_parse_duration(text, seconds):
    assert timeutil.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5", "5x", "m", "1h 2m", "abc"])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        timeutil.parse_duration(bad)
