"""`python -m bench network` stays runnable: a small run of both parts."""

from __future__ import annotations

import json
import shutil

import pytest

from bench import network


@pytest.mark.skipif(shutil.which("iperf3") is None, reason="iperf3 is not installed")
def test_bench_network_small_run(capsys: pytest.CaptureFixture[str]) -> None:
    code = network.main(["--seconds", "1", "--rounds", "1", "--services", "50", "--endpoints", "3", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    results = json.loads(out.strip().splitlines()[-1])
    assert results["throughput"]["overlay_gbps"] > 0 and results["throughput"]["direct_gbps"] > 0
    assert results["proxy"]["services"] == 50 and results["proxy"]["total_s"] > 0
    assert "ratio overlay/direct" in out
