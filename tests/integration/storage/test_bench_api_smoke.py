"""The API benchmark runs end to end (small N) and reports both halves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_bench_api_small_run_reports_both_halves():
    result = subprocess.run(
        [sys.executable, "-m", "bench", "api", "--n", "60", "--concurrency", "8", "--lists", "2", "--json"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-2])  # the last line is the runner's footer
    assert summary["n"] == 60
    for half in ("raw", "apiserver"):
        for phase in ("create", "get", "list"):
            assert summary[half][phase]["errors"] == 0
            assert summary[half][phase]["rate"] > 0
    assert summary["ratio_create"] > 0
    assert "ratio apiserver/raw" in result.stdout
