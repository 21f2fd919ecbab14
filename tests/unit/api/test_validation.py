"""validate_object: the errors a user sees, each naming the exact field path."""

import copy
import time

import pytest

from ketch.api.defaults import apply_defaults
from ketch.api.resources import resolve
from ketch.api.validation import (
    DUPLICATE,
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
    NOT_SUPPORTED,
    REQUIRED,
    TYPE_INVALID,
    UNKNOWN,
    validate_body,
    validate_object,
)


def deployment():
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "front"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "busybox:1.36",
                            "command": ["httpd", "-f", "-p", "8080"],
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "env": [
                                {"name": "MODE", "value": "demo"},
                                {
                                    "name": "POD_IP",
                                    "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
                                },
                                {
                                    "name": "PASSWORD",
                                    "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}},
                                },
                            ],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "64Mi"},
                                "limits": {"cpu": 1, "memory": "128Mi"},
                            },
                            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        }
                    ],
                    "volumes": [{"name": "data", "emptyDir": {"medium": "Memory"}}],
                },
            },
        },
    }


def pod():
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1d"]}]},
    }


def service():
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
    }


def errors(kind, obj, old=None):
    return validate_object(resolve(kind), obj, old=old)


def only(errs):
    assert len(errs) == 1, [str(e) for e in errs]
    return errs[0]


def test_valid_manifests_pass():
    assert errors("deploy", deployment()) == []
    assert errors("po", pod()) == []
    assert errors("svc", service()) == []


def test_valid_manifests_pass_after_defaults_too():
    for kind, obj in (("deploy", deployment()), ("po", pod()), ("svc", service())):
        apply_defaults(resolve(kind), obj)
        assert errors(kind, obj) == [], kind


# --- the issue's examples -------------------------------------------------------------------


def test_missing_image_names_the_full_path():
    obj = deployment()
    del obj["spec"]["template"]["spec"]["containers"][0]["image"]
    err = only(errors("deploy", obj))
    assert err.field == "spec.template.spec.containers[0].image"
    assert err.type == REQUIRED
    assert err.message == "Required value"
    assert str(err) == "spec.template.spec.containers[0].image: Required value"


def test_unknown_field_is_rejected_with_its_path():
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["foo"] = "bar"
    err = only(errors("deploy", obj))
    assert err.field == "spec.template.spec.containers[0].foo"
    assert err.type == UNKNOWN
    assert "Unknown field" in err.message and "not supported by Ketch" in err.message


def test_unknown_top_level_and_metadata_fields():
    obj = pod()
    obj["spec_"] = {}
    obj["metadata"]["lables"] = {"a": "b"}
    fields = {e.field for e in errors("po", obj)}
    assert fields == {"spec_", "metadata.lables"}


def test_kubernetes_field_ketch_does_not_support_says_so():
    obj = pod()
    obj["spec"]["hostPID"] = True
    obj["spec"]["volumes"] = [{"name": "v", "persistentVolumeClaim": {"claimName": "x"}}]
    errs = {e.field: e for e in errors("po", obj)}
    assert "spec.hostPID" in errs
    assert "not supported by Ketch" in errs["spec.hostPID"].message
    assert "host PID" in errs["spec.hostPID"].message
    assert "spec.volumes[0].persistentVolumeClaim" in errs


def test_bad_name():
    obj = deployment()
    obj["metadata"]["name"] = "Web_App"
    err = only(errors("deploy", obj))
    assert err.field == "metadata.name"
    assert err.type == INVALID
    assert err.message.startswith('Invalid value: "Web_App": a lowercase RFC 1123 subdomain')


def test_wrong_type():
    obj = deployment()
    obj["spec"]["replicas"] = "three"
    err = only(errors("deploy", obj))
    assert (err.field, err.type) == ("spec.replicas", TYPE_INVALID)
    assert str(err) == 'spec.replicas: Invalid value: "three": must be an integer'


@pytest.mark.parametrize(
    "path, value, expected",
    [
        (("spec", "paused"), "yes", "a boolean"),
        (("spec", "template", "spec", "containers"), {"name": "x"}, "an array"),
        (("spec", "template", "metadata", "labels"), ["a"], "an object"),
        (("spec", "selector"), "app=web", "an object"),
        (("spec", "minReadySeconds"), 1.5, "an integer"),
        (("spec", "template", "spec", "nodeName"), 7, "a string"),
    ],
)
def test_wrong_types_everywhere(path, value, expected):
    obj = deployment()
    target = obj
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    errs = [e for e in errors("deploy", obj) if e.type == TYPE_INVALID]
    assert len(errs) == 1, [str(e) for e in errors("deploy", obj)]
    assert errs[0].field == ".".join(path)
    assert expected in errs[0].message


def test_int32_overflow_and_minimum():
    obj = deployment()
    obj["spec"]["replicas"] = 2**40
    assert "32-bit" in only(errors("deploy", obj)).message
    obj["spec"]["replicas"] = -1
    err = only(errors("deploy", obj))
    assert str(err) == "spec.replicas: Invalid value: -1: must be greater than or equal to 0"


# --- server-owned fields ------------------------------------------------------------------------


def test_status_and_server_metadata_are_accepted():
    obj = deployment()
    obj["metadata"].update(
        uid="1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        resourceVersion="42",
        generation=3,
        creationTimestamp="2024-05-01T10:00:00Z",
        deletionTimestamp=None,
        managedFields=[{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}}],
        selfLink="/apis/apps/v1/namespaces/default/deployments/web",
    )
    obj["status"] = {
        "observedGeneration": 3,
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "conditions": [
            {
                "type": "Available",
                "status": "True",
                "lastUpdateTime": "2024-05-01T10:00:05Z",
                "lastTransitionTime": "2024-05-01T10:00:05Z",
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
            }
        ],
    }
    assert errors("deploy", obj) == []


def test_pod_status_as_the_node_agent_writes_it():
    obj = pod()
    obj["status"] = {
        "phase": "Running",
        "hostIP": "10.0.0.2",
        "podIP": "10.244.1.5",
        "podIPs": [{"ip": "10.244.1.5"}],
        "startTime": "2024-05-01T10:00:00Z",
        "qosClass": "BestEffort",
        "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None}],
        "containerStatuses": [
            {
                "name": "c",
                "ready": True,
                "started": True,
                "restartCount": 2,
                "image": "docker.io/library/busybox:latest",
                "imageID": "sha256:abc",
                "containerID": "ketch://0123",
                "state": {"running": {"startedAt": "2024-05-01T10:00:01Z"}},
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
            }
        ],
    }
    assert errors("po", obj) == []


def test_null_means_unset():
    obj = deployment()
    obj["metadata"]["creationTimestamp"] = None
    obj["spec"]["strategy"] = None
    obj["status"] = {}
    assert errors("deploy", obj) == []


# --- names, labels, annotations -------------------------------------------------------------------


def test_name_rules_per_kind():
    svc = service()
    svc["metadata"]["name"] = "1web"  # DNS-1035: must start with a letter
    assert "DNS-1035" in only(errors("svc", svc)).message
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}}
    assert "RFC 1123 label" in only(errors("ns", ns)).message
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a.b", "namespace": "x"}}
    assert errors("cm", cm) == []
    long = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a" * 254}}
    assert "no more than 253" in errors("cm", long)[0].message


def test_name_or_generate_name_is_required():
    obj = pod()
    del obj["metadata"]["name"]
    err = only(errors("po", obj))
    assert (err.field, err.type) == ("metadata.name", REQUIRED)
    obj["metadata"]["generateName"] = "web-"
    assert errors("po", obj) == []
    obj["metadata"]["generateName"] = "Web-"
    assert only(errors("po", obj)).field == "metadata.generateName"


def test_label_keys_and_values():
    obj = pod()
    obj["metadata"]["labels"] = {
        "app.kubernetes.io/name": "ok",
        "bad key": "x",
        "good": "bad value!",
        "example.com/": "x",
        "/x": "x",
        "k": "v" * 64,
    }
    errs = errors("po", obj)
    assert {e.field for e in errs} == {
        "metadata.labels",
        "metadata.labels[good]",
        "metadata.labels[k]",
    }
    messages = " ".join(e.message for e in errs)
    assert '"bad key"' in messages and "name part must consist" in messages
    assert "prefix part must be non-empty" in messages
    assert "name part must be non-empty" in messages
    assert "no more than 63 characters" in messages


def test_annotations_may_hold_anything_but_not_too_much():
    obj = pod()
    obj["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": '{"a": 1}\n'
    }
    assert errors("po", obj) == []
    obj["metadata"]["annotations"] = {"big": "x" * (256 * 1024)}
    err = only(errors("po", obj))
    assert err.field == "metadata.annotations" and "Too long" in err.message


def test_container_names_are_labels_and_unique():
    obj = pod()
    obj["spec"]["containers"].append({"name": "c", "image": "busybox"})
    obj["spec"]["initContainers"] = [{"name": "Init", "image": "busybox"}]
    errs = {(e.field, e.type) for e in errors("po", obj)}
    assert errs == {
        ("spec.containers[1].name", DUPLICATE),
        ("spec.initContainers[0].name", INVALID),
    }


# --- enums ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, path, value, supported",
    [
        ("po", ("spec", "restartPolicy"), "Sometimes", '"Always", "OnFailure", "Never"'),
        (
            "po",
            ("spec", "containers", 0, "imagePullPolicy"),
            "Maybe",
            '"Always", "IfNotPresent", "Never"',
        ),
        ("svc", ("spec", "type"), "LoadBalancer", '"ClusterIP", "NodePort"'),
        ("svc", ("spec", "ports", 0, "protocol"), "tcp", '"TCP", "UDP"'),
        ("deploy", ("spec", "strategy", "type"), "BlueGreen", '"RollingUpdate", "Recreate"'),
    ],
)
def test_enums_list_supported_values(kind, path, value, supported):
    obj = {"po": pod, "svc": service, "deploy": deployment}[kind]()
    target = obj
    for step in path[:-1]:
        target = target.setdefault(step, {}) if isinstance(step, str) else target[step]
    target[path[-1]] = value
    err = only(errors(kind, obj))
    assert err.type == NOT_SUPPORTED
    assert err.field == ".".join(str(p) for p in path).replace(".0", "[0]")
    assert err.message == f'Unsupported value: "{value}": supported values: {supported}'


# --- workloads -------------------------------------------------------------------------------------


def test_selector_must_match_template_labels():
    obj = deployment()
    obj["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    err = only(errors("deploy", obj))
    assert err.field == "spec.template.metadata.labels"
    assert "`selector` does not match template `labels`" in err.message


def test_selector_is_required_and_not_empty():
    obj = deployment()
    del obj["spec"]["selector"]
    assert only(errors("deploy", obj)).field == "spec.selector"
    obj["spec"]["selector"] = {}
    err = only(errors("deploy", obj))
    assert err.field == "spec.selector" and "empty selector" in err.message


def test_match_expressions_are_honoured():
    obj = deployment()
    obj["spec"]["selector"] = {
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]
    }
    assert errors("deploy", obj) == []
    obj["spec"]["selector"]["matchExpressions"][0]["values"] = []
    assert {e.field for e in errors("deploy", obj)} >= {"spec.selector.matchExpressions[0].values"}


def test_workload_templates_must_restart_always():
    obj = deployment()
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    err = only(errors("deploy", obj))
    assert err.field == "spec.template.spec.restartPolicy"
    assert err.message == 'Unsupported value: "Never": supported values: "Always"'


def job(restart_policy="Never"):
    spec = {"containers": [{"name": "pi", "image": "busybox", "command": ["true"]}]}
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default"},
        "spec": {"template": {"spec": spec}},
    }


def test_job_restart_policy_must_be_on_failure_or_never():
    assert errors("job", job()) == []
    obj = job(restart_policy=None)
    apply_defaults(resolve("job"), obj)
    err = only(errors("job", obj))
    assert (err.field, err.type) == ("spec.template.spec.restartPolicy", REQUIRED)
    assert '"OnFailure", "Never"' in err.message
    err = only(errors("job", job("Always")))
    assert err.type == NOT_SUPPORTED


def test_deployment_strategy_rules():
    obj = deployment()
    obj["spec"]["strategy"] = {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}
    err = only(errors("deploy", obj))
    assert (err.field, err.type) == ("spec.strategy.rollingUpdate", FORBIDDEN)
    obj["spec"]["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"},
    }
    assert only(errors("deploy", obj)).field == "spec.strategy.rollingUpdate.maxUnavailable"
    obj["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": "150%", "maxUnavailable": "x"}
    assert {e.field for e in errors("deploy", obj)} == {
        "spec.strategy.rollingUpdate.maxSurge",
        "spec.strategy.rollingUpdate.maxUnavailable",
    }


# --- pod spec rules -----------------------------------------------------------------------------


def test_volume_mount_must_name_a_volume():
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["name"] = "nope"
    err = only(errors("deploy", obj))
    assert (err.field, err.type) == (
        "spec.template.spec.containers[0].volumeMounts[0].name",
        NOT_FOUND,
    )


def test_volume_needs_exactly_one_source():
    obj = pod()
    obj["spec"]["volumes"] = [{"name": "v", "emptyDir": {}, "hostPath": {"path": "/tmp"}}]
    err = only(errors("po", obj))
    assert err.field.startswith("spec.volumes[0]") and "more than 1 volume type" in err.message


def test_duplicate_ports_and_port_names():
    obj = pod()
    obj["spec"]["containers"][0]["ports"] = [
        {"containerPort": 80, "name": "http"},
        {"containerPort": 80, "name": "http"},
        {"containerPort": 81, "name": "http--x"},
        {"containerPort": 70000},
    ]
    errs = {(e.field, e.type) for e in errors("po", obj)}
    assert ("spec.containers[0].ports[1]", DUPLICATE) in errs
    assert ("spec.containers[0].ports[1].name", DUPLICATE) in errs
    assert ("spec.containers[0].ports[2].name", INVALID) in errs
    assert ("spec.containers[0].ports[3].containerPort", INVALID) in errs


def test_quantities_must_parse_and_requests_fit_limits():
    obj = pod()
    obj["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "lots", "memory": "256Mi"},
        "limits": {"memory": "128Mi"},
    }
    errs = {e.field: e for e in errors("po", obj)}
    assert set(errs) == {
        "spec.containers[0].resources.requests[cpu]",
        "spec.containers[0].resources.requests[memory]",
    }
    assert (
        "must be less than or equal to memory limit of 128Mi"
        in errs["spec.containers[0].resources.requests[memory]"].message
    )


def test_probe_needs_one_handler_and_liveness_success_threshold_one():
    obj = pod()
    obj["spec"]["containers"][0]["livenessProbe"] = {"periodSeconds": 5, "successThreshold": 2}
    fields = {e.field for e in errors("po", obj)}
    assert fields == {
        "spec.containers[0].livenessProbe",
        "spec.containers[0].livenessProbe.successThreshold",
    }


def test_env_value_from_rules():
    obj = pod()
    obj["spec"]["containers"][0]["env"] = [
        {"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "B", "valueFrom": {}},
        {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}},
        {"name": "D=E", "value": "x"},
    ]
    fields = {e.field for e in errors("po", obj)}
    assert fields == {
        "spec.containers[0].env[0].valueFrom",
        "spec.containers[0].env[1].valueFrom",
        "spec.containers[0].env[2].valueFrom.fieldRef.fieldPath",
        "spec.containers[0].env[3].name",
    }


def test_tolerations_and_node_affinity():
    obj = pod()
    obj["spec"]["tolerations"] = [
        {"operator": "Exists"},
        {"key": "k", "operator": "Exists", "value": "v"},
        {"key": "k", "value": "v", "effect": "NoSchedule", "tolerationSeconds": 5},
    ]
    obj["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In"}]}]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 500,
                    "preference": {"matchExpressions": [{"key": "x", "operator": "Exists"}]},
                }
            ],
        }
    }
    fields = {e.field for e in errors("po", obj)}
    assert fields == {
        "spec.tolerations[1].operator",
        "spec.tolerations[2].effect",
        "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values",
        "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
    }


# --- services, config, secrets --------------------------------------------------------------------


def test_service_rules():
    obj = service()
    obj["spec"]["ports"] = [{"port": 80}, {"port": 80, "nodePort": 30080}]
    obj["spec"]["clusterIP"] = "10.0.0.300"
    fields = {(e.field, e.type) for e in errors("svc", obj)}
    assert fields == {
        ("spec.ports[0].name", REQUIRED),
        ("spec.ports[1].name", REQUIRED),
        ("spec.ports[1]", DUPLICATE),
        ("spec.ports[1].nodePort", FORBIDDEN),
        ("spec.clusterIP", INVALID),
    }


def test_service_needs_ports_unless_headless():
    obj = service()
    del obj["spec"]["ports"]
    assert only(errors("svc", obj)).field == "spec.ports"
    obj["spec"]["clusterIP"] = "None"
    assert errors("svc", obj) == []


def test_secret_data_must_be_base64():
    obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default"},
        "data": {"good": "aGVsbG8=", "bad": "not base64!"},
    }
    err = only(errors("secret", obj))
    assert err.field == "data[bad]" and "base64" in err.message


def test_config_map_keys():
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default"},
        "data": {"app.conf": "x", "bad/key": "y"},
        "binaryData": {"app.conf": "eA=="},
    }
    fields = {e.field for e in errors("cm", obj)}
    assert fields == {"data", "binaryData[app.conf]"}


# --- updates ----------------------------------------------------------------------------------------


def test_deployment_selector_is_immutable():
    old = deployment()
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "front"}}
    err = only(errors("deploy", new, old))
    assert (err.field, err.message.endswith("field is immutable")) == ("spec.selector", True)
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:1.37"
    assert errors("deploy", new, old) == []


def test_pod_spec_is_immutable_except_image_deadline_and_new_tolerations():
    old = pod()
    old["spec"]["tolerations"] = [{"key": "a", "operator": "Exists"}]
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "busybox:1.37"
    new["spec"]["activeDeadlineSeconds"] = 60
    new["spec"]["tolerations"].append({"key": "b", "operator": "Exists"})
    new["spec"]["nodeName"] = "node-1"  # binding
    assert errors("po", new, old) == []
    changed = copy.deepcopy(new)
    changed["spec"]["containers"][0]["command"] = ["true"]
    err = only(errors("po", changed, new))
    assert (err.field, err.type) == ("spec", FORBIDDEN)
    assert "pod updates may not change fields" in err.message
    moved = copy.deepcopy(new)
    moved["spec"]["nodeName"] = "node-2"
    assert only(errors("po", moved, new)).field == "spec.nodeName"
    removed = copy.deepcopy(new)
    removed["spec"]["tolerations"] = removed["spec"]["tolerations"][1:]
    assert only(errors("po", removed, new)).field == "spec.tolerations"


def test_service_cluster_ip_is_immutable_once_set():
    old = service()
    old["spec"]["clusterIP"] = "10.96.0.10"
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.96.0.11"
    assert only(errors("svc", new, old)).field == "spec.clusterIP"
    new["spec"]["clusterIP"] = "10.96.0.10"
    assert errors("svc", new, old) == []


def test_immutable_config_maps_and_secrets():
    old = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default"},
        "data": {"a": "1"},
        "immutable": True,
    }
    new = copy.deepcopy(old)
    new["data"]["a"] = "2"
    assert only(errors("cm", new, old)).field == "data"
    new = copy.deepcopy(old)
    new["immutable"] = False
    assert only(errors("cm", new, old)).field == "immutable"
    secret_old = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque"}
    secret_new = dict(secret_old, type="example.com/other")
    assert only(errors("secret", secret_new, secret_old)).field == "type"


def test_job_template_and_selector_are_immutable():
    old = job()
    old["spec"]["selector"] = {"matchLabels": {"job-name": "pi"}}
    old["spec"]["template"]["metadata"] = {"labels": {"job-name": "pi"}}
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "other"
    assert only(errors("job", new, old)).field == "spec.template"


# --- subresource bodies, kind checks, speed -------------------------------------------------------


def test_subresource_bodies():
    scale = {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {"name": "web"},
        "spec": {"replicas": -2},
    }
    assert only(validate_body("autoscaling/v1", "Scale", scale)).field == "spec.replicas"
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "p"},
        "target": {"kind": "Node", "name": "n1"},
    }
    assert validate_body("v1", "Binding", binding) == []
    binding["target"] = {"kind": "Pod", "name": "x"}
    assert only(validate_body("v1", "Binding", binding)).field == "target.kind"


def test_api_version_and_kind_must_match_the_resource():
    obj = deployment()
    obj["apiVersion"] = "extensions/v1beta1"
    assert only(errors("deploy", obj)).field == "apiVersion"


def test_validation_is_fast_enough_for_thousands_of_pods():
    info = resolve("po")
    obj = pod()
    obj["metadata"]["labels"] = {"app": "bench", "n": "1"}
    obj["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "10m", "memory": "16Mi"}}
    apply_defaults(info, obj)
    start = time.perf_counter()
    for _ in range(1000):
        assert not validate_object(info, obj)
    per_call = (time.perf_counter() - start) / 1000
    assert per_call < 0.002, f"{per_call * 1e6:.0f} us per pod"


# --- what kubectl itself generates ----------------------------------------------------------------

# `kubectl create ... --dry-run=client -o json` (kubectl 1.32), verbatim.
KUBECTL_GENERATED = [
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"creationTimestamp": None, "labels": {"app": "web"}, "name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {},
            "template": {
                "metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "image": "busybox",
                            "name": "busybox",
                            "ports": [{"containerPort": 80}],
                            "resources": {},
                        }
                    ]
                },
            },
        },
        "status": {},
    },
    {
        "kind": "Job",
        "apiVersion": "batch/v1",
        "metadata": {"name": "j", "creationTimestamp": None},
        "spec": {
            "template": {
                "metadata": {"creationTimestamp": None},
                "spec": {
                    "containers": [
                        {"name": "j", "image": "busybox", "command": ["true"], "resources": {}}
                    ],
                    "restartPolicy": "Never",
                },
            }
        },
        "status": {},
    },
    {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {"name": "np", "creationTimestamp": None, "labels": {"app": "np"}},
        "spec": {
            "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
            "selector": {"app": "np"},
            "type": "NodePort",
        },
        "status": {"loadBalancer": {}},
    },
]


@pytest.mark.parametrize("obj", KUBECTL_GENERATED, ids=lambda o: o["kind"])
def test_manifests_kubectl_generates_are_accepted(obj):
    from ketch.api.resources import by_kind

    obj = copy.deepcopy(obj)
    info = by_kind(obj["apiVersion"], obj["kind"])
    apply_defaults(info, obj)
    assert validate_object(info, obj) == []
    # ... and the stored object, read back and PUT unchanged, is still valid as an update.
    stored = copy.deepcopy(obj)
    stored["metadata"].update(
        uid="u", resourceVersion="7", generation=1, creationTimestamp="2024-01-01T00:00:00Z"
    )
    assert validate_object(info, copy.deepcopy(stored), old=stored) == []


def test_resource_names_must_be_standard_or_qualified():
    obj = pod()
    obj["spec"]["containers"][0]["resources"] = {
        "limits": {"gpu": 1, "example.com/gpu": 1, "hugepages-2Mi": "4Mi", "memory": "1Gi"}
    }
    err = only(errors("po", obj))
    assert err.field == "spec.containers[0].resources.limits[gpu]"
    assert "standard resource type or fully qualified" in err.message


def test_only_one_controller_owner():
    obj = pod()
    refs = [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": n, "uid": n, "controller": True}
        for n in ("a", "b")
    ]
    obj["metadata"]["ownerReferences"] = refs
    err = only(errors("po", obj))
    assert err.field == "metadata.ownerReferences" and "Only one reference" in err.message
    refs[1]["controller"] = False
    assert errors("po", obj) == []


def kitchen_sink_pod():
    """A pod using every field the node agent, scheduler and networking rely on."""
    probe = {
        "initialDelaySeconds": 1,
        "timeoutSeconds": 2,
        "periodSeconds": 3,
        "successThreshold": 1,
        "failureThreshold": 4,
        "terminationGracePeriodSeconds": 5,
    }
    container = {
        "name": "app",
        "image": "registry.local:5000/team/app@sha256:" + "0" * 64,
        "command": ["/bin/app"],
        "args": ["--port", "$(PORT)"],
        "workingDir": "/srv",
        "env": [
            {"name": "PORT", "value": "8080"},
            {
                "name": "CM",
                "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k", "optional": True}},
            },
            {"name": "SEC", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
            {
                "name": "NODE",
                "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName", "apiVersion": "v1"}},
            },
            {"name": "LBL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {
                "name": "MEM",
                "valueFrom": {
                    "resourceFieldRef": {
                        "containerName": "app",
                        "resource": "limits.memory",
                        "divisor": "1Mi",
                    }
                },
            },
        ],
        "envFrom": [
            {"prefix": "CFG_", "configMapRef": {"name": "cfg"}},
            {"secretRef": {"name": "s", "optional": False}},
        ],
        "ports": [
            {"containerPort": 8080, "name": "http", "protocol": "TCP"},
            {
                "containerPort": 53,
                "name": "dns",
                "protocol": "UDP",
                "hostPort": 5353,
                "hostIP": "0.0.0.0",
            },
        ],
        "resources": {
            "requests": {"cpu": "250m", "memory": "64Mi"},
            "limits": {"cpu": "1", "memory": "128Mi"},
        },
        "volumeMounts": [
            {"name": "scratch", "mountPath": "/scratch"},
            {"name": "cfg", "mountPath": "/etc/app", "readOnly": True},
            {"name": "cfg", "mountPath": "/etc/one.conf", "subPath": "one.conf"},
        ],
        "livenessProbe": {
            "httpGet": {
                "path": "/healthz",
                "port": "http",
                "scheme": "HTTP",
                "httpHeaders": [{"name": "X", "value": "y"}],
            },
            **probe,
        },
        "readinessProbe": {"tcpSocket": {"port": 8080}, **probe, "successThreshold": 2},
        "startupProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, **probe},
        "lifecycle": {
            "postStart": {"exec": {"command": ["true"]}},
            "preStop": {"sleep": {"seconds": 2}},
        },
        "securityContext": {
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
            "privileged": False,
            "allowPrivilegeEscalation": False,
        },
        "imagePullPolicy": "IfNotPresent",
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "stdin": True,
        "stdinOnce": True,
        "tty": True,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sink", "namespace": "default", "labels": {"app": "sink"}},
        "spec": {
            "initContainers": [
                {"name": "init", "image": "busybox", "command": ["sh", "-c", "true"]}
            ],
            "containers": [container],
            "volumes": [
                {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
                {
                    "name": "cfg",
                    "configMap": {
                        "name": "cfg",
                        "items": [{"key": "k", "path": "one.conf", "mode": 0o600}],
                        "defaultMode": 0o644,
                    },
                },
                {"name": "sec", "secret": {"secretName": "s", "optional": True}},
                {
                    "name": "info",
                    "downwardAPI": {
                        "items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
                    },
                },
                {
                    "name": "all",
                    "projected": {
                        "sources": [
                            {"configMap": {"name": "cfg"}},
                            {"secret": {"name": "s", "items": [{"key": "password", "path": "pw"}]}},
                            {
                                "downwardAPI": {
                                    "items": [
                                        {
                                            "path": "cpu",
                                            "resourceFieldRef": {
                                                "containerName": "app",
                                                "resource": "requests.cpu",
                                            },
                                        }
                                    ]
                                }
                            },
                        ]
                    },
                },
            ],
            "restartPolicy": "OnFailure",
            "terminationGracePeriodSeconds": 10,
            "activeDeadlineSeconds": 3600,
            "dnsPolicy": "None",
            "dnsConfig": {
                "nameservers": ["10.96.0.10"],
                "searches": ["default.svc.cluster.local"],
                "options": [{"name": "ndots", "value": "5"}],
            },
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "disk", "operator": "In", "values": ["ssd"]}
                                ]
                            },
                            {
                                "matchFields": [
                                    {"key": "metadata.name", "operator": "NotIn", "values": ["n3"]}
                                ]
                            },
                        ]
                    },
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 10,
                            "preference": {
                                "matchExpressions": [
                                    {"key": "cores", "operator": "Gt", "values": ["4"]}
                                ]
                            },
                        }
                    ],
                }
            },
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 30,
                },
                {"key": "dedicated", "operator": "Equal", "value": "lab", "effect": "NoSchedule"},
            ],
            "priorityClassName": "system-cluster-critical",
            "hostname": "sink",
            "subdomain": "workers",
            "hostNetwork": False,
            "serviceAccountName": "default",
            "automountServiceAccountToken": False,
            "schedulerName": "default-scheduler",
            "securityContext": {
                "runAsUser": 1000,
                "runAsGroup": 1000,
                "fsGroup": 2000,
                "supplementalGroups": [3000],
                "runAsNonRoot": True,
            },
            "imagePullSecrets": [{"name": "regcred"}],
            "enableServiceLinks": False,
        },
    }


def test_every_supported_pod_field_is_accepted():
    obj = kitchen_sink_pod()
    assert errors("po", obj) == []
    apply_defaults(resolve("po"), obj)
    assert errors("po", obj) == []


def test_node_as_its_agent_registers_it():
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": "ketch-node-1",
            "labels": {"kubernetes.io/hostname": "ketch-node-1", "kubernetes.io/os": "linux"},
            "annotations": {"ketch.io/vtep-mac": "0a:58:0a:f4:01:01"},
        },
        "spec": {
            "podCIDR": "10.244.1.0/24",
            "podCIDRs": ["10.244.1.0/24"],
            "taints": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "effect": "NoSchedule",
                    "timeAdded": "2024-05-01T10:00:00Z",
                }
            ],
            "unschedulable": False,
        },
        "status": {
            "capacity": {
                "cpu": "2",
                "memory": "4025612Ki",
                "pods": "110",
                "ephemeral-storage": "30Gi",
            },
            "allocatable": {"cpu": "2", "memory": "3923212Ki", "pods": "110"},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "lastHeartbeatTime": "2024-05-01T10:00:00Z",
                    "lastTransitionTime": "2024-05-01T10:00:00Z",
                    "reason": "KetchReady",
                    "message": "node agent is posting ready status",
                }
            ],
            "addresses": [
                {"type": "InternalIP", "address": "10.10.0.2"},
                {"type": "Hostname", "address": "ketch-node-1"},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": "m",
                "systemUUID": "s",
                "bootID": "b",
                "kernelVersion": "6.1.0",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "ketch://0.1.0",
                "kubeletVersion": "v1.32.0-ketch",
                "kubeProxyVersion": "v1.32.0-ketch",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": [{"names": ["docker.io/library/busybox:latest"], "sizeBytes": 4261550}],
        },
    }
    assert errors("no", node) == []
    moved = copy.deepcopy(node)
    moved["spec"]["podCIDR"] = moved["spec"]["podCIDRs"][0] = "10.244.2.0/24"
    assert {e.field for e in errors("no", moved, node)} == {"spec.podCIDR", "spec.podCIDRs"}
    node["spec"]["taints"].append({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"})
    assert only(errors("no", node)).type == DUPLICATE


def test_priority_classes_are_the_built_in_ones():
    obj = pod()
    obj["spec"]["priorityClassName"] = "high"
    err = only(errors("po", obj))
    assert (err.field, err.type) == ("spec.priorityClassName", NOT_SUPPORTED)
    obj["spec"]["priorityClassName"] = "system-node-critical"
    apply_defaults(resolve("po"), obj)
    assert obj["spec"]["priority"] == 2000001000
    assert errors("po", obj) == []
    obj["spec"]["priority"] = 5
    assert only(errors("po", obj)).field == "spec.priority"


def test_features_ketch_does_not_run_are_refused_not_ignored():
    ds = deployment()
    ds["kind"] = "DaemonSet"
    del ds["spec"]["replicas"]
    ds["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
    assert only(errors("ds", ds)).field == "spec.updateStrategy.rollingUpdate.maxSurge"
    indexed = job()
    indexed["spec"]["completionMode"] = "Indexed"
    assert only(errors("job", indexed)).type == NOT_SUPPORTED
    svc = service()
    svc["spec"]["internalTrafficPolicy"] = "Local"
    assert only(errors("svc", svc)).message.endswith('supported values: "Cluster"')
    obj = pod()
    obj["spec"]["shareProcessNamespace"] = True
    assert "not supported by Ketch" in only(errors("po", obj)).message
