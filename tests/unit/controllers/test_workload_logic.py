from datetime import timedelta

from controllers.controller import Expectations
from controllers.daemonset import daemon_pod_template, pin_to_node, should_run_on, target_node
from controllers.deployment import (
    HASH_LABEL,
    resolve_int_or_percent,
    surge_and_unavailable,
    template_hash,
    templates_equal,
)
from controllers.endpoints import desired_subsets
from controllers.node_lifecycle import NodeLifecycleController, wanted_taint_key
from controllers.pod_state import deletion_rank, is_available
from ketch.api.timeutil import format_rfc3339, now

TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}


def test_template_hash_is_stable_and_ignores_its_own_label():
    h = template_hash(TEMPLATE)
    assert h == template_hash(TEMPLATE) and h.isalnum()
    labelled = {**TEMPLATE, "metadata": {"labels": {"app": "web", HASH_LABEL: h}}}
    assert template_hash(labelled) == h
    assert templates_equal(labelled, TEMPLATE)
    changed = {**TEMPLATE, "spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}
    assert template_hash(changed) != h and not templates_equal(changed, TEMPLATE)
    assert template_hash(TEMPLATE, collision_count=1) != h


def test_surge_and_unavailable_rounding_like_kubernetes():
    assert resolve_int_or_percent("25%", 10, round_up=True, default="25%") == 3
    assert resolve_int_or_percent("25%", 10, round_up=False, default="25%") == 2
    d = {"spec": {"replicas": 3, "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}}}
    assert surge_and_unavailable(d) == (0, 1), "both zero would deadlock: unavailable becomes 1"
    assert surge_and_unavailable({"spec": {"replicas": 4}}) == (1, 1)


def pod(name, ip, ready, labels=None, ports=None, node="n1"):
    return {"metadata": {"name": name, "namespace": "default", "uid": f"u-{name}", "labels": labels or {}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "ports": ports or []}]},
            "status": {"podIP": ip, "phase": "Running",
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_endpoints_split_ready_and_resolve_named_ports():
    svc = {"spec": {"selector": {"app": "web"},
                    "ports": [{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}]}}
    ports = [{"name": "web", "containerPort": 8080, "protocol": "TCP"}]
    subsets = desired_subsets(svc, [pod("b", "10.0.0.10", True, ports=ports),
                                    pod("a", "10.0.0.9", False, ports=ports),
                                    pod("c", "10.0.0.2", True, ports=ports)])
    assert len(subsets) == 1
    assert [a["ip"] for a in subsets[0]["addresses"]] == ["10.0.0.2", "10.0.0.10"]
    assert [a["ip"] for a in subsets[0]["notReadyAddresses"]] == ["10.0.0.9"]
    assert subsets[0]["ports"] == [{"port": 8080, "protocol": "TCP", "name": "http"}]
    svc["spec"]["publishNotReadyAddresses"] = True
    assert len(desired_subsets(svc, [pod("a", "10.0.0.9", False, ports=ports)])[0]["addresses"]) == 1


def test_daemon_pods_are_pinned_and_tolerate_node_conditions():
    ds = {"spec": {"template": TEMPLATE}}
    template = daemon_pod_template(ds)
    pinned = pin_to_node(template, "node-b")
    assert target_node(pinned) == "node-b"
    unreachable = {"metadata": {"name": "n", "labels": {}},
                   "spec": {"taints": [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]}}
    assert should_run_on(template, unreachable)
    dedicated = {"metadata": {"name": "n"}, "spec": {"taints": [{"key": "gpu", "effect": "NoSchedule"}]}}
    assert not should_run_on(template, dedicated)


def test_availability_needs_min_ready_seconds():
    p = pod("a", "1.1.1.1", True)
    p["status"]["conditions"][0]["lastTransitionTime"] = format_rfc3339(now() - timedelta(seconds=5))
    assert is_available(p, 0) and is_available(p, 3) and not is_available(p, 10)


def test_deletion_rank_prefers_unscheduled_then_unready():
    unscheduled = pod("u", "", False, node="")
    unscheduled["status"]["phase"] = "Pending"
    ready, unready = pod("r", "1.1.1.1", True), pod("n", "1.1.1.2", False)
    assert sorted([ready, unready, unscheduled], key=deletion_rank) == [unscheduled, unready, ready]


def test_expectations_block_until_observed():
    e = Expectations()
    e.expect("ns/rs", adds=2)
    assert not e.satisfied("ns/rs")
    e.observed_add("ns/rs")
    e.observed_add("ns/rs")
    assert e.satisfied("ns/rs")


def test_node_taint_follows_ready_condition():
    def node(status):
        return {"status": {"conditions": [{"type": "Ready", "status": status}]}}
    assert wanted_taint_key(node("Unknown")) == "node.kubernetes.io/unreachable"
    assert wanted_taint_key(node("False")) == "node.kubernetes.io/not-ready"
    assert wanted_taint_key(node("True")) is None


def test_eviction_delay_uses_toleration_seconds_or_default():
    ctl = NodeLifecycleController.__new__(NodeLifecycleController)
    ctl.default_toleration_seconds = 300
    at = now()
    taint = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute",
             "timeAdded": format_rfc3339(at - timedelta(seconds=100))}
    plain = {"spec": {}}
    assert 199 <= ctl._eviction_delay(plain, [taint], at) <= 200
    quick = {"spec": {"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                       "effect": "NoExecute", "tolerationSeconds": 30}]}}
    assert ctl._eviction_delay(quick, [taint], at) < 0
    forever = {"spec": {"tolerations": [{"operator": "Exists"}]}}
    assert ctl._eviction_delay(forever, [taint], at) is None
    other = {"key": "dedicated", "effect": "NoExecute", "timeAdded": format_rfc3339(at)}
    assert ctl._eviction_delay(plain, [other], at) <= 0, "an untolerated NoExecute taint evicts at once"


def test_pods_on_an_unready_node_leave_the_ready_addresses():
    from controllers.endpoints import node_ready

    svc = {"spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]}}
    pods = [pod("a", "10.0.0.1", True, node="n1"), pod("b", "10.0.0.2", True, node="n2")]
    subsets = desired_subsets(svc, pods, unready_nodes=frozenset({"n2"}))
    assert [a["ip"] for a in subsets[0]["addresses"]] == ["10.0.0.1"]
    assert [a["ip"] for a in subsets[0]["notReadyAddresses"]] == ["10.0.0.2"]

    def node(status):
        return {"status": {"conditions": [{"type": "Ready", "status": status}]}}
    assert node_ready(node("True")) and not node_ready(node("Unknown")) and not node_ready(node("False"))
