"""Tables laid out as kubectl lays them out (tabwriter: padding 3, minimum width 6)."""

from __future__ import annotations

from ketch.cli import printing

COLUMNS = [
    {"name": "Name", "type": "string", "format": "name", "priority": 0},
    {"name": "Ready", "type": "string", "format": "", "priority": 0},
    {"name": "Nominated Node", "type": "string", "format": "", "priority": 1},
    {"name": "Age", "type": "string", "format": "", "priority": 0},
]


def row(name, ready, node, age, ns="default", labels=None):
    return {"cells": [name, ready, node, age],
            "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                       "metadata": {"name": name, "namespace": ns, "labels": labels or {}}}}


TABLE = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "columnDefinitions": COLUMNS,
         "rows": [row("web-1", "1/1", None, "5s", labels={"app": "web", "a": "b"}),
                  row("x", "0/1", "n1", "10m", ns="kube-system")]}


def render(opts):
    return printing.tabulate(printing.table_lines(TABLE, opts))


def test_default_columns_hide_priority_and_align():
    assert render(printing.TableOptions()) == [
        "NAME    READY   AGE",
        "web-1   1/1     5s",
        "x       0/1     10m",
    ]


def test_wide_namespace_and_labels():
    lines = render(printing.TableOptions(wide=True, namespace_column=True, show_labels=True))
    assert lines[0] == "NAMESPACE     NAME    READY   NOMINATED NODE   AGE   LABELS"
    assert lines[1] == "default       web-1   1/1                      5s    a=b,app=web"
    assert lines[2] == "kube-system   x       0/1     n1               10m   <none>"


def test_name_prefix_label_columns_and_no_headers():
    lines = render(printing.TableOptions(name_prefix="pod/", label_columns=["app"], no_headers=True))
    assert lines == ["pod/web-1   1/1   5s    web", "pod/x       0/1   10m"]


def test_minimum_column_width_is_six():
    assert printing.tabulate([["A", "B"], ["1", "2"]]) == ["A     B", "1     2"]


def test_cells():
    assert printing.cell_text(None) == ""
    assert printing.cell_text(3.0) == "3"
    assert printing.cell_text(True) == "true"
    assert printing.cell_text("a\nb") == "a..."


def test_fallback_table_for_servers_without_tables():
    t = printing.fallback_table([{"metadata": {"name": "a", "creationTimestamp": None}}])
    assert printing.is_table(t)
    assert printing.tabulate(printing.table_lines(t, printing.TableOptions()))[0] == "NAME   AGE"


def test_yaml_output_quotes_and_blocks_like_kubectl():
    from ketch.cli.output import dump_yaml

    text = dump_yaml({"metadata": {"resourceVersion": "7", "name": "x"},
                      "data": {"page": "a\nb\n"}, "spec": {"ports": [{"port": 80}]}})
    assert text == ('data:\n  page: |\n    a\n    b\nmetadata:\n  name: x\n  resourceVersion: "7"\n'
                    "spec:\n  ports:\n  - port: 80\n")
