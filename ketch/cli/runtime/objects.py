"""`ketch runtime volume …` and `ketch runtime network …`."""

from __future__ import annotations

import json

from ketch.cli.runtime import formatting as fmt
from ketch.cli.runtime.args import Parser
from ketch.cli.runtime.connection import Connection, DaemonError
from ketch.cli.runtime.errors import UsageError, fail


def _labels(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def inspect_volume(conn: Connection, name: str) -> dict:
    v = conn.call("VolumeService", "InspectVolume", {"name": name})
    return {"CreatedAt": fmt.rfc3339(v.get("created_at", 0)), "Driver": v.get("driver", "local"),
            "Labels": v.get("labels", {}), "Mountpoint": v.get("mountpoint", ""), "Name": v.get("name", ""),
            "Options": {}, "Scope": "local", "UsedBy": v.get("used_by", [])}


def inspect_network(conn: Connection, name: str) -> dict:
    n = conn.call("NetworkService", "InspectNetwork", {"name": name})
    return {
        "Name": n.get("name", ""), "Id": n.get("id", ""), "Created": fmt.rfc3339(n.get("created_at", 0)),
        "Scope": "local", "Driver": n.get("driver", "bridge"),
        "IPAM": {"Driver": "default", "Config": [{"Subnet": n.get("subnet", ""), "Gateway": n.get("gateway", "")}]
                 if n.get("subnet") else []},
        "Options": {"ketch.bridge.name": n.get("bridge", "")} if n.get("bridge") else {},
        "Labels": n.get("labels", {}),
        "Containers": {e.get("container_id", ""): {"Name": e.get("name", ""), "IPv4Address": e.get("ip", ""),
                                                   "MacAddress": e.get("mac_address", "")}
                       for e in n.get("endpoints", [])},
    }


def cmd_volume(conn: Connection, argv: list[str]) -> int:
    p = Parser("volume", "Manage volumes")
    sub = p.add_subparsers(dest="action", required=True)
    c = sub.add_parser("create", help="create a volume")
    c.add_argument("name", nargs="?", default="")
    c.add_argument("--label", action="append", default=[])
    ls = sub.add_parser("ls", aliases=["list"], help="list volumes")
    ls.add_argument("-q", "--quiet", action="store_true")
    i = sub.add_parser("inspect", help="display detailed information")
    i.add_argument("names", nargs="+")
    rm = sub.add_parser("rm", aliases=["remove"], help="remove volumes (refused while in use)")
    rm.add_argument("-f", "--force", action="store_true")
    rm.add_argument("names", nargs="+")
    args = p.parse_args(argv)
    if args.action == "create":
        print(conn.call("VolumeService", "CreateVolume", {"name": args.name, "labels": _labels(args.label)})["name"])
        return 0
    if args.action in ("ls", "list"):
        vols = conn.call("VolumeService", "ListVolumes").get("volumes", [])
        if args.quiet:
            for v in vols:
                print(v["name"])
        else:
            fmt.table(["DRIVER", "VOLUME NAME"], [[v.get("driver", "local"), v["name"]] for v in vols])
        return 0
    if args.action == "inspect":
        print(json.dumps([inspect_volume(conn, n) for n in args.names], indent=4))
        return 0
    code = 0
    for name in args.names:
        try:
            conn.call("VolumeService", "RemoveVolume", {"name": name, "force": args.force})
            print(name)
        except DaemonError as exc:
            fail(f"Error response from daemon: {exc.message}")
            code = 1
    return code


def cmd_network(conn: Connection, argv: list[str]) -> int:
    p = Parser("network", "Manage networks")
    sub = p.add_subparsers(dest="action", required=True)
    c = sub.add_parser("create", help="create a bridge network")
    c.add_argument("name")
    c.add_argument("--subnet", default="", help="CIDR (default: the next free one of the daemon's pool)")
    c.add_argument("--gateway", default="")
    c.add_argument("-d", "--driver", default="bridge")
    c.add_argument("--label", action="append", default=[])
    ls = sub.add_parser("ls", aliases=["list"], help="list networks")
    ls.add_argument("-q", "--quiet", action="store_true")
    i = sub.add_parser("inspect", help="display detailed information")
    i.add_argument("names", nargs="+")
    rm = sub.add_parser("rm", aliases=["remove"], help="remove networks")
    rm.add_argument("names", nargs="+")
    cn = sub.add_parser("connect", help="connect a container to a network")
    cn.add_argument("network")
    cn.add_argument("container")
    args = p.parse_args(argv)
    if args.action == "create":
        if args.driver != "bridge":
            raise UsageError(f"only the bridge driver is supported, not {args.driver!r}")
        n = conn.call("NetworkService", "CreateNetwork", {"name": args.name, "subnet": args.subnet,
                                                          "gateway": args.gateway, "labels": _labels(args.label)})
        print(n["id"])
        return 0
    if args.action in ("ls", "list"):
        nets = conn.call("NetworkService", "ListNetworks").get("networks", [])
        if args.quiet:
            for n in nets:
                print(n["id"][:12])
        else:
            fmt.table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
                      [[n["id"][:12], n["name"], n.get("driver", "bridge"), "local"] for n in nets])
        return 0
    if args.action == "inspect":
        print(json.dumps([inspect_network(conn, n) for n in args.names], indent=4))
        return 0
    if args.action == "connect":
        conn.call("NetworkService", "ConnectNetwork", {"network": args.network, "container_id": args.container})
        return 0
    code = 0
    for name in args.names:
        try:
            conn.call("NetworkService", "RemoveNetwork", {"name": name})
            print(name)
        except DaemonError as exc:
            fail(f"Error response from daemon: {exc.message}")
            code = 1
    return code


COMMANDS = {"volume": cmd_volume, "network": cmd_network}
