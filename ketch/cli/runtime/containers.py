"""Container commands: run, create, start, stop, kill, rm, ps, logs, exec, inspect, stats, wait."""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time

from ketch.cli.runtime import formatting as fmt
from ketch.cli.runtime.args import Parser
from ketch.cli.runtime.connection import Connection, DaemonError
from ketch.cli.runtime.errors import EXIT_DAEMON, UsageError, fail

STATE_NAMES = {"CONTAINER_CREATED": "created", "CONTAINER_RUNNING": "running",
               "CONTAINER_EXITED": "exited", "CONTAINER_UNKNOWN": "unknown"}


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = Parser(prog, description, add_help=False)
    p.add_argument("--help", action="help", help="show this help and exit")
    return p


# ------------------------------------------------------------------ run/create


def _container_options(p: argparse.ArgumentParser) -> None:
    a = p.add_argument
    a("--name", default="", help="assign a name to the container")
    a("-e", "--env", action="append", default=[], help="set environment variables (KEY=VALUE or KEY)")
    a("--env-file", action="append", default=[], help="read environment variables from a file")
    a("-p", "--publish", action="append", default=[], help="publish a port: [hostip:][hostport:]port[/proto]")
    a("-v", "--volume", action="append", default=[], help="bind mount or volume: src:dst[:ro]")
    a("--tmpfs", action="append", default=[], help="mount a tmpfs: /path[:options]")
    a("-w", "--workdir", default="", help="working directory inside the container")
    a("-u", "--user", default="", help="user[:group] to run as")
    a("-h", "--hostname", default="", help="container host name")
    a("--network", "--net", default="", help="network: bridge (default), a user network, none or host")
    a("--memory", "-m", default="", help="memory limit (e.g. 64m, 1g)")
    a("--cpus", default="", help="number of CPUs (e.g. 0.5)")
    a("--cpu-shares", "-c", type=int, default=0, help="CPU shares (relative weight)")
    a("--pids-limit", type=int, default=0, help="process limit (0: unlimited)")
    a("--read-only", action="store_true", help="mount the root filesystem read-only")
    a("--entrypoint", default=None, help="overwrite the image's entrypoint ('' clears it)")
    a("--cap-add", action="append", default=[], help="add a Linux capability")
    a("--cap-drop", action="append", default=[], help="drop a Linux capability")
    a("--privileged", action="store_true", help="give extended privileges")
    a("-l", "--label", action="append", default=[], help="set metadata (key=value)")
    a("--stop-signal", default="", help="signal to stop the container")
    a("--add-host", action="append", default=[], help="add a host-to-IP mapping (host:ip)")
    a("-i", "--interactive", action="store_true", help="keep stdin open")
    a("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    a("--rm", action="store_true", help="remove the container (and its anonymous volumes) when it exits")
    a("image", help="image to run")
    a("command", nargs=argparse.REMAINDER, help="command and arguments")


def _env(args) -> list[dict]:
    items: list[str] = []
    for path in args.env_file:
        try:
            with open(path) as f:
                items += [line.strip() for line in f if line.strip() and not line.startswith("#")]
        except OSError as exc:
            raise UsageError(f"open {path}: {exc.strerror}") from None
    items += args.env
    out = []
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid environment variable: {item!r}")
        if not eq:
            if key not in os.environ:
                continue
            value = os.environ[key]
        out.append({"key": key, "value": value})
    return out


def _mounts(args) -> list[dict]:
    mounts = []
    for spec in args.volume:
        parts = spec.split(":")
        mode = ""
        if len(parts) == 3:
            src, dst, mode = parts
        elif len(parts) == 2:
            src, dst = parts
            if not dst.startswith("/") and dst in ("ro", "rw"):
                src, dst, mode = "", src, dst
        elif len(parts) == 1:
            src, dst = "", parts[0]
        else:
            raise UsageError(f"invalid volume specification: {spec!r} (src:dst[:ro])")
        if mode not in ("", "ro", "rw"):
            raise UsageError(f"invalid mode {mode!r} in volume {spec!r}: ro or rw")
        if not dst.startswith("/"):
            raise UsageError(f"invalid volume specification {spec!r}: the destination must be an absolute path")
        if src and ("/" in src or src.startswith(".")):
            mounts.append({"type": "bind", "source": os.path.abspath(src), "destination": dst,
                           "read_only": mode == "ro"})
        else:
            mounts.append({"type": "volume", "source": src, "destination": dst, "read_only": mode == "ro"})
    for spec in args.tmpfs:
        dst, _, opts = spec.partition(":")
        mounts.append({"type": "tmpfs", "destination": dst, "options": [o for o in opts.split(",") if o]})
    return mounts


def _ports(args) -> list[dict]:
    if not args.publish:
        return []
    from node_agent.network.portmap import PortSpecError, parse

    out = []
    for spec in args.publish:
        try:
            for m in parse(spec):
                out.append({"protocol": m.protocol, "container_port": m.container_port,
                            "host_port": m.host_port, "host_ip": m.host_ip})
        except PortSpecError as exc:
            raise UsageError(str(exc)) from None
    return out


def _resources(args) -> dict:
    res: dict = {}
    try:
        if args.memory:
            res["memory_bytes"] = fmt.parse_size(args.memory)
        if args.cpus:
            cpus = float(args.cpus)
            if cpus <= 0:
                raise ValueError
            res["cpu_period_us"] = 100_000
            res["cpu_quota_us"] = int(cpus * 100_000)
    except ValueError:
        raise UsageError(f"invalid --memory/--cpus value: {args.memory or args.cpus!r}") from None
    if args.cpu_shares:
        res["cpu_shares"] = args.cpu_shares
    if args.pids_limit > 0:
        res["pids_limit"] = args.pids_limit
    return res


def container_config(args, *, detach: bool) -> dict:
    labels = {}
    for item in args.label:
        k, _, v = item.partition("=")
        labels[k] = v
    extra_hosts = []
    for item in args.add_host:
        host, _, ip = item.partition(":")
        if not host or not ip:
            raise UsageError(f"invalid --add-host {item!r}: host:ip")
        extra_hosts.append(f"{ip}\t{host}")
    cfg = {
        "name": args.name, "image": args.image, "command": list(args.command), "env": _env(args),
        "working_dir": args.workdir, "user": args.user, "hostname": args.hostname,
        "tty": args.tty, "stdin": args.interactive, "stdin_once": args.interactive and not detach,
        "mounts": _mounts(args), "port_mappings": _ports(args), "resources": _resources(args),
        "read_only_rootfs": args.read_only, "cap_add": args.cap_add, "cap_drop": args.cap_drop,
        "privileged": args.privileged, "labels": labels, "network": args.network,
        "auto_remove": args.rm, "stop_signal": args.stop_signal, "extra_hosts": extra_hosts,
    }
    if args.entrypoint is not None:
        cfg["entrypoint"] = [args.entrypoint] if args.entrypoint else []
        cfg["clear_entrypoint"] = True
    return cfg


def _create(conn: Connection, args, *, detach: bool) -> str:
    try:
        reply = conn.runtime("CreateContainer", {"config": container_config(args, detach=detach)})
    except DaemonError as exc:
        if exc.code == "NOT_FOUND" and "image" in exc.message.lower():
            sys.stderr.write(f"Unable to find image '{args.image}' locally\n")
        raise
    return reply["container_id"]


def _start_failure(conn: Connection, container_id: str, exc: DaemonError) -> int:
    """docker run's exit codes when the process cannot start: 127 not found, 126 cannot run."""
    code = EXIT_DAEMON
    try:
        st = conn.runtime("ContainerStatus", {"container_id": container_id}).get("status", {})
        if st.get("state") == "CONTAINER_EXITED" and int(st.get("exit_code", 0)) in (126, 127):
            code = int(st["exit_code"])
    except DaemonError:  # gone already (--rm): judge by the message
        low = exc.message.lower()
        if "not found" in low or "no such file" in low:
            code = 127
        elif "permission denied" in low or "exec format" in low:
            code = 126
    fail(f"ketch: Error response from daemon: {exc.message}")
    return code


def cmd_run(conn: Connection, argv: list[str]) -> int:
    p = _parser("run", "Create and run a new container from an image")
    p.add_argument("-d", "--detach", action="store_true", help="run in the background and print its id")
    p.add_argument("--sig-proxy", default="true", help="proxy received signals to the process (default true)")
    _container_options(p)
    args = p.parse_args(argv)
    container_id = _create(conn, args, detach=args.detach)
    if args.detach:
        try:
            conn.runtime("StartContainer", {"container_id": container_id})
        except DaemonError as exc:
            return _start_failure(conn, container_id, exc)
        print(container_id)
        return 0
    return _attach_and_start(conn, container_id, stdin=args.interactive, tty=args.tty,
                             sig_proxy=args.sig_proxy.lower() != "false" and not args.tty)


def _attach_and_start(conn: Connection, container_id: str, *, stdin: bool, tty: bool,
                      sig_proxy: bool, start: bool = True) -> int:
    from ketch.cli.runtime import streams

    request: dict = {"start": {"container_id": container_id, "stdin": stdin, "tty": tty,
                               "start_container": start}}
    size = streams.terminal_size() if tty else None
    if size:
        request["start"]["size"] = size
    stream = conn.open("RuntimeService", "Attach", request)
    if sig_proxy:
        _proxy_signals(conn, container_id)
    try:
        code, reason = streams.pump(stream, stdin=stdin, tty=tty)
    except DaemonError as exc:
        return _start_failure(conn, container_id, exc)
    finally:
        stream.close()
    return code


def _proxy_signals(conn: Connection, container_id: str) -> None:
    import signal

    def forward(signum, _frame) -> None:
        try:
            conn.runtime("KillContainer", {"container_id": container_id, "signal": str(signum)})
        except DaemonError:
            pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, forward)


def cmd_create(conn: Connection, argv: list[str]) -> int:
    p = _parser("create", "Create a new container")
    _container_options(p)
    args = p.parse_args(argv)
    print(_create(conn, args, detach=True))
    return 0


def cmd_start(conn: Connection, argv: list[str]) -> int:
    p = _parser("start", "Start one or more created containers")
    p.add_argument("-a", "--attach", action="store_true", help="attach stdout/stderr and wait for the exit")
    p.add_argument("-i", "--interactive", action="store_true", help="attach stdin")
    p.add_argument("containers", nargs="+")
    args = p.parse_args(argv)
    if args.attach or args.interactive:
        if len(args.containers) > 1:
            raise UsageError("you cannot start and attach multiple containers at once")
        st = _status(conn, args.containers[0])
        return _attach_and_start(conn, st["id"], stdin=args.interactive and bool(st.get("stdin")),
                                 tty=bool(st.get("tty")), sig_proxy=not st.get("tty"),
                                 start=st.get("state") != "CONTAINER_RUNNING")
    return _each(conn, args.containers, lambda c: conn.runtime("StartContainer", {"container_id": c}))


def _each(conn: Connection, names: list[str], action) -> int:
    """Docker's multi-container commands: print each name done, report each failure, exit 1 if any."""
    code = 0
    for name in names:
        try:
            action(name)
            print(name)
        except DaemonError as exc:
            fail(f"Error response from daemon: {exc.message}")
            code = 1
    return code


def cmd_stop(conn: Connection, argv: list[str]) -> int:
    p = _parser("stop", "Stop running containers (the stop signal, then SIGKILL after the timeout)")
    p.add_argument("-t", "--time", "--timeout", type=int, default=10, help="seconds to wait before killing")
    p.add_argument("containers", nargs="+")
    args = p.parse_args(argv)
    return _each(conn, args.containers,
                 lambda c: conn.runtime("StopContainer", {"container_id": c, "timeout": args.time}))


def cmd_kill(conn: Connection, argv: list[str]) -> int:
    p = _parser("kill", "Kill running containers")
    p.add_argument("-s", "--signal", default="KILL", help="signal to send (default KILL)")
    p.add_argument("containers", nargs="+")
    args = p.parse_args(argv)
    return _each(conn, args.containers,
                 lambda c: conn.runtime("KillContainer", {"container_id": c, "signal": args.signal}))


def cmd_rm(conn: Connection, argv: list[str]) -> int:
    p = _parser("rm", "Remove containers")
    p.add_argument("-f", "--force", action="store_true", help="kill and remove a running container")
    p.add_argument("-v", "--volumes", action="store_true", help="remove its anonymous volumes too")
    p.add_argument("containers", nargs="+")
    args = p.parse_args(argv)
    return _each(conn, args.containers, lambda c: conn.runtime(
        "RemoveContainer", {"container_id": c, "force": args.force, "remove_volumes": args.volumes}))


def cmd_wait(conn: Connection, argv: list[str]) -> int:
    p = _parser("wait", "Block until containers stop, then print their exit codes")
    p.add_argument("containers", nargs="+")
    args = p.parse_args(argv)
    code = 0
    for c in args.containers:
        try:
            print(int(conn.runtime("WaitContainer", {"container_id": c}).get("exit_code", 0)))
        except DaemonError as exc:
            fail(f"Error response from daemon: {exc.message}")
            code = 1
    return code


# ------------------------------------------------------------------------ ps


def cmd_ps(conn: Connection, argv: list[str]) -> int:
    p = _parser("ps", "List containers")
    p.add_argument("-a", "--all", action="store_true", help="show all containers (default: running)")
    p.add_argument("-q", "--quiet", action="store_true", help="only display container ids")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    p.add_argument("-l", "--latest", action="store_true", help="show the latest created container")
    p.add_argument("-n", "--last", type=int, default=-1, help="show the n last created containers")
    p.add_argument("-f", "--filter", action="append", default=[], help="name=, label=, status=, id=")
    args = p.parse_args(argv)
    show_all = args.all or args.latest or args.last > 0
    containers = conn.runtime("ListContainers", {"filter": {"all": show_all}}).get("containers", [])
    for flt in args.filter:
        key, _, value = flt.partition("=")
        if key == "name":
            containers = [c for c in containers if value in c.get("name", "")]
        elif key == "id":
            containers = [c for c in containers if c["id"].startswith(value)]
        elif key == "status":
            containers = [c for c in containers if STATE_NAMES.get(c.get("state", "CONTAINER_CREATED")) == value]
        elif key == "label":
            k, _, v = value.partition("=")
            containers = [c for c in containers if k in c.get("labels", {}) and (not v or c["labels"][k] == v)]
        else:
            raise UsageError(f"invalid filter {flt!r}: name=, id=, status=, label=")
    if args.latest:
        containers = containers[:1]
    elif args.last > 0:
        containers = containers[: args.last]
    if args.quiet:
        for c in containers:
            print(c["id"] if args.no_trunc else c["id"][:12])
        return 0
    rows = []
    for c in containers:
        rows.append([
            c["id"] if args.no_trunc else c["id"][:12],
            c.get("image", ""),
            fmt.quote_command(c.get("args", []), 0 if args.no_trunc else 20),
            fmt.ago(c.get("created_at", 0)),
            c.get("status_text", ""),
            fmt.ports_text(c.get("ports", [])),
            c.get("name", ""),
        ])
    fmt.table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], rows)
    return 0


# ---------------------------------------------------------------------- logs


def cmd_logs(conn: Connection, argv: list[str]) -> int:
    p = _parser("logs", "Fetch the logs of a container")
    p.add_argument("-f", "--follow", action="store_true", help="follow log output")
    p.add_argument("-n", "--tail", default="all", help="number of lines to show from the end (default all)")
    p.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    p.add_argument("--since", default="", help="show logs since a unix timestamp or a duration (10s, 5m)")
    p.add_argument("container")
    args = p.parse_args(argv)
    tail = -1 if args.tail == "all" else int(args.tail)
    since = _since_ns(args.since) if args.since else 0
    out, err = sys.stdout.buffer, sys.stderr.buffer
    request = {"container_id": args.container, "tail": tail, "follow": args.follow,
               "since": since, "timestamps": args.timestamps}
    for entry in conn.stream("RuntimeService", "ReadLogs", request):
        data = base64.b64decode(entry.get("data", ""))
        if args.timestamps:
            data = fmt.rfc3339(entry.get("timestamp", 0)).encode() + b" " + data
        target = err if entry.get("stream") == "STDERR" else out
        target.write(data)
        if args.follow:
            target.flush()
    out.flush()
    err.flush()
    return 0


def _since_ns(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    if text[-1:] in units and text[:-1].replace(".", "", 1).isdigit():
        return int((time.time() - float(text[:-1]) * units[text[-1]]) * 1e9)
    try:
        return int(float(text) * 1e9)
    except ValueError:
        raise UsageError(f"invalid --since {text!r}: a unix timestamp or a duration like 10s, 5m, 2h") from None


# ---------------------------------------------------------------------- exec


def cmd_exec(conn: Connection, argv: list[str]) -> int:
    from ketch.cli.runtime import streams

    p = _parser("exec", "Run a command in a running container")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    p.add_argument("-e", "--env", action="append", default=[], help="set environment variables")
    p.add_argument("-w", "--workdir", default="", help="working directory inside the container")
    p.add_argument("-u", "--user", default="", help="username or UID (format: <name|uid>[:<group|gid>])")
    p.add_argument("container")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    if not args.command:
        raise UsageError('"ketch runtime exec" requires at least 2 arguments: a container and a command')
    env = []
    for item in args.env:
        k, eq, v = item.partition("=")
        if not eq:
            v = os.environ.get(k, "")
        env.append({"key": k, "value": v})
    start = {"container_id": args.container, "cmd": args.command, "tty": args.tty,
             "stdin": args.interactive, "env": env, "working_dir": args.workdir, "user": args.user}
    size = streams.terminal_size() if args.tty else None
    if size:
        start["size"] = size
    stream = conn.open("RuntimeService", "Exec", {"start": start})
    try:
        code, _ = streams.pump(stream, stdin=args.interactive, tty=args.tty)
    except DaemonError as exc:
        fail(f"Error response from daemon: {exc.message}")
        low = exc.message.lower()
        if "not found" in low or "no such file" in low:
            return 127
        if exc.code == "FAILED_PRECONDITION" and "not running" in low:
            return 1
        return 126
    finally:
        stream.close()
    return code


# ------------------------------------------------------------------- inspect


def _status(conn: Connection, name: str) -> dict:
    return conn.runtime("ContainerStatus", {"container_id": name}).get("status", {})


def docker_inspect(st: dict) -> dict:
    """The essentials of `docker inspect` for a container, from a ContainerStatus."""
    cfg = st.get("config", {})
    state = STATE_NAMES.get(st.get("state", "CONTAINER_CREATED"), "unknown")
    net = st.get("network", {})
    ports: dict = {}
    for p in st.get("ports", []):
        ports.setdefault(f"{p.get('container_port', 0)}/{p.get('protocol', 'tcp')}", []).append(
            {"HostIp": p.get("host_ip") or "0.0.0.0", "HostPort": str(p.get("host_port", 0))})
    args = st.get("args", [])
    res = cfg.get("resources", {})
    return {
        "Id": st.get("id", ""),
        "Created": fmt.rfc3339(st.get("created_at", 0)),
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": {
            "Status": state, "Running": state == "running", "Paused": False, "Restarting": False,
            "OOMKilled": st.get("reason") == "OOMKilled", "Dead": False, "Pid": int(st.get("pid", 0)),
            "ExitCode": int(st.get("exit_code", 0)), "Error": st.get("message", "") if state == "exited" else "",
            "StartedAt": fmt.rfc3339(st.get("started_at", 0)), "FinishedAt": fmt.rfc3339(st.get("finished_at", 0)),
        },
        "Image": st.get("image_ref", ""),
        "LogPath": st.get("log_path", ""),
        "Name": "/" + st.get("name", ""),
        "HostConfig": {
            "AutoRemove": bool(cfg.get("auto_remove")), "Privileged": bool(cfg.get("privileged")),
            "ReadonlyRootfs": bool(cfg.get("read_only_rootfs")), "CapAdd": cfg.get("cap_add", []),
            "CapDrop": cfg.get("cap_drop", []), "Memory": int(res.get("memory_bytes", 0)),
            "NanoCpus": int(int(res.get("cpu_quota_us", 0)) * 1e9 / int(res.get("cpu_period_us", 100000) or 100000)),
            "CpuShares": int(res.get("cpu_shares", 0)), "PidsLimit": int(res.get("pids_limit", 0)) or None,
            "NetworkMode": net.get("network", "") or cfg.get("network", "") or "bridge",
            "PortBindings": {k: v for k, v in ports.items()},
        },
        "Mounts": [{"Type": m.get("type", "bind"), "Source": m.get("source", ""),
                    "Destination": m.get("destination", ""), "RW": not m.get("read_only", False)}
                   for m in st.get("mounts", []) if m.get("destination") not in
                   ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")],
        "Config": {
            "Hostname": st.get("hostname", ""), "User": st.get("user", ""), "Tty": bool(st.get("tty")),
            "OpenStdin": bool(st.get("stdin")), "Env": st.get("env", []), "Cmd": cfg.get("command") or None,
            "Image": st.get("image", ""), "WorkingDir": st.get("working_dir", ""),
            "Entrypoint": cfg.get("entrypoint") or None, "Labels": st.get("labels", {}),
            "StopSignal": st.get("stop_signal", ""),
        },
        "NetworkSettings": {
            "IPAddress": net.get("ip", ""), "Gateway": net.get("gateway", ""),
            "IPPrefixLen": int(net.get("prefix_length", 0)), "MacAddress": net.get("mac_address", ""),
            "Ports": ports,
            "Networks": ({net.get("network", "bridge"): {"IPAddress": net.get("ip", ""), "Gateway": net.get("gateway", ""),
                                                         "MacAddress": net.get("mac_address", "")}}
                         if net.get("ip") else {}) | {k: {"IPAddress": v} for k, v in net.get("extra_ips", {}).items()},
        },
    }


def render_template(template: str, obj) -> str:
    """A small subset of Go templates for -f: {{.A.B}}, {{json .A}}, plain text around them."""
    import re

    def lookup(path: str):
        value = obj
        for part in [p for p in path.split(".") if p]:
            if isinstance(value, dict):
                value = value.get(part)
            else:
                return None
        return value

    def repl(m: re.Match) -> str:
        expr = m.group(1).strip()
        if expr.startswith("json "):
            return json.dumps(lookup(expr[5:].strip()))
        value = lookup(expr)
        if value is None:
            return "<no value>"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return str(value)

    return re.sub(r"\{\{(.*?)\}\}", repl, template)


def cmd_inspect(conn: Connection, argv: list[str]) -> int:
    p = _parser("inspect", "Low-level information on containers, images, volumes or networks (JSON)")
    p.add_argument("-f", "--format", default="", help="a Go-template subset: {{.State.Pid}}, {{json .Config}}")
    p.add_argument("--type", choices=("container", "image", "volume", "network"), default=None)
    p.add_argument("names", nargs="+")
    args = p.parse_args(argv)
    from ketch.cli.runtime import images, objects

    results, code = [], 0
    for name in args.names:
        found = None
        for kind, getter in (("container", lambda n: docker_inspect(_status(conn, n))),
                             ("image", lambda n: images.inspect_image(conn, n)),
                             ("volume", lambda n: objects.inspect_volume(conn, n)),
                             ("network", lambda n: objects.inspect_network(conn, n))):
            if args.type and args.type != kind:
                continue
            try:
                found = getter(name)
                break
            except DaemonError as exc:
                if exc.code not in ("NOT_FOUND", "INVALID_ARGUMENT"):
                    raise
        if found is None:
            fail(f"Error: No such object: {name}")
            code = 1
            continue
        results.append(found)
    if args.format:
        for r in results:
            print(render_template(args.format, r))
    else:
        print(json.dumps(results, indent=4))
    return code


# --------------------------------------------------------------------- stats


def cmd_stats(conn: Connection, argv: list[str]) -> int:
    p = _parser("stats", "Display containers' resource usage")
    p.add_argument("-a", "--all", action="store_true", help="all containers (default: running)")
    p.add_argument("--no-stream", action="store_true", help="print one sample and exit")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("containers", nargs="*")
    args = p.parse_args(argv)

    def sample() -> dict[str, dict]:
        if args.containers:
            out = {}
            for c in args.containers:
                s = conn.runtime("ContainerStats", {"container_id": c}).get("stats", {})
                out[s["container_id"]] = s
            return out
        reply = conn.runtime("ListContainerStats", {"filter": {"all": args.all}})
        return {s["container_id"]: s for s in reply.get("stats", [])}

    first = sample()
    while True:
        time.sleep(0.5 if args.no_stream else 1.0)
        second = sample()
        rows = []
        for cid, s in second.items():
            before = first.get(cid, s)
            dt = (int(s.get("timestamp", 0)) - int(before.get("timestamp", 0))) or 1
            cpu = (int(s.get("cpu_usage_ns", 0)) - int(before.get("cpu_usage_ns", 0))) / dt * 100
            usage = int(s.get("memory_working_set_bytes", 0) or s.get("memory_usage_bytes", 0))
            limit = int(s.get("memory_limit_bytes", 0)) or _host_memory()
            pids_limit = int(s.get("pids_limit", 0))
            rows.append([
                cid if args.no_trunc else cid[:12], s.get("name", ""), f"{max(cpu, 0):.2f}%",
                f"{fmt.human_size(usage, binary=True)} / {fmt.human_size(limit, binary=True)}",
                f"{usage / limit * 100 if limit else 0:.2f}%", "--", "--",
                f"{s.get('pids', 0)}" + (f" / {pids_limit}" if pids_limit else ""),
            ])
        if not args.no_stream:
            sys.stdout.write("\x1b[2J\x1b[H")
        fmt.table(["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
                   "BLOCK I/O", "PIDS"], rows)
        if args.no_stream:
            return 0
        sys.stdout.flush()
        first = second


def _host_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


COMMANDS = {
    "run": cmd_run, "create": cmd_create, "start": cmd_start, "stop": cmd_stop,
    "kill": cmd_kill, "rm": cmd_rm, "ps": cmd_ps, "logs": cmd_logs, "exec": cmd_exec,
    "inspect": cmd_inspect, "stats": cmd_stats, "wait": cmd_wait,
}
