import asyncio
import base64

import pytest
from node_agent.container_config import PodContext, check_non_root, container_config, resources_for
from node_agent.env import ConfigError, expand, resolve_env
from node_agent.pod_status import ContainerView, Terminated, container_status, phase, qos_class
from node_agent.resolv_conf import ResolvConfig, render
from node_agent.restart_backoff import RestartBackoff

POD = {"metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1", "labels": {"app": "web"}},
       "spec": {"nodeName": "n1", "containers": []}}


def lookup_from(objects):
    async def lookup(kind, namespace, name):
        assert namespace == "shop", "sources are read from the pod's namespace"
        return objects.get((kind, name))
    return lookup


def test_env_order_precedence_and_expansion():
    container = {
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
        "env": [{"name": "A", "value": "x"}, {"name": "B", "value": "$(A)-$(MISSING)-$$(A)"},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
                {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}}],
        "resources": {"limits": {"memory": "64Mi"}},
    }
    objects = {("configmaps", "cfg"): {"data": {"K": "v"}},
               ("secrets", "s"): {"data": {"pw": base64.b64encode(b"hunter2").decode()}}}
    env = dict(asyncio.run(resolve_env(POD, container, lookup_from(objects), pod_ip="10.0.0.5")))
    assert env == {"CFG_K": "v", "A": "x", "B": "x-$(MISSING)-$(A)", "POD": "web-1", "APP": "web",
                   "PASS": "hunter2", "MEM": "64"}


def test_missing_configmap_is_a_config_error_unless_optional():
    container = {"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}]}
    with pytest.raises(ConfigError, match='configmap "nope" not found'):
        asyncio.run(resolve_env(POD, container, lookup_from({})))
    container["env"][0]["valueFrom"]["configMapKeyRef"]["optional"] = True
    assert asyncio.run(resolve_env(POD, container, lookup_from({}))) == []


def test_expand_leaves_unknown_references():
    assert expand("$(A)$(B)", {"A": "1"}) == "1$(B)"


def test_resources_map_to_cgroup_settings():
    r = resources_for({"resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}}})
    assert (r.cpu_quota_us, r.cpu_period_us, r.cpu_shares, r.memory_bytes) == (50000, 100000, 256, 128 << 20)


def test_command_and_args_map_to_entrypoint_and_cmd():
    pod = {**POD, "spec": {"containers": []}}
    c = {"name": "c", "image": "busybox", "command": ["sh", "-c"], "args": ["echo $(X)"]}
    cfg = container_config(c, PodContext(pod, {}, None), [("X", "hi")], log_path="/l", restart_count=2,
                           spec_hash="h")
    assert list(cfg.entrypoint) == ["sh", "-c"] and list(cfg.command) == ["echo hi"]
    assert cfg.labels["io.kubernetes.container.restartCount"] == "2"


def test_run_as_non_root_refuses_root_images():
    pod = {"spec": {"securityContext": {"runAsNonRoot": True}}}
    with pytest.raises(ConfigError, match="runAsNonRoot"):
        check_non_root(pod, {}, "")
    check_non_root(pod, {"securityContext": {"runAsUser": 1000}}, "")


def test_privileged_refused_unless_allowed():
    c = {"name": "c", "image": "x", "securityContext": {"privileged": True}}
    with pytest.raises(ConfigError, match="privileged"):
        container_config(c, PodContext(POD, {}, None), [], log_path="", restart_count=0, spec_hash="")


def test_phase_rules_like_the_kubelet():
    running = {"state": {"running": {}}}
    crashed_waiting = {"state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"exitCode": 1}}}
    creating = {"state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {}}
    ok = {"state": {"terminated": {"exitCode": 0}}}
    bad = {"state": {"terminated": {"exitCode": 2}}}
    assert phase("Always", True, False, [crashed_waiting]) == "Running"
    assert phase("Always", True, False, [creating]) == "Pending"
    assert phase("Always", False, False, [running]) == "Pending"
    assert phase("Never", True, False, [ok, ok]) == "Succeeded"
    assert phase("Never", True, False, [ok, bad]) == "Failed"
    assert phase("OnFailure", True, False, [bad]) == "Running"
    assert phase("Never", True, True, []) == "Failed"


def test_container_status_shapes():
    view = ContainerView(name="c", image="busybox", container_id="abc", restart_count=1,
                         terminated=Terminated(1, "Error", 1, 2, "abc"), waiting_reason="CrashLoopBackOff")
    status = container_status(view)
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["restartCount"] == 1 and not status["ready"]


def test_qos_classes():
    assert qos_class({"spec": {"containers": [{}]}}) == "BestEffort"
    g = {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1Gi"}}
    assert qos_class({"spec": {"containers": [{"resources": g}]}}) == "Guaranteed"
    assert qos_class({"spec": {"containers": [{"resources": {"requests": {"cpu": "1"}}}]}}) == "Burstable"


def test_resolv_conf_cluster_first_and_fallback():
    text = render(POD, ResolvConfig(["10.96.0.10"]))
    assert text.splitlines() == ["nameserver 10.96.0.10",
                                 "search shop.svc.cluster.local svc.cluster.local cluster.local",
                                 "options ndots:5"]
    pod = {**POD, "spec": {"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.2.3.4"],
                                                               "options": [{"name": "ndots", "value": "2"}]}}}
    assert render(pod, ResolvConfig(["10.96.0.10"])) == "nameserver 1.2.3.4\noptions ndots:2\n"


def test_restart_backoff_doubles_caps_and_resets():
    b = RestartBackoff(initial=10, maximum=40, reset_after=600)
    assert b.ready("k", now=0) == (True, 0.0)
    assert [b.record_restart("k", now=0) for _ in range(4)] == [10, 20, 40, 40]
    assert b.ready("k", now=10) == (False, 30)
    assert b.ready("k", ran_for=601, now=10) == (True, 0.0)
