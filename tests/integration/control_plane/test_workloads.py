"""Scheduling and workload controllers against a real apiserver (nodes are kubelet doubles)."""

from __future__ import annotations

import asyncio

from ketch.api.errors import ApiError
from ketch.api.resources import lookup
from tests.integration.control_plane.conftest import FINISH_LABEL

DEPLOYMENTS = lookup("apps", "v1", "deployments")
REPLICASETS = lookup("apps", "v1", "replicasets")
DAEMONSETS = lookup("apps", "v1", "daemonsets")
JOBS = lookup("batch", "v1", "jobs")
PODS = lookup("", "v1", "pods")
EVENTS = lookup("", "v1", "events")
SERVICES = lookup("", "v1", "services")
ENDPOINTS = lookup("", "v1", "endpoints")
NODES = lookup("", "v1", "nodes")


def deployment(name: str, replicas: int, image: str = "busybox:1", **spec) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c", "image": image,
                                                  "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}],
                                  **spec.pop("pod", {})}},
            **spec,
        },
    }


async def test_deployment_spreads_scales_and_rolls_within_budget(cluster):
    c, ns = cluster.client, cluster.namespace
    await c.create(DEPLOYMENTS, deployment("web", 4, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}), ns)

    async def available(n):
        d = await c.get(DEPLOYMENTS, "web", ns)
        st = d.get("status") or {}
        return st.get("availableReplicas") == n and st.get("updatedReplicas") == n and st.get("replicas") == n and d

    await cluster.wait_for(lambda: available(4))
    nodes = sorted(p["spec"]["nodeName"] for p in await cluster.pods("app=web"))
    assert nodes == ["cp-a", "cp-a", "cp-b", "cp-b"], "replicas of one owner spread over the nodes"

    # A rolling update never drops below replicas - maxUnavailable available pods.
    lowest = 4
    await c.patch(DEPLOYMENTS, "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "busybox:2", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}}, ns)

    async def rolled():
        nonlocal lowest
        pods = [p for p in await cluster.pods("app=web")
                if not p["metadata"].get("deletionTimestamp") and (p.get("status") or {}).get("phase") == "Running"]
        lowest = min(lowest, len(pods))
        images = {p["spec"]["containers"][0]["image"] for p in await cluster.pods("app=web")}
        return images == {"busybox:2"} and await available(4)

    await cluster.wait_for(rolled, timeout=90, interval=0.05)
    assert lowest >= 3, f"availability dropped to {lowest} during the rollout (maxUnavailable=1)"
    d = await c.get(DEPLOYMENTS, "web", ns)
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    rss = (await c.list(REPLICASETS, ns))["items"]
    assert sorted(rs["spec"]["replicas"] for rs in rss) == [0, 4]

    await c.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 2}}, ns)
    await cluster.wait_for(lambda: available(2))

    # Background deletion: the garbage collector removes the ReplicaSets and their pods.
    await c.delete(DEPLOYMENTS, "web", ns)

    async def gone():
        return not (await c.list(REPLICASETS, ns))["items"] and not await cluster.pods("app=web")

    await cluster.wait_for(gone)


async def test_deleted_pod_is_replaced(cluster):
    c, ns = cluster.client, cluster.namespace
    await c.create(DEPLOYMENTS, deployment("solo", 2), ns)
    pods = await cluster.wait_for(lambda: _running(cluster, "app=solo", 2))
    victim = pods[0]["metadata"]["name"]
    await c.delete(PODS, victim, ns)

    async def replaced():
        pods = await _running(cluster, "app=solo", 2)
        return pods and victim not in {p["metadata"]["name"] for p in pods}

    await cluster.wait_for(replaced)


async def test_pod_too_big_stays_pending_with_reason(cluster):
    c, ns = cluster.client, cluster.namespace
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "huge"},
           "spec": {"containers": [{"name": "c", "image": "busybox",
                                    "resources": {"requests": {"memory": "64Gi"}}}]}}
    await c.create(PODS, pod, ns)

    async def failed_event():
        events = (await c.list(EVENTS, ns, field_selector="involvedObject.name=huge"))["items"]
        return [e for e in events if e["reason"] == "FailedScheduling"]

    events = await cluster.wait_for(failed_event)
    assert events[0]["message"] == "0/2 nodes are available: 2 Insufficient memory."

    async def unschedulable_condition():
        live = await c.get(PODS, "huge", ns)
        conds = {x["type"]: x for x in (live.get("status") or {}).get("conditions") or []}
        return not live["spec"].get("nodeName") and conds.get("PodScheduled")

    cond = await cluster.wait_for(unschedulable_condition)
    assert cond["status"] == "False" and cond["reason"] == "Unschedulable"


async def test_daemonset_runs_one_pod_per_node(cluster):
    c, ns = cluster.client, cluster.namespace
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
          "spec": {"selector": {"matchLabels": {"app": "agent"}},
                   "template": {"metadata": {"labels": {"app": "agent"}},
                                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    await c.create(DAEMONSETS, ds, ns)
    pods = await cluster.wait_for(lambda: _running(cluster, "app=agent", 2))
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["cp-a", "cp-b"]

    async def status_ok():
        st = (await c.get(DAEMONSETS, "agent", ns)).get("status") or {}
        return st.get("desiredNumberScheduled") == 2 and st.get("numberReady") == 2

    await cluster.wait_for(status_ok)


async def test_job_completes(cluster):
    c, ns = cluster.client, cluster.namespace
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "batch"},
           "spec": {"completions": 3, "parallelism": 2, "template": {
               "metadata": {"labels": {FINISH_LABEL: "true"}},
               "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}
    await c.create(JOBS, job, ns)

    async def complete():
        st = (await c.get(JOBS, "batch", ns)).get("status") or {}
        return st.get("succeeded") == 3 and any(
            x["type"] == "Complete" and x["status"] == "True" for x in st.get("conditions") or [])

    await cluster.wait_for(complete)


async def test_endpoints_follow_ready_pods(cluster):
    c, ns = cluster.client, cluster.namespace
    await c.create(DEPLOYMENTS, deployment("api", 2), ns)
    await c.create(SERVICES, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"},
                              "spec": {"selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": 8080}]}}, ns)

    async def two_addresses():
        try:
            ep = await c.get(ENDPOINTS, "api", ns)
        except ApiError:
            return None
        subsets = ep.get("subsets") or []
        return subsets and len(subsets[0].get("addresses") or []) == 2 and subsets[0]["ports"][0]["port"] == 8080

    await cluster.wait_for(two_addresses)


async def test_node_that_stops_heartbeating_loses_its_pods(cluster):
    c, ns = cluster.client, cluster.namespace
    await c.create(DEPLOYMENTS, deployment("moving", 4), ns)
    await cluster.wait_for(lambda: _running(cluster, "app=moving", 4))
    cluster.kubelet.stopped.add("cp-b")

    async def tainted():
        node = await c.get(NODES, "cp-b")
        ready = {x["type"]: x for x in node["status"]["conditions"]}["Ready"]
        keys = {t["key"] for t in node["spec"].get("taints") or []}
        return ready["status"] == "Unknown" and "node.kubernetes.io/unreachable" in keys

    await cluster.wait_for(tainted, timeout=60)

    async def all_on_a():
        pods = await _running(cluster, "app=moving", 4) or []
        return len([p for p in pods if p["spec"]["nodeName"] == "cp-a"]) == 4

    # default-toleration-seconds is 2 in this fixture: the pods move quickly.
    await cluster.wait_for(all_on_a, timeout=90)


async def _running(cluster, selector: str, count: int) -> list[dict] | None:
    pods = [p for p in await cluster.pods(selector)
            if not p["metadata"].get("deletionTimestamp") and (p.get("status") or {}).get("phase") == "Running"]
    return pods if len(pods) == count else None


async def test_two_schedulers_one_leader(cluster, fresh_apiserver):
    from ketch.client.aio import AsyncClient, ClusterAccess
    from ketch.leader_election import LeaderElector

    client = AsyncClient(ClusterAccess.from_kubeconfig(str(fresh_apiserver.kubeconfig)))
    try:
        a = LeaderElector(client, "test-lease", identity="a", lease_duration=2, retry_period=0.2, renew_deadline=1)
        b = LeaderElector(client, "test-lease", identity="b", lease_duration=2, retry_period=0.2, renew_deadline=1)
        a_running = asyncio.Event()
        stop_a = asyncio.Event()

        async def lead_a():
            a_running.set()
            await stop_a.wait()

        b_led = asyncio.Event()

        async def lead_b():
            b_led.set()

        task_a = asyncio.create_task(a.run(lead_a))
        await asyncio.wait_for(a_running.wait(), 5)
        task_b = asyncio.create_task(b.run(lead_b))
        await asyncio.sleep(1.0)
        assert not b_led.is_set(), "b must not lead while a holds the lease"
        stop_a.set()  # a finishes and releases the lease
        await asyncio.wait_for(task_a, 5)
        await asyncio.wait_for(b_led.wait(), 5)
        await asyncio.wait_for(task_b, 5)
    finally:
        await client.close()


async def test_stuck_rollout_reports_progress_deadline_exceeded(cluster):
    c, ns = cluster.client, cluster.namespace
    stuck = deployment("stuck", 1, progressDeadlineSeconds=2, pod={"nodeSelector": {"disk": "none-has-this"}})
    await c.create(DEPLOYMENTS, stuck, ns)

    async def exceeded():
        d = await c.get(DEPLOYMENTS, "stuck", ns)
        conds = {x["type"]: x for x in (d.get("status") or {}).get("conditions") or []}
        return conds.get("Progressing", {}).get("reason") == "ProgressDeadlineExceeded" and conds["Progressing"]

    cond = await cluster.wait_for(exceeded, timeout=15)
    assert cond["status"] == "False" and "timed out progressing" in cond["message"]
