"""Which metrics the Ketch code defines, read from its Python sources, and which a PromQL query names.

The dashboards must follow the code: a renamed or removed metric has to break
a test, so the names are parsed out of the sources (calls to prometheus_client's
Counter, Gauge, Histogram, Summary, Info, Enum, whatever they are imported as)
rather than listed here.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
METRIC_TYPES = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}

#: Job (deploy/prometheus) -> the source trees whose metrics that daemon serves, and whether it
#: serves prometheus_client's default registry (process_*, python_*: start_http_server in ketch/daemon.py).
#: The apiserver serves its own registry (apiserver/metrics.py), so no process metrics.
JOB_SOURCES: dict[str, tuple[tuple[str, ...], bool]] = {
    "ketch-apiserver": (("apiserver",), False),
    "ketch-controller-manager": (("controllers", "ketch"), True),
    "ketch-scheduler": (("scheduler", "ketch"), True),
    "ketch-node-agent": (("node-agent/node_agent", "ketch"), True),
}
#: Labels Prometheus attaches to every series of a target (the generated config adds lab, node).
TARGET_LABELS = {"job", "instance", "lab", "node"}


@dataclass(frozen=True)
class MetricDef:
    name: str  # as given to the constructor
    kind: str  # Counter, Gauge, ...
    labels: tuple[str, ...]
    source: str  # file:line

    def series_names(self) -> set[str]:
        """The sample names prometheus_client exposes for it."""
        return series_names(self.name, self.kind.lower())


def series_names(name: str, kind: str) -> set[str]:
    """Sample names of a metric of `kind` (counter, gauge, histogram, summary, info, enum/stateset)."""
    if kind == "counter":
        base = name.removesuffix("_total")
        return {base + "_total", base + "_created"}
    if kind == "histogram":
        return {name + s for s in ("_bucket", "_sum", "_count", "_created")}
    if kind == "summary":
        return {name, name + "_sum", name + "_count", name + "_created"}
    if kind == "info":
        return {name.removesuffix("_info") + "_info"}
    return {name}


def _aliases(tree: ast.Module) -> tuple[dict[str, str], set[str]]:
    """Local names of prometheus_client's metric classes, and names the module itself is bound to."""
    classes: dict[str, str] = {}
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "prometheus_client":
            for a in node.names:
                if a.name in METRIC_TYPES:
                    classes[a.asname or a.name] = a.name
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "prometheus_client":
                    modules.add(a.asname or a.name)
    return classes, modules


def _strings(node: ast.expr | None) -> tuple[str, ...]:
    if isinstance(node, (ast.List, ast.Tuple)):
        return tuple(e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str))
    return ()


def metrics_in_file(path: Path) -> list[MetricDef]:
    text = path.read_text()
    if "prometheus_client" not in text:
        return []
    tree = ast.parse(text, filename=str(path))
    classes, modules = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        kind = None
        if isinstance(f, ast.Name) and f.id in classes:
            kind = classes[f.id]
        elif (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in modules
              and f.attr in METRIC_TYPES):
            kind = f.attr
        if kind is None:
            continue
        name_node = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "name"), None)
        if not (isinstance(name_node, ast.Constant) and isinstance(name_node.value, str)):
            raise ValueError(f"{path}:{node.lineno}: a {kind} whose name is not a string literal; "
                             "the dashboard checks cannot follow it")
        labels_node = node.args[2] if len(node.args) > 2 else next(
            (k.value for k in node.keywords if k.arg == "labelnames"), None)
        found.append(MetricDef(name_node.value, kind, _strings(labels_node), f"{path}:{node.lineno}"))
    return found


def metrics_under(*trees: str, repo: Path = REPO) -> dict[str, MetricDef]:
    """Series name -> definition, for every metric defined under the given source trees."""
    out: dict[str, MetricDef] = {}
    for tree in trees:
        for path in sorted((repo / tree).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            for m in metrics_in_file(path):
                for s in m.series_names():
                    out[s] = m
    return out


def default_registry_series() -> dict[str, set[str]]:
    """Series name -> label names of prometheus_client's default collectors (process, platform, gc)."""
    from prometheus_client import (
        CollectorRegistry,
        GCCollector,
        PlatformCollector,
        ProcessCollector,
    )

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    out: dict[str, set[str]] = {}
    for family in registry.collect():
        for name in series_names(family.name, family.type):
            out.setdefault(name, set())
        for sample in family.samples:
            out.setdefault(sample.name, set()).update(sample.labels)
    return out


def series_of_job(job: str, repo: Path = REPO) -> dict[str, set[str]]:
    """Series name -> label names (the metric's own and the target's) that `job` serves."""
    trees, default_registry = JOB_SOURCES[job]
    out: dict[str, set[str]] = {"up": set(TARGET_LABELS)}
    for name, m in metrics_under(*trees, repo=repo).items():
        out[name] = set(m.labels) | TARGET_LABELS | ({"le"} if name.endswith("_bucket") else set())
    if default_registry:
        for name, labels in default_registry_series().items():
            out[name] = labels | TARGET_LABELS
    return out


# ------------------------------------------------------------------ PromQL

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
             "bool", "offset", "inf", "nan"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{([^}]*)\}")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def query_metrics(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (not functions, aggregations, labels or keywords)."""
    s = _STRING.sub('""', expr)
    s = _MATCHERS.sub("", s)
    s = re.sub(r"\[[^\]]*\]", "", s)
    s = _GROUPING.sub("", s)
    names = set()
    for m in _IDENT.finditer(s):
        if m.start() > 0 and s[m.start() - 1] in "$.0123456789":
            continue  # a Grafana variable or part of a number
        if s[m.end():].lstrip().startswith("(") or m.group() in _KEYWORDS:
            continue
        names.add(m.group())
    return names


def query_labels(expr: str) -> set[str]:
    """Label names an expression matches on or groups by."""
    labels = set()
    for body in _MATCHERS.findall(_STRING.sub('""', expr)):
        labels.update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", body))
    for _, body in _GROUPING.findall(expr):
        labels.update(x.strip() for x in body.split(",") if x.strip())
    return labels


def query_jobs(expr: str, known_jobs: set[str]) -> set[str]:
    """The jobs an expression's job matchers select (= or =~ against the known job names)."""
    jobs: set[str] = set()
    for op, value in re.findall(r'\bjob\s*(=~|=)\s*"([^"]*)"', expr):
        if op == "=":
            jobs.add(value)
        else:
            jobs.update(j for j in known_jobs if re.fullmatch(value, j))
    return jobs


def dashboard_problems(board: dict, jobs: set[str], repo: Path = REPO) -> list[str]:
    """What in a Grafana dashboard's queries the code does not serve: metrics, labels, jobs."""
    problems = []
    served_by = {job: series_of_job(job, repo) for job in jobs}
    for panel in board["panels"]:
        title = panel["title"]
        for target in panel.get("targets", []):
            expr = target["expr"]
            selected = query_jobs(expr, jobs)
            metrics = query_metrics(expr)
            if not selected:
                problems.append(f"{title!r}: selects no known job: {expr}")
            if not metrics:
                problems.append(f"{title!r}: names no metric: {expr}")
            for job in sorted(selected):
                served = served_by[job]
                allowed_labels = set().union(*(served.get(m, set()) for m in metrics))
                for m in sorted(metrics - set(served)):
                    problems.append(f"{title!r}: {m} is not served by {job} (renamed or removed in the code?)")
                for label in sorted(query_labels(expr) - allowed_labels):
                    problems.append(f"{title!r}: label {label!r} is not on {sorted(metrics)} of {job}")
    return problems
