"""The Grafana dashboards: built from their specs, and every query names metrics and labels the code defines."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys

import pytest
import yaml

from ketch.cli.commands.monitoring import JOBS
from tests.unit.monitoring.metric_catalogue import (
    JOB_SOURCES,
    REPO,
    dashboard_problems,
    query_jobs,
    query_labels,
    query_metrics,
    series_of_job,
)

GRAFANA = REPO / "deploy" / "grafana"


def _builder():
    spec = importlib.util.spec_from_file_location("build_dashboards", GRAFANA / "build_dashboards.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _committed() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))}


def _queries(board: dict) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p.get("targets", [])]


def test_committed_dashboards_are_what_the_builder_writes():
    built = _builder().dashboards()
    assert set(built) == set(_committed()) == {"ketch-control-plane.json", "ketch-nodes.json"}
    for name, board in built.items():
        assert (GRAFANA / "dashboards" / name).read_text() == _builder().render(board), (
            f"{name} is stale: run .venv/bin/python deploy/grafana/build_dashboards.py")


def test_job_sources_cover_the_generated_scrape_jobs():
    assert set(JOB_SOURCES) == set(JOBS)


@pytest.mark.parametrize("name", ["ketch-control-plane.json", "ketch-nodes.json"])
def test_every_query_names_metrics_and_labels_its_job_serves(name):
    board = _committed()[name]
    assert len(_queries(board)) >= 8
    problems = dashboard_problems(board, set(JOBS))
    assert not problems, "\n".join(problems)


def test_every_alert_names_metrics_and_labels_its_job_serves():
    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "alerts.yml").read_text())["groups"][0]["rules"]
    as_board = {"panels": [{"title": r["alert"], "targets": [{"expr": r["expr"]}]} for r in rules]}
    assert len(rules) >= 5
    problems = dashboard_problems(as_board, set(JOBS))
    assert not problems, "\n".join(problems)


def test_control_plane_dashboard_shows_each_component():
    exprs = " ".join(e for _, e in _queries(_committed()["ketch-control-plane.json"]))
    for metric in ("apiserver_request_total", "apiserver_request_duration_seconds_bucket",
                   "etcd_request_duration_seconds_bucket", "apiserver_registered_watchers",
                   "scheduler_schedule_attempts_total", "scheduler_scheduling_attempt_duration_seconds_bucket",
                   "scheduler_pending_pods", "controller_reconcile_total",
                   "controller_reconcile_duration_seconds_bucket"):
        assert metric in exprs


def test_a_renamed_metric_or_label_breaks_the_check(tmp_path):
    """The check reads the sources, so renaming a metric or a label in the code fails the dashboard."""
    for tree in ("apiserver", "controllers", "scheduler", "ketch", "node-agent/node_agent"):
        shutil.copytree(REPO / tree, tmp_path / tree, ignore=shutil.ignore_patterns("__pycache__"))
    board = _committed()["ketch-control-plane.json"]
    assert dashboard_problems(board, set(JOBS), tmp_path) == []
    scheduler = tmp_path / "scheduler" / "scheduler.py"
    scheduler.write_text(scheduler.read_text().replace('"scheduler_pending_pods"', '"scheduler_queue_pods"'))
    controller = tmp_path / "controllers" / "controller.py"
    controller.write_text(controller.read_text().replace('["controller", "result"]', '["controller", "outcome"]'))
    problems = "\n".join(dashboard_problems(board, set(JOBS), tmp_path))
    assert "scheduler_pending_pods is not served by ketch-scheduler" in problems
    assert "label 'result' is not on ['controller_reconcile_total']" in problems


def test_query_parsing():
    expr = ('histogram_quantile(0.99, sum by (le, verb) (rate(apiserver_request_duration_seconds_bucket'
            '{job="ketch-apiserver",lab=~"$lab",verb!="watch"}[$__rate_interval])))')
    assert query_metrics(expr) == {"apiserver_request_duration_seconds_bucket"}
    assert query_labels(expr) == {"le", "verb", "job", "lab"}
    assert query_metrics('rate(a_total{x="sum(b)"}[5m]) / on (node) c offset 5m') == {"a_total", "c"}
    assert query_jobs('up{job=~"ketch-controller-manager|ketch-scheduler"}', set(JOBS)) == {
        "ketch-controller-manager", "ketch-scheduler"}


def test_panels_have_unique_ids_and_fit_the_grid():
    for name, board in _committed().items():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), name
        for p in board["panels"]:
            pos = p["gridPos"]
            assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, (name, p["title"])
        assert board["uid"] and board["title"].startswith("Ketch")
        names = {v["name"] for v in board["templating"]["list"]}
        assert {"datasource", "lab"} <= names


def test_nodes_dashboard_note_lists_only_what_the_node_agent_does_not_export():
    panels = _committed()["ketch-nodes.json"]["panels"]
    notes = [p for p in panels if p["type"] == "text"]
    assert notes, "the nodes dashboard says what is still missing"
    listed = set(re.findall(r"`(ketch_node_[a-z_]+)`", notes[0]["options"]["content"]))
    served = set(series_of_job("ketch-node-agent"))
    assert listed and not listed & served, f"exported now, chart them and drop them from the note: {listed & served}"
    charted = json.dumps([p for p in panels if p["type"] != "text"])
    assert "ketch_node_container_restarts_total" in charted and "ketch_node_pods" in charted


def test_provisioning_files_point_at_the_dashboards():
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "ketch.yaml").read_text())
    assert ds["datasources"][0]["type"] == "prometheus"
    dash = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "ketch.yaml").read_text())
    provider = dash["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"]
