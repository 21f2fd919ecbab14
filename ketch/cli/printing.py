"""Human output: server-side Tables laid out as kubectl lays them out.

kubectl prints through Go's tabwriter with minwidth 6, padding 3 and blanks: a
column is as wide as its widest cell plus 3 (at least 6), the last column is
not padded. Headers are the column names upper-cased.
"""

from __future__ import annotations

TABLE_KIND = "Table"


def cell_text(cell: object) -> str:
    """A cell as kubectl shows it: nothing for null, integers without `.0`, first line only."""
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, (list, dict)):
        import json

        return json.dumps(cell)
    text = str(cell)
    for stop in ("\n", "\r", "\f"):
        if stop in text:
            text = text.split(stop, 1)[0] + "..."
    return text


def column_widths(rows: list[list[str]]) -> list[int]:
    widths: list[int] = []
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            w = max(len(cell) + 3, 6)
            if i >= len(widths):
                widths.append(w)
            elif w > widths[i]:
                widths[i] = w
    return widths


def format_row(row: list[str], widths: list[int]) -> str:
    parts = []
    for i, cell in enumerate(row):
        if i == len(row) - 1:
            parts.append(cell)
        else:
            parts.append(cell.ljust(widths[i] if i < len(widths) else max(len(cell) + 3, 6)))
    return "".join(parts).rstrip()


def tabulate(rows: list[list[str]]) -> list[str]:
    """Rows of cells into aligned lines (kubectl's tabwriter settings)."""
    widths = column_widths(rows)
    return [format_row(r, widths) for r in rows]


def labels_text(labels: dict | None) -> str:
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


class TableOptions:
    """What `get` asked for: which extra columns and how names look."""

    def __init__(self, *, wide: bool = False, show_labels: bool = False,
                 label_columns: list[str] | None = None, namespace_column: bool = False,
                 name_prefix: str = "", no_headers: bool = False):
        self.wide = wide
        self.show_labels = show_labels
        self.label_columns = label_columns or []
        self.namespace_column = namespace_column
        self.name_prefix = name_prefix  # "deployment.apps/" when several types are printed
        self.no_headers = no_headers


def is_table(obj: object) -> bool:
    return isinstance(obj, dict) and obj.get("kind") == TABLE_KIND and "columnDefinitions" in obj


def table_header(columns: list[dict], opts: TableOptions) -> list[str]:
    header = [c["name"].upper() for c in columns if opts.wide or not c.get("priority")]
    if opts.namespace_column:
        header.insert(0, "NAMESPACE")
    header += [c.upper() for c in opts.label_columns]
    if opts.show_labels:
        header.append("LABELS")
    return header


def table_row(columns: list[dict], row: dict, opts: TableOptions) -> list[str]:
    """One Table row as printed cells (NAMESPACE, label columns and LABELS added from its metadata)."""
    cells = row.get("cells") or []
    meta = (row.get("object") or {}).get("metadata") or {}
    out: list[str] = []
    for i, col in enumerate(columns):
        if col.get("priority") and not opts.wide:
            continue
        text = cell_text(cells[i]) if i < len(cells) else ""
        if col.get("format") == "name" and opts.name_prefix:
            text = opts.name_prefix + text
        out.append(text)
    if opts.namespace_column:
        out.insert(0, meta.get("namespace") or "")
    labels = meta.get("labels") or {}
    out += [labels.get(k, "") for k in opts.label_columns]
    if opts.show_labels:
        out.append(labels_text(labels))
    return out


def table_lines(table: dict, opts: TableOptions) -> list[list[str]]:
    """A Table (header + rows) as rows of cells, ready for `tabulate`."""
    columns = table.get("columnDefinitions") or []
    rows = [table_row(columns, r, opts) for r in table.get("rows") or []]
    if opts.no_headers:
        return rows
    return [table_header(columns, opts), *rows]


def fallback_table(objects: list[dict]) -> dict:
    """A NAME/AGE Table for a server that does not answer with Tables (as kubectl does)."""
    from ketch.api.timeutil import age

    return {
        "kind": TABLE_KIND,
        "apiVersion": "meta.k8s.io/v1",
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "priority": 0},
            {"name": "Age", "type": "string", "format": "", "priority": 0},
        ],
        "rows": [
            {
                "cells": [o.get("metadata", {}).get("name", ""),
                          age(o.get("metadata", {}).get("creationTimestamp"))],
                "object": {"metadata": o.get("metadata", {})},
            }
            for o in objects
        ],
    }
