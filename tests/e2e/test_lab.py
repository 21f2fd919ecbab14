"""`ketch up` / `ketch down` end to end: daemons, kubeconfig, real kubectl, state kept across restarts."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.fixtures.lab import make_lab, tear_down

REPO_ROOT = Path(__file__).resolve().parents[2]


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(entry))
        except OSError:
            pass
    return found


@pytest.fixture
def control_plane_lab(run_id, tmp_path):
    """A lab without nodes (`ketch up --nodes 0`): the control plane only, on its own bridge."""
    the_lab = make_lab(run_id, tmp_path, index=1, nodes=0)
    kubeconfig = the_lab.kubeconfig
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    # a kubeconfig the user already has: ketch up must keep it
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "other",
        "clusters": [{"name": "other", "cluster": {"server": "https://192.0.2.1:6443"}}],
        "users": [{"name": "other", "user": {"token": "x"}}],
        "contexts": [{"name": "other", "context": {"cluster": "other", "user": "other"}}],
    }))
    state = the_lab.state_dir

    def ketch(*args: str, ok: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
        proc = the_lab.ketch(*args, stdin=stdin)
        if ok:
            assert proc.returncode == 0, f"ketch {args}: {proc.stdout}{proc.stderr}"
        return proc

    def kubectl(*args: str) -> subprocess.CompletedProcess:
        return the_lab.kubectl(*args)

    try:
        yield ketch, the_lab.up, kubectl, state, kubeconfig, the_lab
    finally:
        tear_down(the_lab)


def test_up_get_down_up_keeps_state(control_plane_lab):
    ketch, up, kubectl, state, kubeconfig, the_lab = control_plane_lab
    first = up()
    assert f"Ketch lab '{the_lab.name}' is up" in first.stdout
    config = yaml.safe_load(kubeconfig.read_text())
    context = f"ketch-{the_lab.name}"
    assert config["current-context"] == context
    assert {c["name"] for c in config["contexts"]} == {"other", context}
    assert {u["name"] for u in config["users"]} == {"other", f"{context}-admin"}
    server = next(c["cluster"]["server"] for c in config["clusters"] if c["name"] == context)
    assert server == f"https://{the_lab.subnet.rsplit('.', 1)[0]}.1:{the_lab.ports[0]}"

    names = ketch("get", "ns", "-o", "name").stdout.split()
    assert {"namespace/default", "namespace/kube-system", "namespace/kube-public"} <= set(names)
    if shutil.which("kubectl"):
        real = kubectl("get", "ns")
        assert real.returncode == 0, real.stderr
        assert real.stdout.splitlines()[0].split()[:2] == ["NAME", "STATUS"]
        assert "kube-system" in real.stdout

    assert "already running and healthy" in up().stdout  # idempotent
    ketch("create", "-f", "-", stdin="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: survivor\n"
                                     "data:\n  k: v\n")
    pid = int((state / "run" / "apiserver.pid").read_text().split()[0])
    etcd_pids = processes_mentioning(str(state / "apiserver" / "etcd"))
    assert etcd_pids, "the apiserver's embedded etcd should run with its data in the state dir"

    down = ketch("down", *the_lab.lab_flags())
    assert "Stopped scheduler, controller-manager, apiserver." in down.stdout
    for gone in (pid, *etcd_pids):
        assert not os.path.exists(f"/proc/{gone}") or " Z " in open(f"/proc/{gone}/stat").read()
    assert processes_mentioning(str(state)) == []
    assert the_lab.leftovers() == []
    assert "not running" in ketch("down", *the_lab.lab_flags()).stdout

    up()
    kept = ketch("get", "cm", "survivor", "-o", "jsonpath={.data.k}")
    assert kept.stdout == "v"


def test_readme_flow_ketch_kubectl_and_python_client(control_plane_lab, tmp_path):
    """The README's first steps after `ketch up`: ketch apply, kubectl get/apply/delete, the Python client."""
    ketch, up, kubectl, _state, kubeconfig, _lab = control_plane_lab
    up()
    example = REPO_ROOT / "deploy" / "examples" / "web.yaml"
    assert len(ketch("apply", "-f", str(example)).stdout.splitlines()) == 3
    everything = ketch("get", "all").stdout
    assert "deployment.apps/web" in everything and "service/web" in everything
    if shutil.which("kubectl"):
        got = kubectl("get", "deploy,svc,cm", "-o", "name")
        assert got.returncode == 0, got.stderr
        assert {"deployment.apps/web", "service/web", "configmap/web-content"} <= set(got.stdout.split())
        docs = list(yaml.safe_load_all(example.read_text()))
        next(d for d in docs if d["kind"] == "Deployment")["spec"]["replicas"] = 4
        changed = tmp_path / "web.yaml"
        changed.write_text(yaml.safe_dump_all(docs))
        applied = kubectl("apply", "-f", str(changed))
        assert applied.returncode == 0, applied.stderr
        assert "deployment.apps/web configured" in applied.stdout
        assert ketch("get", "deploy", "web", "-o", "jsonpath={.spec.replicas}").stdout == "4"
        deleted = kubectl("delete", "-f", str(changed))
        assert deleted.returncode == 0, deleted.stderr
        assert ketch("get", "deploy,svc,cm", "-o", "name").stdout == ""

    from kubernetes import client, config, watch

    api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "py", "labels": {"t": "py"}},
           "spec": {"containers": [{"name": "c", "image": "busybox:latest"}]}}
    created = api.create_namespaced_pod("default", pod)
    assert created.metadata.uid
    assert [p.metadata.name for p in api.list_namespaced_pod("default", label_selector="t=py").items] == ["py"]
    stream = watch.Watch().stream(api.list_namespaced_pod, "default", label_selector="t=py",
                                  resource_version=created.metadata.resource_version, timeout_seconds=20)
    api.delete_namespaced_pod("py", "default", grace_period_seconds=0)
    seen = []
    for event in stream:
        seen.append(event["type"])
        if event["type"] == "DELETED":
            break
    assert seen[-1] == "DELETED"


def test_purge_forgets_the_kubeconfig_context(control_plane_lab):
    ketch, up, _kubectl, state, kubeconfig, the_lab = control_plane_lab
    up()
    purged = ketch("down", *the_lab.lab_flags(), "--purge")
    assert f'Removed context "ketch-{the_lab.name}"' in purged.stdout
    config = yaml.safe_load(kubeconfig.read_text())
    assert [c["name"] for c in config["contexts"]] == ["other"]
    assert [c["name"] for c in config["clusters"]] == ["other"]
    assert [u["name"] for u in config["users"]] == ["other"]
    assert not (state / "lab.json").exists() and not (state / "apiserver").exists()


def test_a_subnet_already_on_the_machine_is_refused(run_id, tmp_path):
    the_lab = make_lab(run_id, tmp_path, index=4, nodes=1)
    dummy = f"ketch{run_id}d"[:15]
    subprocess.run(["ip", "link", "add", dummy, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", the_lab.subnet.replace(".0/24", ".200/24"), "dev", dummy], check=True)
        p, c, e = the_lab.ports
        proc = the_lab.ketch("up", *the_lab.lab_flags(), "--subnet", the_lab.subnet, "--nodes", "1",
                             "--apiserver-port", str(p), "--etcd-client-port", str(c), "--etcd-peer-port", str(e))
        assert proc.returncode != 0
        assert f"the lab subnet {the_lab.subnet} is already used by {dummy}" in proc.stderr
        assert the_lab.leftovers() == [] and the_lab.pid_of("apiserver") is None
    finally:
        subprocess.run(["ip", "link", "delete", dummy], capture_output=True)
        tear_down(the_lab)


def test_down_finds_daemons_whose_pid_files_were_lost(control_plane_lab):
    ketch, up, _kubectl, state, _kubeconfig, the_lab = control_plane_lab
    up()
    apiserver = the_lab.pid_of("apiserver")
    for pid_file in (state / "run").glob("*.pid"):
        pid_file.unlink()
    down = ketch("down", *the_lab.lab_flags())
    assert "processes of the lab that had lost their pid files" in down.stdout, down.stdout
    assert not os.path.exists(f"/proc/{apiserver}") or " Z " in open(f"/proc/{apiserver}/stat").read()
    assert processes_mentioning(str(state / "apiserver")) == []
    assert the_lab.leftovers() == []
