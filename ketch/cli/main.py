"""`ketch`: a kubectl-like command line for Ketch (and any Kubernetes API server).

Start-up time matters (`ketch get pods` must not be slower than `kubectl get
pods`), so this module imports nothing heavy: the global flags are taken out
of argv by hand and each subcommand's module is imported only when it runs.
"""

from __future__ import annotations

import sys

#: subcommand -> module under ketch.cli.commands (each has `run(argv, ctx) -> int`)
COMMANDS: dict[str, str] = {
    "get": "get",
    "apply": "apply",
    "create": "create",
    "delete": "delete",
    "describe": "describe",
    "edit": "edit",
    "label": "label",
    "annotate": "annotate",
    "scale": "scale",
    "logs": "logs",
    "exec": "exec",
    "port-forward": "port_forward",
    "top": "top",
    "api-resources": "api_resources",
    "version": "version",
    "config": "config",
    "up": "lab",
    "down": "lab",
    "monitoring-config": "monitoring",
}

USAGE = """ketch controls a Ketch cluster (it speaks the Kubernetes API, like kubectl).

Basic commands:
  get            Display one or many resources
  describe       Show details of a resource and its events
  apply          Apply a configuration to a resource by file name or stdin
  create         Create a resource from a file or from stdin
  delete         Delete resources by file names, stdin, resources and names, or by label selector
  edit           Edit a resource on the server with $KUBE_EDITOR / $EDITOR
  label          Update the labels on a resource
  annotate       Update the annotations on a resource
  scale          Set a new size for a deployment or replica set

Troubleshooting commands:
  logs           Print the logs for a container in a pod (-f to follow)
  exec           Execute a command in a container (-it for a shell)
  port-forward   Forward local ports (127.0.0.1) to a pod
  top            Display CPU and memory usage of pods or nodes

Cluster and configuration:
  up             Start a lab cluster on this machine (control plane + N nodes) and point your kubeconfig at it
  down           Stop what `ketch up` started (state is kept)
  api-resources  Print the supported API resources on the server
  version        Print the client and server version information
  config         Modify and view kubeconfig files
  monitoring-config  Write a Prometheus config (and alerts) for a lab (docs/monitoring.md)
  runtime        Run containers on this machine with the built-in runtime (docker-like)

Global flags (accepted anywhere on the line):
  --kubeconfig FILE, --context NAME, --cluster NAME, --user NAME, -n/--namespace NS,
  -s/--server URL, --token TOKEN, --certificate-authority FILE,
  --insecure-skip-tls-verify, --request-timeout SECONDS

Usage: ketch <command> [flags]   (`ketch <command> --help` for a command's flags)
"""

# flag -> (attribute, takes a value)
_GLOBAL_FLAGS: dict[str, tuple[str, bool]] = {
    "--kubeconfig": ("kubeconfig", True),
    "--context": ("context", True),
    "--cluster": ("cluster", True),
    "--user": ("user", True),
    "-n": ("namespace", True),
    "--namespace": ("namespace", True),
    "-s": ("server", True),
    "--server": ("server", True),
    "--token": ("token", True),
    "--certificate-authority": ("ca_file", True),
    "--insecure-skip-tls-verify": ("insecure", False),
    "--request-timeout": ("request_timeout", True),
    "-v": ("verbosity", True),
    "--v": ("verbosity", True),
}


class UsageError(Exception):
    """A command line that cannot work; printed as `error: ...` with exit code 1."""


def split_global_flags(argv: list[str]) -> tuple[dict[str, object], list[str]]:
    """Take kubectl's global flags out of argv, wherever they are (before a bare `--`)."""
    found: dict[str, object] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        name, eq, value = arg.partition("=")
        if name in _GLOBAL_FLAGS:
            attr, takes_value = _GLOBAL_FLAGS[name]
            if not takes_value:
                found[attr] = value.lower() not in ("false", "0") if eq else True
            elif eq:
                found[attr] = value
            elif i + 1 < len(argv):
                found[attr] = argv[i + 1]
                i += 1
            else:
                raise UsageError(f"flag needs an argument: {name}")
        elif arg.startswith("-n") and len(arg) > 2 and not arg.startswith("--"):
            found["namespace"] = arg[2:]  # -nkube-system
        else:
            rest.append(arg)
        i += 1
    return found, rest


def _run_command(name: str, argv: list[str], flags: dict[str, object]) -> int:
    import importlib

    from ketch.cli.context import CliContext

    module = importlib.import_module(f"ketch.cli.commands.{COMMANDS[name]}")
    ctx = CliContext(flags)
    try:
        return module.run(name, argv, ctx)
    finally:
        ctx.close()


def _run_runtime(argv: list[str]) -> int:
    """`ketch runtime ...`: the docker-like commands of ketch.cli.runtime (owned with the runtime)."""
    import importlib

    module = importlib.import_module("ketch.cli.runtime")
    entry = getattr(module, "main", None)
    if not callable(entry):  # a package whose entry point lives in its `main` submodule
        entry = importlib.import_module("ketch.cli.runtime.main").main
    return int(entry(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "runtime":
        return _run_runtime(args[1:])
    try:
        flags, args = split_global_flags(args)
        if not args or args[0] in ("-h", "--help", "help"):
            sys.stdout.write(USAGE)
            return 0
        name = args[0]
        if name not in COMMANDS:
            raise UsageError(f'unknown command "{name}" for "ketch"\nRun `ketch --help` for usage.')
        return _run_command(name, args[1:], flags)
    except UsageError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # the errors a person can act on are printed kubectl's way
        from ketch.cli.errors import describe_error

        text = describe_error(e)
        if text is None:
            raise
        sys.stderr.write(text + "\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
