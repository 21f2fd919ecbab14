"""`ketch version`: the client's version and the server's /version."""

from __future__ import annotations

import json

from ketch.cli.flags import Parser

CLIENT_VERSION = "v0.1.0"


def run(_name: str, argv: list[str], ctx) -> int:
    p = Parser(prog="ketch version", description="Print client and server versions.")
    p.add_argument("--client", action="store_true", help="the client version only")
    p.add_argument("-o", "--output", choices=["json", "yaml"])
    args = p.parse_args(argv)
    client_info = {"gitVersion": CLIENT_VERSION, "platform": "python"}
    result: dict = {"clientVersion": client_info}
    server_error = None
    if not args.client:
        try:
            result["serverVersion"] = ctx.client.get("/version")
        except Exception as e:  # still print the client version, like kubectl
            from ketch.cli.errors import describe_error

            server_error = describe_error(e) or str(e)
    if args.output == "json":
        ctx.out.write(json.dumps(result, indent=2) + "\n")
    elif args.output == "yaml":
        from ketch.cli.output import dump_yaml

        ctx.out.write(dump_yaml(result))
    else:
        ctx.print(f"Client Version: {CLIENT_VERSION}")
        if "serverVersion" in result:
            ctx.print(f"Server Version: {result['serverVersion'].get('gitVersion', 'unknown')}")
    if server_error:
        ctx.warn(server_error)
        return 1
    return 0
