"""Agent API sessions are counted by kind and outcome."""

import pytest
from node_agent.server import metrics


def _value(kind: str, outcome: str) -> float:
    return metrics.SESSIONS.labels(kind, outcome)._value.get()


def test_sessions_count_ok_and_error_and_active_returns_to_zero():
    ok, err = _value("unit-test", "ok"), _value("unit-test", "error")
    with metrics.session("unit-test"):
        assert metrics.ACTIVE.labels("unit-test")._value.get() == 1
    with pytest.raises(RuntimeError), metrics.session("unit-test"):
        raise RuntimeError("boom")
    assert (_value("unit-test", "ok"), _value("unit-test", "error")) == (ok + 1, err + 1)
    assert metrics.ACTIVE.labels("unit-test")._value.get() == 0
