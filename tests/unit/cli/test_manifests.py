"""Manifests from files, directories and stdin: YAML streams, JSON and List kinds."""

from __future__ import annotations

import io
import json

import pytest

from ketch.cli import manifests
from ketch.cli.errors import CommandError

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n"


def test_multi_document_yaml_skips_empty_documents(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text(CM.format(name="a") + "---\n---\n" + CM.format(name="b"))
    loaded = manifests.load([str(f)])
    assert [m.obj["metadata"]["name"] for m in loaded] == ["a", "b"]
    assert loaded[0].source == str(f)


def test_json_and_list_kinds_are_expanded(tmp_path):
    f = tmp_path / "l.json"
    f.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
        {"apiVersion": "v1", "kind": "ConfigMapList", "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"}}]},
    ]}))
    assert [m.obj["metadata"]["name"] for m in manifests.load([str(f)])] == ["x", "y"]


def test_directories_with_and_without_recursion(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text(CM.format(name="a"))
    (tmp_path / "notes.txt").write_text("not a manifest")
    (tmp_path / "sub" / "b.yml").write_text(CM.format(name="b"))
    names = lambda ms: sorted(m.obj["metadata"]["name"] for m in ms)  # noqa: E731
    assert names(manifests.load([str(tmp_path)])) == ["a"]
    assert names(manifests.load([str(tmp_path)], recursive=True)) == ["a", "b"]


def test_stdin():
    loaded = manifests.load(["-"], stdin=io.StringIO(CM.format(name="s")))
    assert loaded[0].obj["metadata"]["name"] == "s" and loaded[0].source == "STDIN"


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        manifests.load([str(tmp_path / "nope.yaml")])
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [unclosed\n")
    with pytest.raises(CommandError, match="error parsing"):
        manifests.load([str(bad)])
    with pytest.raises(CommandError, match="kind not set"):
        manifests.check_object({"apiVersion": "v1", "metadata": {"name": "x"}}, "f.yaml")
    with pytest.raises(CommandError, match="name may not be empty"):
        manifests.check_object({"apiVersion": "v1", "kind": "Pod", "metadata": {}}, "f.yaml")
