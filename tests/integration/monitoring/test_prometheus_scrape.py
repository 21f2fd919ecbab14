"""A real Prometheus scrapes a real control plane with the generated config; the dashboards' queries run on it.

The apiserver is the test's own (`fresh_apiserver`); the scheduler and the
controller-manager are started from their entry points, as `ketch up` starts
them, with /metrics on loopback. All traffic stays on 127.0.0.1. Skipped, with
the reason, where Debian's `prometheus` package (promtool, prometheus) is
not installed: `apt-get install --no-install-recommends prometheus`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ketch.cli.commands.monitoring import (
    ALERTS_FILE,
    JOBS,
    LabTargets,
    prometheus_config,
    render_yaml,
    write_token_file,
)
from tests.fixtures.etcd import free_port
from tests.unit.monitoring.metric_catalogue import REPO, query_jobs, query_metrics

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"
CONTROL_PLANE_JOBS = {"ketch-apiserver", "ketch-controller-manager", "ketch-scheduler"}
#: Grafana's variables, as Grafana would expand them for "All" and a 1 s scrape interval.
GRAFANA_VARIABLES = {"$__rate_interval": "15s", "$lab": ".*", "$node": ".*"}


def _wait(what: str, check, timeout: float = 30.0, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - not there yet
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last})")


def _get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


class Daemon:
    """A subprocess of this test, stopped by its pid."""

    def __init__(self, name: str, argv: list[str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO), env=env,
                                            start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def control_plane(fresh_apiserver, tmp_path) -> Iterator[dict[str, str]]:
    """The fresh apiserver plus a scheduler and a controller-manager on it; job -> host:port."""
    ports = {"ketch-controller-manager": free_port(), "ketch-scheduler": free_port()}
    common = ["--kubeconfig", str(fresh_apiserver.kubeconfig), "--no-leader-elect"]
    daemons = [
        Daemon("controller-manager", [sys.executable, "-m", "controllers.main", *common,
                                      "--metrics-bind-address", f"127.0.0.1:{ports['ketch-controller-manager']}"],
               tmp_path),
        Daemon("scheduler", [sys.executable, "-m", "scheduler.main", *common,
                             "--metrics-bind-address", f"127.0.0.1:{ports['ketch-scheduler']}"], tmp_path),
    ]
    try:
        for daemon, port in zip(daemons, ports.values(), strict=True):
            _wait(f"{daemon.name} /metrics", lambda d=daemon, p=port: (
                _get(f"http://127.0.0.1:{p}/metrics") if d.alive() else pytest.fail(
                    f"{d.name} exited:\n{d.log_tail()}")))
        yield {"ketch-apiserver": f"127.0.0.1:{fresh_apiserver.port}",
               **{job: f"127.0.0.1:{port}" for job, port in ports.items()}}
    finally:
        for daemon in daemons:
            daemon.stop()


def _config(apiserver, addresses: dict[str, str], tmp_path: Path, node_agents: dict[str, str]) -> Path:
    token_file = tmp_path / "apiserver.token"
    write_token_file(token_file, apiserver.token)
    targets = LabTargets(lab="it", apiserver=addresses["ketch-apiserver"], ca_file=apiserver.ca_file,
                         controller_manager=addresses["ketch-controller-manager"],
                         scheduler=addresses["ketch-scheduler"], node_agents=node_agents)
    path = tmp_path / "prometheus.yml"
    path.write_text(render_yaml(prometheus_config(targets, token_file, scrape_interval="1s")))
    shutil.copy(ALERTS_FILE, tmp_path / ALERTS_FILE.name)
    return path


def test_apiserver_metrics_need_a_token(fresh_apiserver):
    with fresh_apiserver.client() as authorized:
        r = authorized.get("/metrics")
        assert r.status_code == 200 and "apiserver_request_total" in r.text
        anonymous = authorized.get("/metrics", headers={"Authorization": ""})
        assert anonymous.status_code == 401, anonymous.text


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_accepts_the_generated_config(fresh_apiserver, tmp_path):
    addresses = {"ketch-apiserver": f"127.0.0.1:{fresh_apiserver.port}",
                 "ketch-controller-manager": "127.0.0.1:10257", "ketch-scheduler": "127.0.0.1:10259"}
    for agents in ({"it-n1": "10.213.0.11:10255", "it-n2": "10.213.0.12:10255"}, {}):
        config = _config(fresh_apiserver, addresses, tmp_path, agents)
        result = subprocess.run([PROMTOOL, "check", "config", str(config)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout + result.stderr


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (apt-get install prometheus)")
def test_prometheus_scrapes_the_control_plane_and_runs_every_dashboard_query(fresh_apiserver, control_plane,
                                                                            tmp_path):
    config = _config(fresh_apiserver, control_plane, tmp_path, {})
    port = free_port()
    prometheus = Daemon("prometheus", [PROMETHEUS, f"--config.file={config}",
                                       f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                       f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"], tmp_path)
    api = f"http://127.0.0.1:{port}/api/v1"

    def query(expr: str) -> list:
        body = json.loads(_get(f"{api}/query?" + urllib.parse.urlencode({"query": expr})))
        assert body["status"] == "success", body
        return body["data"]["result"]

    try:
        def targets_up():
            active = json.loads(_get(f"{api}/targets"))["data"]["activeTargets"]
            health = {t["labels"]["job"]: (t["health"], t["lastError"]) for t in active}
            assert set(health) == CONTROL_PLANE_JOBS, health
            down = {job: h for job, h in health.items() if h[0] != "up"}
            assert not down, down
            return True

        _wait("every target up", lambda: prometheus.alive() and targets_up(), timeout=40)

        # work for the scheduler and the controllers: a Deployment with no node to run on
        deployment = {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "watched"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "watched"}},
                     "template": {"metadata": {"labels": {"app": "watched"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
        }
        with fresh_apiserver.client() as client:
            def created():
                r = client.post("/apis/apps/v1/namespaces/default/deployments", json=deployment)
                assert r.status_code in (201, 409), r.text
                return True

            _wait("the Deployment created", created, timeout=20)

        boards = {p.name: json.loads(p.read_text()) for p in DASHBOARDS.glob("*.json")}
        wanted = set()
        for board in boards.values():
            for panel in board["panels"]:
                for target in panel.get("targets", []):
                    if query_jobs(target["expr"], set(JOBS)) <= CONTROL_PLANE_JOBS:
                        wanted |= query_metrics(target["expr"])

        assert {"apiserver_request_total", "controller_reconcile_total", "scheduler_pending_pods"} <= wanted

        def all_present():
            present = {s["metric"]["__name__"] for s in query('count by (__name__) ({job=~"ketch-.*"})')}
            missing = wanted - present
            assert not missing, f"no series yet for {sorted(missing)}"
            return True

        _wait("a series for every control-plane metric the dashboards chart", all_present, timeout=40)

        for board in boards.values():
            for panel in board["panels"]:
                for target in panel.get("targets", []):
                    expr = target["expr"]
                    for variable, value in GRAFANA_VARIABLES.items():
                        expr = expr.replace(variable, value)
                    query(expr)  # valid PromQL, or the assertion in query() says why
        _wait("an API request rate", lambda: query(
            'sum(rate(apiserver_request_total{job="ketch-apiserver",lab="it"}[15s]))'), timeout=20)
        assert query('scheduler_pending_pods{job="ketch-scheduler"}')

        groups = json.loads(_get(f"{api}/rules"))["data"]["groups"]
        rules = {r["name"]: r for g in groups for r in g["rules"]}
        assert {"KetchDaemonDown", "KetchReconcileErrors"} <= set(rules)
        assert all(r["health"] != "err" for r in rules.values()), rules
    finally:
        prometheus.stop()
        if not prometheus.alive() and prometheus.process.returncode not in (0, -signal.SIGTERM):
            print(prometheus.log_tail())

