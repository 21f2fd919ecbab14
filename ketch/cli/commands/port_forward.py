"""`ketch port-forward POD [LOCAL:]REMOTE...`: forward local ports (127.0.0.1 only) to a pod."""

from __future__ import annotations

from ketch.cli.errors import CommandError
from ketch.cli.flags import Parser


def run(_name: str, argv: list[str], ctx) -> int:  # noqa: ANN001
    p = Parser(prog="ketch port-forward", description="Forward one or more local ports to a pod.")
    p.add_argument("pod", metavar="POD")
    p.add_argument("ports", nargs="+", metavar="[LOCAL:]REMOTE")
    p.add_argument("--address", default="127.0.0.1", help="only 127.0.0.1 is supported")
    args = p.parse_intermixed_args(argv)
    if args.address not in ("127.0.0.1", "localhost"):
        raise CommandError("ketch port-forward listens on 127.0.0.1 only")
    from ketch.cli.commands.logs import pod_name
    from ketch.streaming import portforward as pf
    from ketch.streaming.client import open_websocket
    from ketch.streaming.portforward_client import PortForwarder, parse_mapping

    try:
        mappings = [parse_mapping(m) for m in args.ports]
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    name = pod_name(args.pod)
    path = f"/api/v1/namespaces/{ctx.namespace}/pods/{name}"
    pod = ctx.client.get(path)
    phase = (pod.get("status") or {}).get("phase")
    if phase != "Running":
        raise CommandError(f"unable to forward port because pod is not running. Current status={phase}")
    ws = open_websocket(ctx.client, path + "/portforward", [("ports", str(r)) for _, r in mappings],
                        [pf.WEBSOCKET_PROTOCOL])
    forwarder = PortForwarder(ws, mappings, out=ctx.out, err=ctx.err)
    try:
        forwarder.run()
    except KeyboardInterrupt:
        return 0
    finally:
        ws.close()
    ctx.err.write("error: lost connection to pod\n")
    return 1
