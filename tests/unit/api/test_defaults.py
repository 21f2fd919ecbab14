"""apply_defaults: the values Kubernetes fills in, and only where Kubernetes does."""

import base64
import copy

import pytest

from ketch.api.defaults import apply_defaults, image_pull_policy
from ketch.api.resources import resolve
from ketch.api.validation import validate_object


def defaulted(kind, obj):
    apply_defaults(resolve(kind), obj)
    return obj


def pod_spec(**extra):
    spec = {"containers": [{"name": "c", "image": "busybox:1.36"}]}
    spec.update(extra)
    return spec


def pod(**extra):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": pod_spec(**extra)}


def test_pod_defaults():
    spec = defaulted("po", pod())["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "default"
    assert spec["priority"] == 0
    c = spec["containers"][0]
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["resources"] == {}


def test_explicit_values_are_kept():
    obj = pod(restartPolicy="Never", terminationGracePeriodSeconds=0, dnsPolicy="Default")
    obj["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    spec = defaulted("po", obj)["spec"]
    assert (spec["restartPolicy"], spec["terminationGracePeriodSeconds"], spec["dnsPolicy"]) == (
        "Never",
        0,
        "Default",
    )
    assert spec["containers"][0]["imagePullPolicy"] == "Never"


@pytest.mark.parametrize(
    "image, policy",
    [
        ("busybox", "Always"),
        ("busybox:latest", "Always"),
        ("busybox:1.36", "IfNotPresent"),
        ("registry:5000/team/app", "Always"),
        ("registry:5000/team/app:v2", "IfNotPresent"),
        ("registry:5000/team/app:latest", "Always"),
        ("busybox@sha256:" + "a" * 64, "IfNotPresent"),
    ],
)
def test_image_pull_policy_follows_the_tag(image, policy):
    assert image_pull_policy(image) == policy


def test_ports_probes_and_requests():
    obj = pod()
    c = obj["spec"]["containers"][0]
    c["ports"] = [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]
    c["livenessProbe"] = {"httpGet": {"port": 80}}
    c["readinessProbe"] = {"tcpSocket": {"port": 80}, "periodSeconds": 3}
    c["resources"] = {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "100m"}}
    c["env"] = [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    c = defaulted("po", obj)["spec"]["containers"][0]
    assert [p["protocol"] for p in c["ports"]] == ["TCP", "UDP"]
    assert c["livenessProbe"] == {
        "httpGet": {"port": 80, "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert c["readinessProbe"]["periodSeconds"] == 3
    assert c["resources"]["requests"] == {"cpu": "100m", "memory": "64Mi"}
    assert c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"


def test_volumes():
    obj = pod(
        volumes=[
            {"name": "scratch"},
            {"name": "cfg", "configMap": {"name": "app"}},
            {"name": "sec", "secret": {"secretName": "s"}},
            {"name": "host", "hostPath": {"path": "/var/log"}},
            {"name": "info", "downwardAPI": {"items": []}},
            {"name": "all", "projected": {"sources": [{"configMap": {"name": "app"}}]}},
        ]
    )
    vols = {v["name"]: v for v in defaulted("po", obj)["spec"]["volumes"]}
    assert vols["scratch"]["emptyDir"] == {}
    assert vols["cfg"]["configMap"]["defaultMode"] == 420
    assert vols["sec"]["secret"]["defaultMode"] == 420
    assert vols["host"]["hostPath"]["type"] == ""
    assert vols["info"]["downwardAPI"]["defaultMode"] == 420
    assert vols["all"]["projected"]["defaultMode"] == 420


def test_host_network_publishes_container_ports():
    obj = pod(hostNetwork=True)
    obj["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    port = defaulted("po", obj)["spec"]["containers"][0]["ports"][0]
    assert port["hostPort"] == 8080


def deployment(**spec):
    base = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec()},
    }
    base.update(spec)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": base,
    }


def test_deployment_defaults():
    spec = defaulted("deploy", deployment())["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    template_spec = spec["template"]["spec"]
    assert template_spec["restartPolicy"] == "Always"
    assert template_spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    # Admission-like pod defaults are for pods, not templates.
    assert "serviceAccountName" not in template_spec and "priority" not in template_spec


def test_recreate_strategy_gets_no_rolling_update():
    spec = defaulted("deploy", deployment(strategy={"type": "Recreate"}))["spec"]
    assert spec["strategy"] == {"type": "Recreate"}


def test_partial_rolling_update_is_completed():
    spec = defaulted("deploy", deployment(strategy={"rollingUpdate": {"maxSurge": 1}}))["spec"]
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"},
    }


def test_replica_set_and_daemon_set_defaults():
    rs = deployment()
    rs["kind"] = "ReplicaSet"
    assert defaulted("rs", rs)["spec"]["replicas"] == 1
    ds = deployment()
    ds["kind"] = "DaemonSet"
    spec = defaulted("ds", ds)["spec"]
    assert spec["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert spec["revisionHistoryLimit"] == 10


def job(**spec):
    base = {"template": {"spec": pod_spec(restartPolicy="Never")}}
    base.update(spec)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default"},
        "spec": base,
    }


def test_job_defaults_and_generated_selector():
    obj = defaulted("job", job())
    spec = obj["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/job-name": "pi"}}
    assert spec["template"]["metadata"]["labels"]["job-name"] == "pi"
    assert validate_object(resolve("job"), obj) == []


def test_job_selector_uses_the_uid_when_the_server_set_it():
    obj = job()
    obj["metadata"]["uid"] = "0d6f"
    spec = defaulted("job", obj)["spec"]
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "0d6f"}}
    assert spec["template"]["metadata"]["labels"]["controller-uid"] == "0d6f"


def test_job_work_queue_keeps_completions_unset():
    spec = defaulted("job", job(parallelism=3))["spec"]
    assert spec["parallelism"] == 3 and spec.get("completions") is None


def test_job_template_restart_policy_is_not_defaulted():
    obj = job()
    del obj["spec"]["template"]["spec"]["restartPolicy"]
    assert "restartPolicy" not in defaulted("job", obj)["spec"]["template"]["spec"]


def test_service_defaults():
    obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {
            "type": "NodePort",
            "sessionAffinity": "ClientIP",
            "selector": {"app": "web"},
            "ports": [
                {"name": "http", "port": 80},
                {"name": "alt", "port": 81, "targetPort": "alt"},
            ],
        },
    }
    spec = defaulted("svc", obj)["spec"]
    assert [p["targetPort"] for p in spec["ports"]] == [80, "alt"]
    assert [p["protocol"] for p in spec["ports"]] == ["TCP", "TCP"]
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    plain = defaulted(
        "svc",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "x"},
            "spec": {"ports": [{"port": 1}]},
        },
    )
    assert plain["spec"]["type"] == "ClusterIP"
    assert plain["spec"]["sessionAffinity"] == "None"
    assert "externalTrafficPolicy" not in plain["spec"]


def test_secret_type_and_string_data():
    obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"a": base64.b64encode(b"old").decode()},
        "stringData": {"a": "new", "b": "héllo"},
    }
    obj = defaulted("secret", obj)
    assert obj["type"] == "Opaque"
    assert "stringData" not in obj
    assert base64.b64decode(obj["data"]["a"]) == b"new"
    assert base64.b64decode(obj["data"]["b"]).decode() == "héllo"


def test_defaults_are_idempotent_and_not_shared():
    first = defaulted("deploy", deployment())
    second = defaulted("deploy", copy.deepcopy(first))
    assert first == second
    other = defaulted("po", pod())
    other["spec"]["securityContext"]["runAsUser"] = 1000
    assert defaulted("po", pod())["spec"]["securityContext"] == {}


def test_defaults_tolerate_invalid_input():
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"template": "nope", "strategy": 3},
    }
    apply_defaults(resolve("deploy"), obj)  # must not raise; validation reports it
    assert obj["spec"]["strategy"] == 3 and obj["spec"]["template"] == "nope"
    assert {e.field for e in validate_object(resolve("deploy"), obj)} == {
        "spec.template",
        "spec.strategy",
        "spec.selector",
    }
