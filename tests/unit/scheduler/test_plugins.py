from collections import Counter

import pytest

from ketch.api.scheduling import pod_requests
from scheduler.framework import CycleState, NodeInfo
from scheduler.plugins import default_profile
from scheduler.plugins.image_locality import normalized_image_name
from scheduler.plugins.node_affinity import NodeAffinity
from scheduler.plugins.node_ports import NodePorts
from scheduler.plugins.node_resources_fit import NodeResourcesFit
from scheduler.plugins.node_unschedulable import NodeUnschedulable
from scheduler.plugins.taint_toleration import TaintToleration
from scheduler.scheduler import fit_error_message


def node(name, cpu="2", memory="4Gi", pods=110, labels=None, taints=None, unschedulable=False):
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": str(pods)}}}


def pod(name="p", cpu=None, memory=None, ns="default", **spec):
    req = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    container = {"name": "c", "image": "busybox", "resources": {"requests": req} if req else {}}
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"containers": [container], **spec}}


S = CycleState()


def test_resources_fit_counts_requests_already_placed():
    info = NodeInfo(node("n", cpu="1", memory="1Gi"))
    info.add_pod(pod("a", cpu="600m", memory="512Mi"))
    assert NodeResourcesFit().filter(S, pod("b", cpu="300m"), info) == []
    assert NodeResourcesFit().filter(S, pod("b", cpu="500m", memory="600Mi"), info) == [
        "Insufficient cpu", "Insufficient memory"]
    info.remove_pod(pod("a"))
    assert NodeResourcesFit().filter(S, pod("b", cpu="1"), info) == []


def test_too_many_pods():
    info = NodeInfo(node("n", pods=1))
    info.add_pod(pod("a"))
    assert NodeResourcesFit().filter(S, pod("b"), info) == ["Too many pods"]


def test_init_containers_count_at_their_max():
    p = pod(cpu="100m")
    p["spec"]["initContainers"] = [{"name": "i", "image": "x", "resources": {"requests": {"cpu": "1"}}}]
    assert pod_requests(p).milli_cpu == 1000


def test_taints_need_tolerations():
    tainted = NodeInfo(node("n", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]))
    assert TaintToleration().filter(S, pod(), tainted) == ["node(s) had untolerated taint {dedicated: db}"]
    ok = pod(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}])
    assert TaintToleration().filter(S, ok, tainted) == []
    wildcard = pod(tolerations=[{"operator": "Exists"}])
    assert TaintToleration().filter(S, wildcard, tainted) == []


def test_unschedulable_node():
    cordoned = NodeInfo(node("n", unschedulable=True))
    assert NodeUnschedulable().filter(S, pod(), cordoned) == ["node(s) were unschedulable"]


def test_node_selector_and_required_affinity():
    ssd = NodeInfo(node("a", labels={"disk": "ssd", "zone": "z1"}))
    hdd = NodeInfo(node("b", labels={"disk": "hdd"}))
    p = pod(nodeSelector={"disk": "ssd"})
    assert NodeAffinity().filter(S, p, ssd) == []
    assert NodeAffinity().filter(S, p, hdd)
    req = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1", "z2"]}]}]}}}
    assert NodeAffinity().filter(S, pod(affinity=req), ssd) == []
    assert NodeAffinity().filter(S, pod(affinity=req), hdd)


def test_host_port_conflict():
    info = NodeInfo(node("n"))
    taken = pod("a")
    taken["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    info.add_pod(taken)
    wants = pod("b")
    wants["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"}]
    assert NodePorts().filter(S, wants, info)
    info.remove_pod(taken)
    assert NodePorts().filter(S, wants, info) == []


def test_image_names_normalize():
    assert normalized_image_name("busybox") == "docker.io/library/busybox:latest"
    assert normalized_image_name("reg:5000/a/b:1") == "reg:5000/a/b:1"


def test_fit_error_message_like_kubernetes():
    msg = fit_error_message(3, Counter({"Insufficient memory": 2, "node(s) were unschedulable": 1}))
    assert msg == "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient memory."


def test_default_profile_has_every_plugin_once_per_role():
    profile = default_profile()
    assert len({p.name for p in profile.filters}) == len(profile.filters) == 6
    assert all(hasattr(p, "weight") for p in profile.scores)
    with pytest.raises(AttributeError):
        NodeResourcesFit().score  # noqa: B018 - filter-only plugins have no score
