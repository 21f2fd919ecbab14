"""Killing the process that holds a ContainerManager leaves every container and
shim running; a new manager re-adopts them and reports their true state."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

DAEMON = r"""
import asyncio, json, sys
from node_agent.runtime.containers import ContainerManager, ContainerSpec

async def main(cfg):
    m = ContainerManager(cfg["state"], cfg["run"], cgroup_parent=cfg["parent"])
    for cid, args in cfg["containers"].items():
        await m.create(ContainerSpec(id=cid, rootfs=cfg["rootfs"], args=args))
        if cid != "ketchcreated":
            await m.start(cid)
    print(json.dumps({c.id: c.pid for c in m.list()}), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(json.loads(sys.argv[1])))
"""


async def test_daemon_death_leaves_containers_and_recover_readopts(manager, rootfs):
    cfg = {
        "state": str(manager.state_root), "run": str(manager.run_root), "parent": manager.cgroup_parent,
        "rootfs": str(rootfs),
        "containers": {
            "ketchlong": ["sh", "-c", "trap 'exit 0' TERM; echo up; while :; do sleep 0.1; done"],   # "up": trap set
            "ketchshort": ["sh", "-c", "sleep 1; exit 7"],
            "ketchcreated": ["sh", "-c", "echo started late"],
        },
    }
    daemon = subprocess.Popen([sys.executable, "-c", DAEMON, json.dumps(cfg)], stdout=subprocess.PIPE)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(daemon.stdout.readline), 30)
        pids = json.loads(line)
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()

    assert os.path.exists(f"/proc/{pids['ketchlong']}")      # the container outlived its daemon
    deadline = time.monotonic() + 15                          # the short one exits while no daemon runs
    while os.path.exists(f"/proc/{pids['ketchshort']}") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)                                  # its shim records the exit

    await manager.recover()
    statuses = {s.id: s for s in manager.list()}
    assert statuses["ketchlong"].state == "running"
    assert statuses["ketchlong"].pid == pids["ketchlong"]
    short = statuses["ketchshort"] if statuses["ketchshort"].state == "exited" else \
        await asyncio.wait_for(manager.wait("ketchshort"), 10)     # its shim was still writing the exit
    assert short.state == "exited" and short.exit_code == 7 and short.reason == "Error"
    assert statuses["ketchcreated"].state == "created"

    # still fully managed: exec, logs, stop, wait
    code, out, _ = await manager.exec_sync("ketchlong", ["echo", "adopted"], 10)
    assert (code, out) == (0, b"adopted\n")
    assert [chunk async for _, chunk in manager.logs("ketchlong")][0] == b"up\n"
    await manager.stop("ketchlong", timeout=5)
    status = await asyncio.wait_for(manager.wait("ketchlong"), 10)
    assert status.exit_code == 0 and status.reason == "Completed"
    assert not os.path.exists(f"/proc/{pids['ketchlong']}")

    # a container created by the old daemon starts under the new one
    await manager.start("ketchcreated")
    status = await asyncio.wait_for(manager.wait("ketchcreated"), 10)
    assert status.exit_code == 0
    assert [chunk async for _, chunk in manager.logs("ketchcreated")] == [b"started late\n"]


async def test_a_killed_shim_takes_its_container_and_is_reported(manager, rootfs):
    from node_agent.runtime.containers import ContainerSpec

    await manager.create(ContainerSpec(id="ketchorphan", rootfs=str(rootfs), args=["sleep", "300"]))
    await manager.start("ketchorphan")
    pid = manager.status("ketchorphan").pid
    state = json.loads((manager.state_root / "containers/ketchorphan/state.json").read_text())
    os.kill(state["shim_pid"], signal.SIGKILL)
    status = await asyncio.wait_for(manager.wait("ketchorphan"), 10)
    assert status.state == "exited" and status.reason == "Error"
    assert "shim" in status.message
    for _ in range(100):                      # the init dies with its shim (parent-death signal)
        if not os.path.exists(f"/proc/{pid}"):
            break
        await asyncio.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")
