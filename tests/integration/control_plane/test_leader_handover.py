"""A stopped leader hands its Lease over at once (it does not make the next one wait it out)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from ketch.api.resources import lookup

LEASES = lookup("coordination.k8s.io", "v1", "leases")


def _holder(apiserver) -> str | None:
    with apiserver.client() as http:
        r = http.get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler")
        return r.json().get("spec", {}).get("holderIdentity") if r.status_code == 200 else None


def _scheduler(apiserver, tmp_path, name: str) -> subprocess.Popen:
    log = open(tmp_path / f"{name}.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "scheduler.main", "--kubeconfig", str(apiserver.kubeconfig),
         "--metrics-bind-address", "", "--lease-duration", "15"],
        stdout=log, stderr=subprocess.STDOUT, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
    )


def _wait(predicate, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s")


def test_sigterm_hands_the_lease_to_the_standby(fresh_apiserver, tmp_path):
    first = _scheduler(fresh_apiserver, tmp_path, "first")
    try:
        _wait(lambda: _holder(fresh_apiserver) is not None, 30)
        leader = _holder(fresh_apiserver)
        second = _scheduler(fresh_apiserver, tmp_path, "second")
        try:
            time.sleep(2)  # the standby is up and polling
            assert _holder(fresh_apiserver) == leader
            first.send_signal(signal.SIGTERM)
            assert first.wait(10) == 0
            took = _wait(lambda: _holder(fresh_apiserver) not in (None, leader), 15)
            assert took < 10, f"standby took {took:.1f}s: the lease was not released"
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
