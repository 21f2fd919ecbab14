#!/usr/bin/env python3
"""Build the Grafana dashboards in deploy/grafana/dashboards/ from the short specs below.

Hand-written dashboard JSON is long and easy to get subtly wrong (ids, grid
positions, datasource references); the panels here are a title, a unit and
PromQL, and the JSON is derived. Run after editing, and commit the JSON:

    .venv/bin/python deploy/grafana/build_dashboards.py

tests/unit/monitoring checks that the committed JSON is what this writes and
that every query names a metric the Ketch code defines.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"

API = 'job="ketch-apiserver",lab=~"$lab"'
CM = 'job="ketch-controller-manager",lab=~"$lab"'
SCHED = 'job="ketch-scheduler",lab=~"$lab"'
AGENT = 'job="ketch-node-agent",lab=~"$lab",node=~"$node"'


@dataclass
class Query:
    expr: str
    legend: str = ""


@dataclass
class Panel:
    title: str
    queries: list[Query]
    unit: str = "short"
    description: str = ""
    kind: str = "timeseries"  # or "stat"
    width: int = 8


@dataclass
class Note:
    """A text panel: what is not exported yet, and what should be."""

    title: str
    markdown: str
    width: int = 24
    height: int = 6


@dataclass
class Row:
    title: str
    panels: list[Panel | Note] = field(default_factory=list)


def quantiles(metric: str, selector: str, by: str = "") -> list[Query]:
    """p50 and p99 of a histogram, per `by` label (empty: over everything)."""
    group = f"le, {by}" if by else "le"
    suffix = f" {{{{{by}}}}}" if by else ""
    return [
        Query(f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{{{selector}}}[{RATE}])))",
              f"p{int(q * 100)}{suffix}")
        for q in (0.5, 0.99)
    ]


CONTROL_PLANE = [
    Row("Targets", [
        Panel("Scrape targets up", [Query('up{job=~"ketch-.*",lab=~"$lab"}', "{{job}} {{instance}}")],
              kind="stat", width=24,
              description="1: Prometheus reached the daemon's /metrics at the last scrape; 0: it did not."),
    ]),
    Row("API server", [
        Panel("API requests by verb, resource, code",
              [Query(f"sum by (verb, resource, code) (rate(apiserver_request_total{{{API}}}[{RATE}]))",
                     "{{verb}} {{resource}} {{code}}")], unit="reqps"),
        Panel("API errors (4xx, 5xx) by code",
              [Query(f'sum by (code) (rate(apiserver_request_total{{{API},code=~"[45].."}}[{RATE}]))',
                     "{{code}}")], unit="reqps"),
        Panel("API request latency p50 / p99 by verb (watches excluded)",
              quantiles("apiserver_request_duration_seconds", f'{API},verb!="watch"', "verb"), unit="s"),
        Panel("etcd request latency p50 / p99 by operation",
              quantiles("etcd_request_duration_seconds", API, "operation"), unit="s"),
        Panel("Open watches by resource",
              [Query(f"sum by (resource) (apiserver_registered_watchers{{{API}}})", "{{resource}}")]),
        Panel("Watch events sent by resource",
              [Query(f"sum by (resource) (rate(apiserver_watch_events_total{{{API}}}[{RATE}]))", "{{resource}}")],
              unit="ops"),
    ]),
    Row("Scheduler", [
        Panel("Scheduling attempts by result",
              [Query(f"sum by (result) (rate(scheduler_schedule_attempts_total{{{SCHED}}}[{RATE}]))",
                     "{{result}}")], unit="ops"),
        Panel("Scheduling attempt latency p50 / p99",
              quantiles("scheduler_scheduling_attempt_duration_seconds", SCHED, ""), unit="s"),
        Panel("Pending pods by queue",
              [Query(f"sum by (queue) (scheduler_pending_pods{{{SCHED}}})", "{{queue}}")]),
    ]),
    Row("Controllers", [
        Panel("Reconciles by controller",
              [Query(f"sum by (controller) (rate(controller_reconcile_total{{{CM}}}[{RATE}]))", "{{controller}}")],
              unit="ops"),
        Panel("Reconcile errors by controller",
              [Query(f'sum by (controller) (rate(controller_reconcile_total{{{CM},result="error"}}[{RATE}]))',
                     "{{controller}}")], unit="ops",
              description="Failed reconciles; each is retried with back-off (the controller-manager log says why)."),
        Panel("Reconcile duration p50 / p99 by controller",
              quantiles("controller_reconcile_duration_seconds", CM, "controller"), unit="s"),
    ]),
    Row("Daemon processes", [
        Panel("CPU of controller-manager and scheduler",
              [Query(f'rate(process_cpu_seconds_total{{job=~"ketch-controller-manager|ketch-scheduler",'
                     f'lab=~"$lab"}}[{RATE}])', "{{job}}")], unit="percentunit", width=12),
        Panel("Resident memory of controller-manager and scheduler",
              [Query('process_resident_memory_bytes{job=~"ketch-controller-manager|ketch-scheduler",lab=~"$lab"}',
                     "{{job}}")], unit="bytes", width=12),
    ]),
]

NODE_GAPS = """\
Not exported yet (the next metrics to add):

| metric | type | labels | why |
|---|---|---|---|
| `ketch_node_containers` | gauge | `state` | containers running, exited, created |
| `ketch_node_runtime_operation_duration_seconds` | histogram | `operation` | call latency to the runtime |
| per-pod CPU / memory (cadvisor-like) | gauge / counter | `namespace`, `pod`, `container` | today only in `/stats/summary` (JSON, `ketch top`) |

The runtime daemon serves no metrics yet.
"""

NODES = [
    Row("Node agents", [
        Panel("Node agents up", [Query(f"up{{{AGENT}}}", "{{node}}")], kind="stat", width=24,
              description="1: the node agent's /metrics answered the last scrape."),
        Panel("Node agent CPU", [Query(f"rate(process_cpu_seconds_total{{{AGENT}}}[{RATE}])", "{{node}}")],
              unit="percentunit"),
        Panel("Node agent resident memory", [Query(f"process_resident_memory_bytes{{{AGENT}}}", "{{node}}")],
              unit="bytes"),
        Panel("Node agent open file descriptors", [Query(f"process_open_fds{{{AGENT}}}", "{{node}}")]),
    ]),
    Row("Agent API (logs, exec, attach, port-forward, stats)", [
        Panel("Agent API requests by kind and outcome",
              [Query(f"sum by (node, kind, outcome) (rate(ketch_agent_api_sessions_total{{{AGENT}}}[{RATE}]))",
                     "{{node}} {{kind}} {{outcome}}")], unit="reqps"),
        Panel("Open agent API streams by kind",
              [Query(f"sum by (node, kind) (ketch_agent_api_sessions_active{{{AGENT}}})", "{{node}} {{kind}}")]),
        Panel("Agent API session duration p50 / p99 by kind",
              quantiles("ketch_agent_api_session_duration_seconds", AGENT, "kind"), unit="s"),
    ]),
    Row("Pods", [
        Panel("Pods by phase", [Query(f"sum by (node, phase) (ketch_node_pods{{{AGENT}}})", "{{node}} {{phase}}")],
              description="What each node agent last reported for the pods bound to its node."),
        Panel("Container restarts", [Query(
            f"sum by (namespace, pod, container) (increase(ketch_node_container_restarts_total{{{AGENT}}}[{RATE}]))",
            "{{namespace}}/{{pod}} {{container}}")],
              description="Restarts after an exit or a failed liveness probe: crash loops show here."),
        Panel("Pod-worker step p50 / p99", quantiles("ketch_node_pod_worker_sync_duration_seconds", AGENT,
                                                       "operation"), unit="s",
              description="One sync toward the spec, or one termination."),
        Panel("Probe attempts by outcome", [Query(
            f"sum by (probe_type, result) (rate(ketch_node_probe_total{{{AGENT}}}[{RATE}]))",
            "{{probe_type}} {{result}}")], unit="ops"),
        Panel("Image pulls by outcome", [Query(
            f"sum by (result) (increase(ketch_node_image_pulls_total{{{AGENT}}}[{RATE}]))", "{{result}}")]),
    ]),
    Row("Not exported yet", [Note("Still missing on the node side", NODE_GAPS, height=7)]),
]


def _variables(with_node: bool) -> list[dict]:
    out = [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0},
        {"name": "lab", "label": "Lab", "type": "query", "datasource": DATASOURCE,
         "query": {"query": 'label_values(up{job=~"ketch-.*"}, lab)', "refId": "lab"},
         "definition": 'label_values(up{job=~"ketch-.*"}, lab)', "refresh": 2,
         "includeAll": True, "multi": True, "current": {}, "hide": 0},
    ]
    if with_node:
        out.append({"name": "node", "label": "Node", "type": "query", "datasource": DATASOURCE,
                    "query": {"query": 'label_values(up{job="ketch-node-agent",lab=~"$lab"}, node)', "refId": "node"},
                    "definition": 'label_values(up{job="ketch-node-agent",lab=~"$lab"}, node)', "refresh": 2,
                    "includeAll": True, "multi": True, "current": {}, "hide": 0})
    return out


def _panel_json(item: Panel | Note, panel_id: int, x: int, y: int) -> tuple[dict, int]:
    if isinstance(item, Note):
        return ({"id": panel_id, "type": "text", "title": item.title,
                 "gridPos": {"h": item.height, "w": item.width, "x": x, "y": y},
                 "options": {"mode": "markdown", "content": item.markdown}}, item.height)
    height = 4 if item.kind == "stat" else 8
    targets = [{"datasource": DATASOURCE, "expr": q.expr, "legendFormat": q.legend or "__auto",
                "refId": chr(ord("A") + i)} for i, q in enumerate(item.queries)]
    panel = {"id": panel_id, "type": item.kind, "title": item.title, "datasource": DATASOURCE,
             "description": item.description,
             "gridPos": {"h": height, "w": item.width, "x": x, "y": y},
             "fieldConfig": {"defaults": {"unit": item.unit}, "overrides": []},
             "targets": targets}
    if item.kind == "stat":
        panel["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                            "colorMode": "background", "graphMode": "none", "textMode": "value_and_name"}
        panel["fieldConfig"]["defaults"]["thresholds"] = {
            "mode": "absolute", "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}]}
        panel["fieldConfig"]["defaults"]["mappings"] = [
            {"type": "value", "options": {"0": {"text": "down"}, "1": {"text": "up"}}}]
    else:
        panel["options"] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                            "tooltip": {"mode": "multi", "sort": "desc"}}
    return panel, height


def dashboard(uid: str, title: str, description: str, rows: list[Row], *, with_node: bool) -> dict:
    panels: list[dict] = []
    panel_id, y = 1, 0
    for row in rows:
        panels.append({"id": panel_id, "type": "row", "title": row.title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        panel_id, y, x, line_height = panel_id + 1, y + 1, 0, 0
        for item in row.panels:
            if x + item.width > 24:
                x, y, line_height = 0, y + line_height, 0
            body, height = _panel_json(item, panel_id, x, y)
            panels.append(body)
            panel_id, x, line_height = panel_id + 1, x + item.width, max(line_height, height)
        y += line_height
    return {
        "uid": uid, "title": title, "description": description, "tags": ["ketch"],
        "editable": True, "schemaVersion": 37, "version": 1, "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"}, "timezone": "", "graphTooltip": 1,
        "templating": {"list": _variables(with_node)}, "annotations": {"list": []}, "links": [],
        "panels": panels,
    }


def dashboards() -> dict[str, dict]:
    """File name -> dashboard JSON."""
    return {
        "ketch-control-plane.json": dashboard(
            "ketch-control-plane", "Ketch control plane",
            "apiserver requests, latency, etcd, watches; scheduler; controllers (docs/monitoring.md)",
            CONTROL_PLANE, with_node=False),
        "ketch-nodes.json": dashboard(
            "ketch-nodes", "Ketch nodes",
            "node agents: up, process, agent API sessions; what is not exported yet (docs/monitoring.md)",
            NODES, with_node=True),
    }


def render(board: dict) -> str:
    return json.dumps(board, indent=2) + "\n"


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, board in dashboards().items():
        (OUT_DIR / name).write_text(render(board))
        print(f"wrote {OUT_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
