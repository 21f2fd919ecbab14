"""The agent's reading of pods/log query parameters and its timestamp format."""

import pytest
from node_agent.server import logs


def test_options_from_query():
    opts = logs.options_from({"follow": "true", "tailLines": "5", "timestamps": "true", "limitBytes": "10"})
    assert (opts.follow, opts.tail_lines, opts.timestamps, opts.limit_bytes) == (True, 5, True, 10)
    opts = logs.options_from({"sinceSeconds": "10"}, now_ns=100 * 10**9)
    assert opts.since_ns == 90 * 10**9
    assert logs.options_from({"sinceTime": "1970-01-01T00:01:40.5Z"}).since_ns == 100_500_000_000


@pytest.mark.parametrize("query, message", [
    ({"tailLines": "x"}, "tailLines"),
    ({"tailLines": "-2"}, "tailLines"),
    ({"limitBytes": "0"}, "limitBytes"),
    ({"sinceSeconds": "5", "sinceTime": "2024-01-01T00:00:00Z"}, "at most one"),
    ({"sinceTime": "yesterday"}, "RFC 3339"),
])
def test_bad_queries_are_named(query, message):
    with pytest.raises(logs.LogQueryError, match=message):
        logs.options_from(query)


def test_timestamps_are_rfc3339nano_like_go():
    assert logs.format_time(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert logs.format_time(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
    assert logs.format_time(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"
    assert logs.parse_time(logs.format_time(1_700_000_000_123_456_789)) == 1_700_000_000_123_456_789
