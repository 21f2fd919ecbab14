"""Label and field selectors: Kubernetes syntax, validation, matching, canonical text."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ketch.api.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    check_field_selector,
    field_selector_for,
    matches_object,
    object_fields,
    supported_field_keys,
)


@dataclass(frozen=True)
class Info:
    group: str
    kind: str
    namespaced: bool = True


PODS = Info("", "Pod")
NODES = Info("", "Node", namespaced=False)
EVENTS = Info("", "Event")
CONFIGMAPS = Info("", "ConfigMap")

LABELS = {"app": "web", "tier": "front", "env": "prod", "n": "5"}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("app!=web", False),
        ("missing!=x", True),
        ("app in (web,db)", True),
        ("app in (db)", False),
        ("app notin (db, cache)", True),
        ("app notin (web)", False),
        ("missing notin (x)", True),
        ("missing in (x)", False),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app=web,tier=front", True),
        ("app=web,tier=back", False),
        ("app=web, env in (prod,staging), !canary", True),
        ("n>4", True),
        ("n>5", False),
        ("n<6", True),
        ("app>1", False),
        ("missing=", False),
        ("app in (web,)", True),
    ],
)
def test_label_selector_matching(text, expected):
    assert LabelSelector.parse(text).matches(LABELS) is expected


def test_empty_value_equality_matches_empty_label():
    assert LabelSelector.parse("a=").matches({"a": ""})
    assert not LabelSelector.parse("a=").matches({})


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("tier=front,app=web", "app=web,tier=front"),
        ("app in (web, db)", "app in (db,web)"),
        ("b notin (y,x),a", "a,b notin (x,y)"),
        ("!canary", "!canary"),
        ("app==web", "app==web"),
        ("  x!=y  ", "x!=y"),
        ("n>4", "n>4"),
        ("example.com/role=lb", "example.com/role=lb"),
    ],
)
def test_label_selector_canonical_text(text, canonical):
    selector = LabelSelector.parse(text)
    assert str(selector) == canonical
    assert LabelSelector.parse(str(selector)) == selector


@pytest.mark.parametrize(
    "bad",
    [
        "app=web=x",
        "app in web",
        "app in (web",
        "=web",
        "app=web,",
        ",app",
        "app web",
        "!app=web",
        "-bad=x",
        "a/b/c=x",
        "Example.com/x=y",
        "app=bad value",
        "app=-x",
        "x" * 64 + "=y",
        "app=" + "v" * 64,
        "n>x",
        "in=x",
        "app in (a b)",
    ],
)
def test_label_selector_parse_errors(bad):
    with pytest.raises(SelectorError):
        LabelSelector.parse(bad)


def test_error_message_names_the_bad_value():
    with pytest.raises(SelectorError) as info:
        LabelSelector.parse("app=bad_")
    assert '"bad_"' in str(info.value)
    assert "a valid label must be an empty string" in str(info.value)


def test_from_dict_match_labels_and_expressions():
    sel = LabelSelector.from_dict(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "tier", "operator": "Exists"},
                {"key": "zone", "operator": "NotIn", "values": ["a"]},
            ],
        }
    )
    assert sel.matches(LABELS)
    assert not sel.matches({**LABELS, "canary": "1"})
    assert not sel.matches({**LABELS, "env": "dev"})
    assert not sel.matches({"app": "web", "env": "prod"})
    assert str(sel) == "app=web,!canary,env in (prod,staging),tier,zone notin (a)"


def test_from_dict_empty_and_none():
    assert LabelSelector.from_dict({}).empty
    assert LabelSelector.from_dict({}).matches({"any": "x"})
    nothing = LabelSelector.from_dict(None)
    assert not nothing.empty and not nothing.matches({}) and not nothing.matches(LABELS)
    assert LabelSelector.parse("").empty and not LabelSelector.parse("a").empty


@pytest.mark.parametrize(
    "bad",
    [
        {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
        {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
        {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
        {"matchLabels": {"bad key": "x"}},
        {"matchLabels": {"a": "bad value"}},
    ],
)
def test_from_dict_rejects(bad):
    with pytest.raises(SelectorError):
        LabelSelector.from_dict(bad)


def test_from_labels_and_exact_labels():
    sel = LabelSelector.from_labels({"app": "web", "tier": "front"})
    assert sel.matches(LABELS) and not sel.matches({"app": "web"})
    assert sel.exact_labels() == {"app": "web", "tier": "front"}
    assert LabelSelector.from_labels(None).empty


# --- field selectors ----------------------------------------------------------------


def _pod(**spec_status):
    return {
        "metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"nodeName": "node-a", "restartPolicy": "Always"},
        "status": {"phase": "Running", "podIP": "10.0.0.5"},
    }


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", True),
        ("metadata.name=web-1", True),
        ("metadata.name==web-1", True),
        ("metadata.name!=web-1", False),
        ("spec.nodeName=node-a,status.phase=Running", True),
        ("spec.nodeName=node-b", False),
        ("spec.nodeName!=", True),
        ("status.nominatedNodeName=", True),
        ("metadata.namespace=default", True),
        ("spec.schedulerName=default-scheduler", False),
    ],
)
def test_field_selector_on_pods(text, expected):
    selector = field_selector_for(PODS, text)
    assert selector.matches(object_fields(PODS, _pod())) is expected
    assert matches_object(PODS, _pod(), fields=selector) is expected


def test_field_selector_terms_sorted_like_kubernetes():
    assert str(FieldSelector.parse("status.phase=Running,metadata.name=a,")) == (
        "metadata.name=a,status.phase=Running"
    )


def test_pod_ip_field_prefers_pod_ips():
    pod = _pod()
    pod["status"]["podIPs"] = [{"ip": "10.0.0.9"}, {"ip": "fd00::9"}]
    assert object_fields(PODS, pod)["status.podIP"] == "10.0.0.9"
    assert object_fields(PODS, _pod())["status.podIP"] == "10.0.0.5"


def test_field_selector_escapes():
    sel = FieldSelector.parse(r"metadata.name=a\,b\=c\\d,reason!=x")
    assert [(r.key, r.operator, r.value) for r in sel.requirements] == [
        ("metadata.name", "=", "a,b=c\\d"),
        ("reason", "!=", "x"),
    ]
    assert str(sel) == r"metadata.name=a\,b\=c\\d,reason!=x"
    assert FieldSelector.parse(str(sel)).requirements == sel.requirements
    assert sel.exact("metadata.name") == "a,b=c\\d" and sel.exact("reason") is None


@pytest.mark.parametrize("bad", ["metadata.name", "a=b,c", r"a=b\x"])
def test_field_selector_parse_errors(bad):
    with pytest.raises(SelectorError):
        FieldSelector.parse(bad)


def test_unsupported_field_key_is_refused_with_kubernetes_wording():
    with pytest.raises(SelectorError) as info:
        field_selector_for(PODS, "spec.foo=bar")
    assert str(info.value) == "field label not supported: spec.foo"
    with pytest.raises(SelectorError):
        check_field_selector(CONFIGMAPS, FieldSelector.parse("status.phase=Running"))
    check_field_selector(CONFIGMAPS, FieldSelector.parse("metadata.name=x"))


def test_supported_keys_per_kind():
    assert {"spec.nodeName", "status.phase", "status.podIP", "spec.restartPolicy"} <= (
        supported_field_keys(PODS)
    )
    assert supported_field_keys(CONFIGMAPS) == {"metadata.name", "metadata.namespace"}
    assert "involvedObject.uid" in supported_field_keys(EVENTS)
    assert supported_field_keys(Info("", "Secret")) == {
        "metadata.name",
        "metadata.namespace",
        "type",
    }
    assert "status.replicas" in supported_field_keys(Info("apps", "ReplicaSet"))
    assert "status.successful" in supported_field_keys(Info("batch", "Job"))


def test_object_fields_for_events_nodes_jobs():
    event = {
        "metadata": {"name": "e1", "namespace": "ns"},
        "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "ns", "uid": "u1"},
        "reason": "Scheduled",
        "source": {"component": "default-scheduler"},
        "type": "Normal",
    }
    fields = object_fields(EVENTS, event)
    assert fields["involvedObject.kind"] == "Pod"
    assert fields["involvedObject.uid"] == "u1"
    assert fields["involvedObject.fieldPath"] == ""
    assert fields["source"] == "default-scheduler"
    node_fields = object_fields(
        NODES, {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}}
    )
    assert node_fields == {
        "metadata.name": "n1",
        "metadata.namespace": "",
        "spec.unschedulable": "true",
    }
    assert object_fields(NODES, {"metadata": {"name": "n1"}})["spec.unschedulable"] == "false"
    job = object_fields(
        Info("batch", "Job"), {"metadata": {"name": "j"}, "status": {"succeeded": 2}}
    )
    assert job["status.successful"] == "2"


def test_matches_object_with_both_selectors():
    pod = _pod()
    assert matches_object(
        PODS, pod, LabelSelector.parse("app=web"), FieldSelector.parse("spec.nodeName=node-a")
    )
    assert not matches_object(PODS, pod, LabelSelector.parse("app=db"), None)
    assert matches_object(PODS, pod)
