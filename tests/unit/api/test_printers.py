"""Server-side Tables: columns and cells as kube-apiserver prints them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from ketch.api.printers import (
    column_definitions,
    format_endpoints,
    pod_status_text,
    table,
)
from ketch.api.timeutil import format_rfc3339


@dataclass(frozen=True)
class Info:
    group: str
    kind: str


NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def ago(**delta) -> str:
    return format_rfc3339(NOW - timedelta(**delta))


def meta(name="x", **extra):
    return {"name": name, "namespace": "default", "creationTimestamp": ago(minutes=5), **extra}


def headers(info, wide=True):
    return [c["name"] for c in column_definitions(info, wide=wide)]


def one_row(info, obj, wide=True):
    result = table(info, [obj], wide=wide, now=NOW)
    return dict(zip(headers(info, wide), result["rows"][0]["cells"], strict=True))


POD = Info("", "Pod")


def running_pod(**status_extra):
    return {
        "metadata": meta("web-1", labels={"app": "web"}),
        "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "busybox"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.1.0.5",
            "podIPs": [{"ip": "10.1.0.5"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {
                    "name": "c",
                    "ready": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": ago(minutes=4)}},
                }
            ],
            **status_extra,
        },
    }


def test_table_shape_and_partial_object_metadata():
    pod = running_pod()
    result = table(POD, [pod], now=NOW)
    assert result["kind"] == "Table" and result["apiVersion"] == "meta.k8s.io/v1"
    first = result["columnDefinitions"][0]
    assert first["name"] == "Name" and first["format"] == "name" and first["priority"] == 0
    assert set(first) == {"name", "type", "format", "description", "priority"}
    row = result["rows"][0]
    assert row["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": pod["metadata"],
    }
    assert len(row["cells"]) == len(result["columnDefinitions"])


def test_pod_columns_and_running_row():
    assert headers(POD) == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
        "IP",
        "Node",
        "Nominated Node",
        "Readiness Gates",
    ]
    assert [c["priority"] for c in column_definitions(POD)] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert one_row(POD, running_pod()) == {
        "Name": "web-1",
        "Ready": "1/1",
        "Status": "Running",
        "Restarts": "0",
        "Age": "5m",
        "IP": "10.1.0.5",
        "Node": "node-a",
        "Nominated Node": "<none>",
        "Readiness Gates": "<none>",
    }


def test_not_wide_drops_priority_columns():
    assert headers(POD, wide=False) == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert table(POD, [running_pod()], wide=False, now=NOW)["rows"][0]["cells"] == [
        "web-1",
        "1/1",
        "Running",
        "0",
        "5m",
    ]


def _pod_with(container_state, phase="Pending", ready=False, restarts=0, **extra):
    pod = running_pod()
    pod["status"] = {
        "phase": phase,
        "containerStatuses": [
            {
                "name": "c",
                "ready": ready,
                "restartCount": restarts,
                "state": container_state,
                **extra,
            }
        ],
    }
    return pod


@pytest.mark.parametrize(
    "pod, status",
    [
        (
            {
                "metadata": meta(),
                "spec": {"containers": [{"name": "c"}]},
                "status": {"phase": "Pending"},
            },
            "Pending",
        ),
        (_pod_with({"waiting": {"reason": "ContainerCreating"}}), "ContainerCreating"),
        (_pod_with({"waiting": {"reason": "ErrImagePull"}}), "ErrImagePull"),
        (
            _pod_with({"waiting": {"reason": "CrashLoopBackOff"}}, phase="Running", restarts=4),
            "CrashLoopBackOff",
        ),
        (
            _pod_with({"terminated": {"reason": "Completed", "exitCode": 0}}, phase="Succeeded"),
            "Completed",
        ),
        (_pod_with({"terminated": {"reason": "Error", "exitCode": 1}}, phase="Failed"), "Error"),
        (_pod_with({"terminated": {"exitCode": 3}}, phase="Failed"), "ExitCode:3"),
        (_pod_with({"terminated": {"exitCode": 137, "signal": 9}}, phase="Failed"), "Signal:9"),
        (_pod_with({"running": {}}, phase="Running", ready=False), "Running"),
    ],
)
def test_pod_status_reasons(pod, status):
    assert pod_status_text(pod)[0] == status


def test_pod_terminating_and_evicted():
    pod = running_pod()
    pod["metadata"]["deletionTimestamp"] = ago(seconds=3)
    assert pod_status_text(pod)[0] == "Terminating"
    evicted = running_pod(phase="Failed", reason="Evicted")
    evicted["status"].pop("containerStatuses")
    assert pod_status_text(evicted)[0] == "Evicted"


def test_pod_init_containers():
    pod = {
        "metadata": meta(),
        "spec": {
            "initContainers": [{"name": "i1"}, {"name": "i2"}],
            "containers": [{"name": "c"}],
        },
        "status": {
            "phase": "Pending",
            "initContainerStatuses": [
                {"name": "i1", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "i2", "state": {"running": {}}},
            ],
            "containerStatuses": [
                {"name": "c", "state": {"waiting": {"reason": "PodInitializing"}}}
            ],
        },
    }
    assert pod_status_text(pod)[:3] == ("Init:1/2", 0, 1)
    pod["status"]["initContainerStatuses"][1]["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    assert pod_status_text(pod)[0] == "Init:CrashLoopBackOff"
    pod["status"]["initContainerStatuses"][1]["state"] = {"terminated": {"exitCode": 2}}
    assert pod_status_text(pod)[0] == "Init:ExitCode:2"


def test_pod_sidecar_counts_in_total_and_ready():
    pod = running_pod()
    pod["spec"]["initContainers"] = [{"name": "proxy", "restartPolicy": "Always"}]
    pod["status"]["initContainerStatuses"] = [
        {
            "name": "proxy",
            "started": True,
            "ready": True,
            "restartCount": 1,
            "state": {"running": {}},
        }
    ]
    reason, ready, total, restarts, _ = pod_status_text(pod)
    assert (reason, ready, total, restarts) == ("Running", 2, 2, 1)


def test_pod_restarts_show_time_of_last_restart():
    pod = running_pod()
    pod["status"]["containerStatuses"][0].update(
        restartCount=5,
        lastState={"terminated": {"exitCode": 1, "finishedAt": ago(minutes=2, seconds=10)}},
    )
    assert one_row(POD, pod)["Restarts"] == "5 (2m10s ago)"


def test_pod_completed_rows_carry_conditions_and_readiness_gates():
    pod = _pod_with({"terminated": {"reason": "Completed", "exitCode": 0}}, phase="Succeeded")
    row = table(POD, [pod], now=NOW)["rows"][0]
    assert (
        row["conditions"][0]["type"] == "Completed"
        and row["conditions"][0]["reason"] == "Succeeded"
    )
    gated = running_pod()
    gated["spec"]["readinessGates"] = [{"conditionType": "a"}, {"conditionType": "b"}]
    gated["status"]["conditions"].append({"type": "a", "status": "True"})
    assert one_row(POD, gated)["Readiness Gates"] == "1/2"
    assert "conditions" not in table(POD, [running_pod()], now=NOW)["rows"][0]


def test_node_rows():
    node = {
        "metadata": meta(
            "n1",
            labels={"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"},
        ),
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.2"}],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0-ketch",
                "osImage": "Debian GNU/Linux 12",
                "kernelVersion": "6.1.0",
                "containerRuntimeVersion": "ketch://0.1.0",
            },
        },
    }
    assert one_row(Info("", "Node"), node) == {
        "Name": "n1",
        "Status": "Ready,SchedulingDisabled",
        "Roles": "control-plane,worker",
        "Age": "5m",
        "Version": "v1.32.0-ketch",
        "Internal-IP": "192.168.1.2",
        "External-IP": "<none>",
        "OS-Image": "Debian GNU/Linux 12",
        "Kernel-Version": "6.1.0",
        "Container-Runtime": "ketch://0.1.0",
    }
    bare = one_row(Info("", "Node"), {"metadata": meta("n2")})
    assert (
        bare["Status"] == "Unknown"
        and bare["Roles"] == "<none>"
        and bare["OS-Image"] == "<unknown>"
    )
    not_ready = {
        "metadata": meta("n3"),
        "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]},
    }
    assert one_row(Info("", "Node"), not_ready)["Status"] == "NotReady"


def test_service_rows():
    svc = {
        "metadata": meta("web"),
        "spec": {
            "type": "NodePort",
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"],
            "ports": [
                {"port": 80, "protocol": "TCP", "nodePort": 30080},
                {"port": 53, "protocol": "UDP"},
            ],
            "selector": {"tier": "f", "app": "web"},
        },
    }
    assert one_row(Info("", "Service"), svc) == {
        "Name": "web",
        "Type": "NodePort",
        "Cluster-IP": "10.96.0.10",
        "External-IP": "<none>",
        "Port(s)": "80:30080/TCP,53/UDP",
        "Age": "5m",
        "Selector": "app=web,tier=f",
    }
    lb = {
        "metadata": meta("lb"),
        "spec": {"type": "LoadBalancer", "clusterIP": "None", "ports": []},
    }
    row = one_row(Info("", "Service"), lb)
    assert (
        row["External-IP"] == "<pending>"
        and row["Cluster-IP"] == "None"
        and row["Port(s)"] == "<none>"
    )


def test_endpoints_formatting():
    eps = {
        "metadata": meta("web"),
        "subsets": [
            {
                "addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 5)],
                "ports": [{"port": 80, "name": "http"}],
            }
        ],
    }
    assert format_endpoints(eps) == "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more..."
    assert (
        format_endpoints(
            {"subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 8080}]}]}
        )
        == "[fd00::1]:8080"
    )
    assert format_endpoints({"subsets": [{"addresses": [{"ip": "10.0.0.9"}]}]}) == "10.0.0.9"
    assert one_row(Info("", "Endpoints"), {"metadata": meta("e")})["Endpoints"] == "<none>"


def test_config_secret_serviceaccount_namespace_lease():
    assert one_row(
        Info("", "ConfigMap"),
        {"metadata": meta("c"), "data": {"a": "1", "b": "2"}, "binaryData": {"z": ""}},
    ) == {
        "Name": "c",
        "Data": 3,
        "Age": "5m",
    }
    assert one_row(
        Info("", "Secret"),
        {
            "metadata": meta("s"),
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": "", "tls.key": ""},
        },
    ) == {
        "Name": "s",
        "Type": "kubernetes.io/tls",
        "Data": 2,
        "Age": "5m",
    }
    assert one_row(Info("", "ServiceAccount"), {"metadata": meta("default")}) == {
        "Name": "default",
        "Secrets": 0,
        "Age": "5m",
    }
    assert one_row(
        Info("", "Namespace"), {"metadata": meta("kube-system"), "status": {"phase": "Active"}}
    ) == {
        "Name": "kube-system",
        "Status": "Active",
        "Age": "5m",
    }
    lease = {"metadata": meta("ketch-scheduler"), "spec": {"holderIdentity": "host_1234"}}
    assert one_row(Info("coordination.k8s.io", "Lease"), lease) == {
        "Name": "ketch-scheduler",
        "Holder": "host_1234",
        "Age": "5m",
    }


def test_event_rows():
    info = Info("", "Event")
    assert headers(info, wide=False) == ["Last Seen", "Type", "Reason", "Object", "Message"]
    assert column_definitions(info)[-1]["format"] == "name"
    event = {
        "metadata": meta("web-1.17abc"),
        "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{c}"},
        "reason": "Pulled",
        "message": '  Container image "busybox" already present on machine\n',
        "type": "Normal",
        "source": {"component": "ketch-node-agent", "host": "node-a"},
        "firstTimestamp": ago(minutes=10),
        "lastTimestamp": ago(seconds=30),
        "count": 3,
    }
    assert one_row(info, event) == {
        "Last Seen": "30s",
        "Type": "Normal",
        "Reason": "Pulled",
        "Object": "pod/web-1",
        "Subobject": "spec.containers{c}",
        "Source": "ketch-node-agent, node-a",
        "Message": 'Container image "busybox" already present on machine',
        "First Seen": "10m",
        "Count": 3,
        "Name": "web-1.17abc",
    }
    new_style = {
        "metadata": meta("e2"),
        "involvedObject": {"kind": "Node"},
        "eventTime": "2024-05-01T11:59:00.123456Z",
        "reportingComponent": "ctrl",
    }
    row = one_row(info, new_style)
    assert (row["Last Seen"], row["First Seen"], row["Count"], row["Object"], row["Source"]) == (
        "59s",
        "59s",
        1,
        "node",
        "ctrl",
    )


TEMPLATE = {
    "spec": {
        "containers": [{"name": "web", "image": "nginx:1"}, {"name": "log", "image": "busybox"}]
    }
}


def test_deployment_rows():
    info = Info("apps", "Deployment")
    assert headers(info, wide=False) == ["Name", "Ready", "Up-to-date", "Available", "Age"]
    dep = {
        "metadata": meta("web"),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    assert one_row(info, dep) == {
        "Name": "web",
        "Ready": "2/3",
        "Up-to-date": 3,
        "Available": 2,
        "Age": "5m",
        "Containers": "web,log",
        "Images": "nginx:1,busybox",
        "Selector": "app=web",
    }


def test_replicaset_and_daemonset_rows():
    rs = {
        "metadata": meta("web-abc"),
        "spec": {
            "replicas": 2,
            "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
            "template": TEMPLATE,
        },
        "status": {"replicas": 2, "readyReplicas": 1},
    }
    assert one_row(Info("apps", "ReplicaSet"), rs) == {
        "Name": "web-abc",
        "Desired": 2,
        "Current": 2,
        "Ready": 1,
        "Age": "5m",
        "Containers": "web,log",
        "Images": "nginx:1,busybox",
        "Selector": "app in (web)",
    }
    ds = {
        "metadata": meta("agent"),
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "spec": {
                    "nodeSelector": {"os": "linux"},
                    "containers": [{"name": "a", "image": "i"}],
                }
            },
        },
        "status": {
            "desiredNumberScheduled": 3,
            "currentNumberScheduled": 3,
            "numberReady": 2,
            "updatedNumberScheduled": 3,
            "numberAvailable": 2,
        },
    }
    info = Info("apps", "DaemonSet")
    assert headers(info, wide=False) == [
        "Name",
        "Desired",
        "Current",
        "Ready",
        "Up-to-date",
        "Available",
        "Node Selector",
        "Age",
    ]
    row = one_row(info, ds)
    assert [
        row[h] for h in ("Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector")
    ] == [3, 3, 2, 3, 2, "os=linux"]


def test_job_rows():
    info = Info("batch", "Job")
    assert headers(info, wide=False) == ["Name", "Status", "Completions", "Duration", "Age"]
    job = {
        "metadata": meta("pi"),
        "spec": {
            "completions": 1,
            "selector": {"matchLabels": {"job-name": "pi"}},
            "template": TEMPLATE,
        },
        "status": {
            "succeeded": 1,
            "startTime": ago(minutes=4),
            "completionTime": ago(minutes=3, seconds=35),
            "conditions": [{"type": "Complete", "status": "True"}],
        },
    }
    row = one_row(info, job)
    assert (row["Status"], row["Completions"], row["Duration"], row["Age"]) == (
        "Complete",
        "1/1",
        "25s",
        "5m",
    )
    running = {
        "metadata": meta("p2"),
        "spec": {"parallelism": 3},
        "status": {"startTime": ago(seconds=40)},
    }
    row = one_row(info, running)
    assert (row["Status"], row["Completions"], row["Duration"]) == ("Running", "0/1 of 3", "40s")
    failed = {
        "metadata": meta("p3"),
        "spec": {},
        "status": {"conditions": [{"type": "Failed", "status": "True"}]},
    }
    row = one_row(info, failed)
    assert (row["Status"], row["Completions"], row["Duration"]) == ("Failed", "0/1", "")


def test_unknown_kind_prints_name_and_age():
    info = Info("example.com", "Widget")
    assert headers(info) == ["Name", "Age"]
    assert one_row(info, {"metadata": {"name": "w"}}) == {"Name": "w", "Age": "<unknown>"}


def test_include_object_variants():
    pod = running_pod()
    assert "object" not in table(POD, [pod], now=NOW, include_object="None")["rows"][0]
    assert table(POD, [pod], now=NOW, include_object="Object")["rows"][0]["object"] is pod


def test_thousands_of_rows_are_fast():
    pods = []
    for i in range(3000):
        pod = running_pod()
        pod["metadata"] = meta(f"web-{i}")
        pods.append(pod)
    started = time.perf_counter()
    result = table(POD, pods, now=NOW)
    elapsed = time.perf_counter() - started
    assert len(result["rows"]) == 3000
    assert elapsed < 1.5, f"tabling 3000 pods took {elapsed:.2f}s"
