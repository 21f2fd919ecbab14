"""Code that runs in a freshly forked child of the shim and ends in execve:
the container's init (PID 1 of the new PID namespace) and exec'd processes.

Both report failure on a close-on-exec status pipe as one JSON line
({"error": ..., "exit_code": ...}); a successful execve closes the pipe.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import stat
import struct
import termios

from ..linux import caps
from ..linux import syscalls as sc
from . import rootfs
from .trace import mark

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NS_ORDER = ("ipc", "uts", "net", "cgroup", "mnt")   # mnt last: it changes what paths mean
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431


class ExecError(Exception):
    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def report(status_fd: int, message: dict) -> None:
    try:
        os.write(status_fd, (json.dumps(message) + "\n").encode())
    except OSError:
        pass


def reset_process_state() -> None:
    """Undo what the Python parent set: signal handlers, ignored SIGPIPE/SIGXFSZ, wakeup fd."""
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:
        pass
    for sig in (signal.SIGCHLD, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM,
                signal.SIGHUP, signal.SIGQUIT, signal.SIGWINCH, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def setup_stdio(stdin: int, stdout: int, stderr: int, tty: bool) -> None:
    os.setsid()
    if tty:
        fcntl.ioctl(stdout, termios.TIOCSCTTY, 0)
    for target, fd in ((0, stdin), (1, stdout), (2, stderr)):
        if fd != target:
            os.dup2(fd, target)
            os.set_inheritable(target, True)


def open_container_pty(pty_sock: int, uid: int, gid: int, winsize: tuple[int, int] | None) -> int:
    """Open a terminal on the container's own /dev/pts (so `tty` names it), hand the
    master to the shim over `pty_sock`, and return the slave."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
    slave = os.open(f"/dev/pts/{number}", os.O_RDWR | os.O_NOCTTY)
    os.fchown(slave, uid, gid)
    if winsize and winsize[0] and winsize[1]:
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", winsize[1], winsize[0], 0, 0))
    sock = socket.socket(fileno=pty_sock)
    try:
        socket.send_fds(sock, [b"pty"], [master])
    finally:
        sock.detach()
        os.close(pty_sock)
    os.close(master)
    return slave


def close_fds_except(keep: set[int]) -> None:
    start = 3
    for fd in sorted(keep | {1 << 20}):
        if fd >= start:
            os.closerange(start, fd)
            start = fd + 1


def join_cgroup(procs_files: list[str], pid: int = 0) -> None:
    """Move `pid` (0: the caller) into the cgroup, in every hierarchy."""
    value = str(pid).encode()
    for path in procs_files:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value)
        finally:
            os.close(fd)


def lookup_executable(name: str, env: dict[str, str]) -> str:
    """Like execvp's search, with runc's error messages."""
    if not name:
        raise ExecError("exec: no command given", 127)
    if "/" in name:
        candidates = [name]
    else:
        candidates = [os.path.join(d or ".", name) for d in env.get("PATH", DEFAULT_PATH).split(":")]
    denied = False
    for path in candidates:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            denied = True
            continue
        if os.access(path, os.X_OK):
            return path
        denied = True
    if denied:
        raise ExecError(f'exec: "{name}": permission denied', 126)
    if "/" in name:
        raise ExecError(f'exec: "{name}": stat {name}: no such file or directory', 127)
    raise ExecError(f'exec: "{name}": executable file not found in $PATH', 127)


def env_dict(env: list[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in env:
        key, sep, value = item.partition("=")
        if key:
            result[key] = value if sep else ""
    result.setdefault("PATH", DEFAULT_PATH)
    return result


def home_of(uid: int) -> str:
    """The user's home from the container's /etc/passwd ("/" when it has none)."""
    try:
        with open("/etc/passwd", errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) > 5 and fields[2] == str(uid) and fields[5]:
                    return fields[5]
    except OSError:
        pass
    return "/"


def become_user_and_exec(proc: dict) -> None:
    """chdir, drop privileges and execve. proc: args, env, cwd, uid, gid, additional_gids,
    capabilities (names), no_new_privs. Like Docker, HOME and HOSTNAME are set when missing."""
    env = env_dict(proc.get("env") or [])
    if "HOSTNAME" not in env:
        env["HOSTNAME"] = os.uname().nodename
    if "HOME" not in env:
        env["HOME"] = home_of(int(proc.get("uid") or 0))
    cwd = proc.get("cwd") or "/"
    try:
        os.chdir(cwd)
    except OSError as e:
        raise ExecError(f'chdir to cwd ("{cwd}") set in config failed: {e.strerror.lower()}', 126) from None
    keep = frozenset(proc["capabilities"])
    uid, gid = int(proc.get("uid") or 0), int(proc.get("gid") or 0)
    caps.drop_bounding_except(keep)
    sc.set_keepcaps(True)
    os.setgroups([int(g) for g in proc.get("additional_gids") or []])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    caps.apply(keep)
    sc.set_keepcaps(False)
    if proc.get("no_new_privs", True):
        sc.set_no_new_privs()
    path = lookup_executable(proc["args"][0] if proc.get("args") else "", env)
    sc.set_pdeathsig(signal.SIGKILL)
    os.umask(0o022)
    mark('init.execve')
    try:
        os.execve(path, proc["args"], env)
    except PermissionError:
        raise ExecError(f'exec: "{proc["args"][0]}": permission denied', 126) from None
    except OSError as e:
        raise ExecError(f'exec: "{proc["args"][0]}": {e.strerror.lower()}', 126 if e.errno == 8 else 127) from None


def _fail(status_fd: int, error: BaseException) -> None:
    code = error.exit_code if isinstance(error, ExecError) else 1
    report(status_fd, {"error": str(error), "exit_code": code})
    os._exit(code)


def waiting_init(config_fd: int, stdio: tuple[int, int, int], pty_sock: int, status_fd: int, start_fd: int,
                 prejoin: list[str] | None = None) -> None:
    """Forked before its container is known: read the config (until EOF), keep the
    descriptors the container needs, then set it up. EOF without a config: exit.
    `prejoin`: the cgroup.procs files of a spare cgroup to join while waiting (the
    shim renames that cgroup to the container's, so the slow join is off the path)."""
    reset_process_state()
    sc.set_process_name("ketch-init")
    if prejoin:
        try:
            join_cgroup(prejoin)
        except OSError:
            pass          # the shim checks membership before it relies on it
    chunks = []
    while True:
        try:
            chunk = os.read(config_fd, 65536)
        except InterruptedError:
            continue
        if not chunk:
            break
        chunks.append(chunk)
    os.close(config_fd)
    if not chunks:
        os._exit(0)
    try:
        cfg = json.loads(b"".join(chunks))
    except ValueError as e:
        _fail(status_fd, e)
    spec = cfg["spec"]
    in_r, out_w, err_w = stdio
    if spec.get("tty"):
        for fd in stdio:
            os.close(fd)
        container_init(cfg, None, status_fd, start_fd, pty_sock)
    else:
        os.close(pty_sock)
        if not spec.get("stdin"):
            os.close(in_r)
            in_r = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        container_init(cfg, (in_r, out_w, err_w), status_fd, start_fd, -1)


def container_init(cfg: dict, stdio: tuple[int, int, int] | None, status_fd: int, start_fd: int,
                   pty_sock: int = -1) -> None:
    """PID 1 of the container. Sets everything up, says ready, waits for start, execs.
    With a terminal (pty_sock given) stdio is a pty opened inside the container."""
    spec = cfg["spec"]
    mark('init.begin')
    try:
        reset_process_state()
        if stdio is not None:
            setup_stdio(*stdio, tty=False)
        # opened now, written last: the cgroup files are out of reach after pivot_root
        cgroup_fds = ([] if cfg.get("cgroup_prejoined") else
                      [os.open(path, os.O_WRONLY | os.O_CLOEXEC) for path in cfg["cgroup_procs"]])
        close_fds_except({status_fd, start_fd, pty_sock, *cgroup_fds})
        mark('init.stdio')
        flags = sc.CLONE_NEWNS
        shared = cfg.get("namespaces") or {}
        for kind, flag in (("ipc", sc.CLONE_NEWIPC), ("uts", sc.CLONE_NEWUTS), ("net", sc.CLONE_NEWNET)):
            if shared.get(kind):
                sc.setns_path(shared[kind])
            else:
                flags |= flag
        sc.unshare(flags)
        mark('init.unshare')
        if not shared.get("uts"):
            sc.sethostname(spec.get("hostname") or spec["id"][:12])
        mark('init.ns')
        rootfs.setup_rootfs(spec)
        mark('init.rootfs')
        # Joining waits for an RCU grace period; the shim sets up its loop meanwhile.
        for fd in cgroup_fds:
            os.write(fd, b"0")
            os.close(fd)
        mark('init.joined')
        if pty_sock >= 0:
            proc = cfg["process"]
            slave = open_container_pty(pty_sock, int(proc.get("uid") or 0), int(proc.get("gid") or 0), None)
            setup_stdio(slave, slave, slave, tty=True)
            if slave > 2:
                os.close(slave)
        mark('init.rootfs')
    except BaseException as e:  # noqa: BLE001 - everything must reach the shim
        _fail(status_fd, e)
    report(status_fd, {"ready": True})
    try:
        go = os.read(start_fd, 1)
    except OSError:
        go = b""
    if not go:
        os._exit(1)      # the shim went away before start: never run the process
    os.close(start_fd)
    mark('init.go')
    try:
        # the shim has moved us into the container's cgroup by now: make it our cgroup root
        sc.unshare(sc.CLONE_NEWCGROUP)
        become_user_and_exec(cfg["process"])
    except BaseException as e:  # noqa: BLE001
        _fail(status_fd, e)


def exec_child(cfg: dict, init_pid: int, proc: dict, stdio: tuple[int, int, int], status_fd: int,
               pty_sock: int = -1, winsize: tuple[int, int] | None = None) -> None:
    """A process exec'd into the running container: joins its cgroup and every namespace.
    With pty_sock its terminal is opened inside the container (stdin of `stdio` then
    only says whether stdin is attached)."""
    try:
        reset_process_state()
        ns_fds = []
        for kind in NS_ORDER:
            path = f"/proc/{init_pid}/ns/{kind}"
            ns_fds.append(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
        if pty_sock < 0:
            setup_stdio(*stdio, tty=False)
        close_fds_except({status_fd, pty_sock, *ns_fds})
        join_cgroup(cfg["cgroup_procs"])
        for fd in ns_fds:
            sc.setns(fd, 0)
            os.close(fd)
        if pty_sock >= 0:
            slave = open_container_pty(pty_sock, int(proc.get("uid") or 0), int(proc.get("gid") or 0), winsize)
            setup_stdio(slave, slave, slave, tty=True)
            if slave > 2:
                os.close(slave)
        become_user_and_exec(proc)
    except BaseException as e:  # noqa: BLE001
        _fail(status_fd, e)
