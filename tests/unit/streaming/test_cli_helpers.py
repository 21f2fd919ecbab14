"""Argument parsing and formatting of the streaming CLI commands."""

import pytest

from ketch.cli.commands import logs, top
from ketch.cli.errors import CommandError
from ketch.streaming.portforward_client import parse_mapping


def test_since_durations_like_kubectl():
    assert logs.parse_duration("30s") == 30
    assert logs.parse_duration("1h30m") == 5400
    assert logs.parse_duration("0.5s") == 1  # at least a second, as the API wants
    with pytest.raises(CommandError, match="missing unit"):
        logs.parse_duration("10")
    with pytest.raises(CommandError, match="invalid duration"):
        logs.parse_duration("10d")


def test_pod_names():
    assert logs.pod_name("web") == "web"
    assert logs.pod_name("pod/web") == "web"
    with pytest.raises(CommandError, match="takes a pod"):
        logs.pod_name("deployment/web")


def test_port_mappings():
    assert parse_mapping("8080:80") == (8080, 80)
    assert parse_mapping("80") == (80, 80)
    assert parse_mapping(":80") == (0, 80)
    for bad in ("a:b", "70000:80", "80:0"):
        with pytest.raises(ValueError):
            parse_mapping(bad)


def test_top_units():
    assert top.quantity("2") == 2 and top.quantity("500m") == 0.5 and top.quantity("8Gi") == 8 * 1024 ** 3
    assert top.millicores({"usageNanoCores": 2_600_000}) == 3
    assert top.millicores({}) == 0
    assert top.mebibytes({"workingSetBytes": 5 * 1024 * 1024 + 10}) == 5
    assert top._table([["NAME", "CPU"], ["web-1", "3m"]]) == "NAME    CPU\nweb-1   3m\n"
