"""`ketch runtime …`: docker's face on the Ketch runtime daemon.

`ketch.cli.main` hands `ketch runtime ARGS` to `main(ARGS)`. Start-up time is
part of the product (`ketch runtime run --rm busybox true` aims at a quarter
of `docker run`), so this module imports only what the one command needs.
"""

from __future__ import annotations

import sys

USAGE = """Usage: ketch runtime [--socket PATH] [--root DIR] COMMAND

Run containers on this machine with the built-in runtime (docker-like).

Containers:
  run        Create and run a new container from an image
  create     Create a new container
  start      Start one or more created containers
  stop       Stop running containers
  kill       Kill running containers
  rm         Remove containers
  ps         List containers
  logs       Fetch the logs of a container
  exec       Run a command in a running container
  inspect    Low-level information on containers, images, volumes, networks
  stats      Display containers' resource usage
  wait       Block until containers stop, print their exit codes

Images:
  images     List images
  import     Import a root filesystem tarball as an image
  load       Load images from a docker-save or OCI archive
  save       Save images to an archive
  tag        Tag an image
  rmi        Remove images
  pull       Pull an image (registries come in a later release)
  build-busybox  Build the offline busybox image from Debian's busybox-static

Volumes and networks:
  volume     create | ls | inspect | rm
  network    create | ls | inspect | rm | connect

Daemon:
  daemon     Start the runtime daemon (in the background) if it is not running
  version    Client and daemon versions

Global flags: --socket PATH (or -H unix://PATH, or $KETCH_RUNTIME_SOCKET;
default /run/ketch/runtime/runtime.sock), --root DIR (state root for
build-busybox without a daemon and for `daemon`; default /var/lib/ketch/runtime).
"""

RUN_LIKE = {"run", "create", "start"}


def _global_flags(argv: list[str]) -> tuple[str | None, str | None, list[str]]:
    socket_path = root = None
    rest = list(argv)
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        name, eq, value = flag.partition("=")
        if name in ("--socket", "-H", "--host", "--root"):
            if not eq:
                if not rest:
                    raise SystemExit(f"ketch runtime: flag needs an argument: {name}")
                value = rest.pop(0)
            if name == "--root":
                root = value
            else:
                socket_path = value.removeprefix("unix://")
        elif name in ("-h", "--help"):
            return socket_path, root, ["--help"]
        else:
            raise SystemExit(f"ketch runtime: unknown flag: {name}\nSee 'ketch runtime --help'.")
    return socket_path, root, rest


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    socket_path, root, rest = _global_flags(argv)
    if not rest or rest[0] in ("--help", "help"):
        sys.stdout.write(USAGE)
        return 0
    command, args = rest[0], rest[1:]

    from ketch.cli.runtime.connection import Connection, DaemonError, DaemonUnavailable
    from ketch.cli.runtime.errors import EXIT_DAEMON, UsageError, fail

    conn = Connection(socket_path)
    run_like = command in RUN_LIKE
    try:
        if command == "build-busybox":
            from ketch.cli.runtime.images import cmd_build_busybox

            return cmd_build_busybox(conn, args, root=root)
        if command == "daemon":
            from ketch.cli.runtime.daemon import cmd_daemon

            return cmd_daemon(conn, args, root=root)
        if command == "version":
            from ketch.cli.runtime.daemon import cmd_version

            return cmd_version(conn, args)
        handler = _lookup(command)
        if handler is None:
            fail(f"ketch runtime: '{command}' is not a ketch runtime command.\nSee 'ketch runtime --help'")
            return 1
        return handler(conn, args)
    except UsageError as exc:
        fail(f"ketch runtime {command}: {exc}\nSee 'ketch runtime {command} --help'.")
        return EXIT_DAEMON if run_like else 1
    except DaemonUnavailable as exc:
        fail(exc.message)
        return EXIT_DAEMON if run_like else 1
    except DaemonError as exc:
        prefix = "ketch: " if run_like else ""
        fail(f"{prefix}Error response from daemon: {exc.message}")
        return EXIT_DAEMON if run_like else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _lookup(command: str):
    if command in ("run", "create", "start", "stop", "kill", "rm", "ps", "logs", "exec", "inspect",
                   "stats", "wait"):
        from ketch.cli.runtime.containers import COMMANDS
    elif command in ("images", "import", "load", "save", "tag", "rmi", "pull"):
        from ketch.cli.runtime.images import COMMANDS
    elif command in ("volume", "network"):
        from ketch.cli.runtime.objects import COMMANDS
    else:
        return None
    return COMMANDS[command]
