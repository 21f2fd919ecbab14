"""`ketch runtime daemon` (start the daemon, in the background unless told) and `version`."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from ketch.cli.runtime.args import Parser
from ketch.cli.runtime.connection import Connection, DaemonUnavailable
from ketch.cli.runtime.errors import fail

CLIENT_VERSION = "0.1.0"


def cmd_daemon(conn: Connection, argv: list[str], *, root: str | None) -> int:
    p = Parser(
        "daemon",
        "Start the runtime daemon (ketch-runtime) in the background if it is not running. "
                    "Other flags are passed to ketch-runtime (see ketch-runtime --help).")
    p.add_argument("--foreground", action="store_true", help="run in this process, logging to stderr")
    p.add_argument("--run-root", default="", help="ketch-runtime --run-root")
    p.add_argument("--log", default="", help="log file (default <run-root>/runtime.log)")
    args, extra = p.parse_known_args(argv)
    run_root = args.run_root or os.path.dirname(conn.grpc_socket)
    daemon_argv = ["--run-root", run_root, "--socket", conn.grpc_socket]
    if root:
        daemon_argv += ["--root", root]
    daemon_argv += extra
    if args.foreground:
        from node_agent.runtime.daemon import main as daemon_main

        return daemon_main(daemon_argv)
    if conn.available():
        print(f"the runtime daemon is already running at unix://{conn.grpc_socket}")
        return 0
    os.makedirs(run_root, exist_ok=True)
    log_path = args.log or os.path.join(run_root, "runtime.log")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "node_agent.runtime.daemon", *daemon_argv],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail(f"the runtime daemon exited with code {proc.returncode}; see {log_path}")
            return 1
        if conn.available():
            print(f"runtime daemon started (pid {proc.pid}), socket unix://{conn.grpc_socket}, log {log_path}")
            return 0
        time.sleep(0.05)
    fail(f"the runtime daemon did not answer within 30 s; see {log_path}")
    return 1


def cmd_version(conn: Connection, argv: list[str]) -> int:
    print("Client: ketch runtime")
    print(f" Version:     {CLIENT_VERSION}")
    print(" API version: v1")
    print(f" Python:      {sys.version.split()[0]}")
    try:
        v = conn.runtime("Version")
    except DaemonUnavailable as exc:
        print()
        fail(exc.message)
        return 1
    print()
    print("Server: ketch-runtime")
    print(f" Version:     {v.get('version', '')}")
    print(f" API version: {v.get('runtime_api_version', '')}")
    print(f" Cgroups:     {v.get('cgroup_mode', '')}")
    print(f" Root:        {v.get('root', '')}")
    print(f" Pid:         {v.get('pid', '')}")
    return 0
