"""`ketch exec [-i] [-t] POD [-c C] -- CMD...`: run a command in a container (pods/exec, v5.channel.k8s.io)."""

from __future__ import annotations

import os
import sys

from ketch.cli.errors import CommandError
from ketch.cli.flags import Parser


def run(_name: str, argv: list[str], ctx) -> int:  # noqa: ANN001
    p = Parser(prog="ketch exec", usage="ketch exec [-i] [-t] POD [-c CONTAINER] -- COMMAND [ARGS...]",
               description="Execute a command in a container.")
    p.add_argument("pod", metavar="POD")
    p.add_argument("-c", "--container", default="")
    p.add_argument("-i", "--stdin", action="store_true", help="pass stdin to the container")
    p.add_argument("-t", "--tty", action="store_true", help="stdin is a TTY")
    p.add_argument("-q", "--quiet", action="store_true")
    cut = argv.index("--") if "--" in argv else len(argv)
    args = p.parse_intermixed_args(argv[:cut])  # --help ends here
    command = argv[cut + 1:]
    if not command:
        raise CommandError("you must specify at least one command for the container (after --)")
    from ketch.cli.commands.logs import pod_name
    from ketch.streaming import channels
    from ketch.streaming.client import open_websocket
    from ketch.streaming.exec_session import ExecSession

    tty = args.tty
    if tty and not (args.stdin and os.isatty(sys.stdin.fileno())):
        if not args.quiet:
            ctx.err.write("Unable to use a TTY - input is not a terminal or the right kind of file\n")
        tty = False
    query = [("command", c) for c in command]
    if args.container:
        query.append(("container", args.container))
    query += [("stdin", "true" if args.stdin else "false"), ("stdout", "true"),
              ("stderr", "false" if tty else "true"), ("tty", "true" if tty else "false")]
    name = pod_name(args.pod)
    ws = open_websocket(ctx.client, f"/api/v1/namespaces/{ctx.namespace}/pods/{name}/exec", query,
                        list(channels.PROTOCOLS))
    try:
        return ExecSession(ws, stdin=args.stdin, tty=tty).run()
    except channels.RemoteError as exc:
        ctx.err.write(f"error: {exc}\n")
        return 1
