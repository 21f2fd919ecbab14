"""`-o jsonpath=`: the subset kubectl users reach for."""

from __future__ import annotations

import pytest

from ketch.cli.jsonpath import JsonPathError, render

DATA = {"kind": "List", "items": [
    {"metadata": {"name": "a", "labels": {"app": "web", "k.io/x": "y"}}, "status": {"phase": "Running"},
     "spec": {"containers": [{"name": "c1", "image": "busybox"}, {"name": "c2", "image": "nginx"}]}},
    {"metadata": {"name": "b"}, "status": {"phase": "Pending"}, "spec": {"containers": []}},
]}


@pytest.mark.parametrize(("template", "expected"), [
    ("{.items[*].metadata.name}", "a b"),
    ("{.items[0].metadata.name}", "a"),
    ("{.items[-1].metadata.name}", "b"),
    ("{.items[0:1].metadata.name}", "a"),
    ("{.items[0].spec.containers[*].image}", "busybox nginx"),
    ("{.items[0].metadata.labels['k.io/x']}", "y"),
    ("{.items[0].metadata.labels}", '{"app":"web","k.io/x":"y"}'),
    ('{.items[?(@.status.phase=="Pending")].metadata.name}', "b"),
    ("{..image}", "busybox nginx"),
    ('{range .items[*]}{.metadata.name}{"\\t"}{.status.phase}{"\\n"}{end}', "a\tRunning\nb\tPending\n"),
    ("name={.items[0].metadata.name}!", "name=a!"),
    ("{$.kind}", "List"),
    ("{.items[0].metadata.labels.k\\.io/x}", "y"),
])
def test_templates(template, expected):
    assert render(template, DATA) == expected


def test_missing_field_is_an_error_outside_range():
    with pytest.raises(JsonPathError):
        render("{.items[0].nope}", DATA)
    assert render("{range .items[*]}{.nope}{end}", DATA) == ""


def test_unbalanced_range():
    with pytest.raises(JsonPathError):
        render("{range .items[*]}{.metadata.name}", DATA)
