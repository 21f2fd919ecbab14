"""`python -m bench network`: overlay throughput against the bare lab link, and proxy swap time.

1. TCP throughput (iperf3, one stream) between two lab "nodes" (network
   namespaces joined by a lab bridge): pod-to-pod across the VXLAN overlay,
   and node-to-node directly over the lab link, in the same run; prints both
   and the ratio (aim: >= 0.8).
2. The service proxy: render and `nft -f` swap of the whole table for N
   Services x M endpoints (default 1,000 x 10; aim: < 1 s), measured apart,
   then one Service changed at that size, which the proxy applies as a
   delta transaction (only that Service's chain and map elements).

Everything runs inside namespaces the bench creates (named ketch<id>...) and
deletes at the end, also on failure. Needs root, nft and iperf3.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from node_agent.network import service_rules
from node_agent.network.service_proxy import ServiceProxy

from tests.integration.network_cluster.lab import Lab, StaticSource, sh


def _iperf(lab: Lab, server_ns: str, client_ns: str, address: str, seconds: float) -> float:
    """Receiver-side bits per second of one TCP stream."""
    port = random.randint(20000, 29999)
    server = subprocess.Popen(["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lab.processes.append(server)
    for _ in range(50):  # wait for the listener
        if f":{port}" in sh("ip", "netns", "exec", server_ns, "ss", "-ltn", check=False).stdout:
            break
        time.sleep(0.05)
    out = sh("ip", "netns", "exec", client_ns, "iperf3", "-J", "-c", address, "-p", str(port),
             "-t", str(seconds), timeout=seconds + 30).stdout
    server.wait(timeout=10)
    return float(json.loads(out)["end"]["sum_received"]["bits_per_second"])


def throughput(seconds: float, rounds: int, pod_mtu: int | None = None) -> dict:
    work = Path(tempfile.mkdtemp(prefix="ketch-bench-net-"))
    lab = Lab(secrets.token_hex(2), work, nodes=2, pods_per_node=1, tag="b", pod_mtu=pod_mtu)
    try:
        lab.up()
        lab.overlay_all()
        lab.program_services([], {})
        n1, n2 = lab.nodes
        overlay_bps, direct_bps = [], []
        for _ in range(rounds):  # interleaved, so machine noise hits both alike
            overlay_bps.append(_iperf(lab, n2.pods[0].netns, n1.pods[0].netns, n2.pods[0].ip, seconds))
            direct_bps.append(_iperf(lab, n2.netns, n1.netns, n2.ip, seconds))
    finally:
        lab.down()
        shutil.rmtree(work, ignore_errors=True)
    o, d = statistics.median(overlay_bps), statistics.median(direct_bps)
    # paired rounds: the ratio of each round cancels most of the machine's load swings
    ratios = sorted(a / b for a, b in zip(overlay_bps, direct_bps, strict=True))
    return {"overlay_gbps": o / 1e9, "direct_gbps": d / 1e9, "ratio": statistics.median(ratios),
            "ratio_min": ratios[0], "ratio_max": ratios[-1], "rounds": rounds}


def _objects(services: int, endpoints: int) -> tuple[list[dict], dict[str, dict]]:
    svcs, eps = [], {}
    for i in range(services):
        svcs.append({"metadata": {"namespace": "bench", "name": f"svc{i}"},
                     "spec": {"clusterIP": f"10.96.{i // 250}.{i % 250 + 1}",
                              "type": "NodePort" if i % 4 == 0 else "ClusterIP",
                              "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                                         **({"nodePort": 30000 + i} if i % 4 == 0 else {})}]}})
        eps[f"bench/svc{i}"] = {"metadata": {"namespace": "bench", "name": f"svc{i}"}, "subsets": [{
            "addresses": [{"ip": f"10.244.{(i * endpoints + j) // 250 % 250}.{(i * endpoints + j) % 250 + 1}"}
                          for j in range(endpoints)],
            "ports": [{"name": "http", "port": 8080}]}]}
    return svcs, eps


def proxy_swap(services: int, endpoints: int, rounds: int) -> dict:
    """Whole-table swaps, then single-Service changes applied as deltas, through ServiceProxy itself."""
    ns = f"ketch{secrets.token_hex(3)}bp"
    settings = service_rules.ProxySettings(pod_bridge="ketch-pods", pod_cidr="10.244.0.0/16",
                                           cluster_cidr="10.244.0.0/16")
    svcs, eps = _objects(services, endpoints)
    svc_src, ep_src = StaticSource(), StaticSource()
    svc_src.set(svcs)
    ep_src.set(list(eps.values()))

    def fresh_proxy() -> ServiceProxy:  # as after an agent start: nothing parsed, nothing applied
        return ServiceProxy(svc_src, ep_src, settings, nft_command=["ip", "netns", "exec", ns, "nft"])

    def timed(proxy: ServiceProxy) -> tuple:
        """sync_once, with the CPU seconds of this process and of nft (wall time lies on a busy machine)."""
        cpu, kids = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
        timing = proxy.sync_once()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return timing, time.process_time() - cpu, (after.ru_utime + after.ru_stime) - (kids.ru_utime + kids.ru_stime)

    sh("ip", "netns", "add", ns)
    try:
        full = []
        for _ in range(rounds):  # the whole table from scratch, replacing the previous one
            proxy = fresh_proxy()
            full.append(timed(proxy))
        changed = []
        for r in range(rounds):  # one Service gains an endpoint
            changed_ep = copy.deepcopy(eps[f"bench/svc{r}"])  # informers hand over new objects
            changed_ep["subsets"][0]["addresses"].append({"ip": f"10.245.0.{r + 1}"})
            eps[f"bench/svc{r}"] = changed_ep
            ep_src.set(list(eps.values()))
            changed.append(timed(proxy))
        rules = sh("ip", "netns", "exec", ns, "nft", "-a", "list", "table", "ip",
                   service_rules.DEFAULT_TABLE).stdout.count("# handle")
    finally:
        sh("ip", "netns", "delete", ns, check=False)
    assert all(t.mode == "full" for t, _, _ in full) and all(t.mode == "delta" for t, _, _ in changed)

    def med(samples: list, attr: str) -> float:
        return statistics.median(getattr(t, attr) for t, _, _ in samples)

    def cpu(samples: list, which: int) -> float:
        return statistics.median(s[which] for s in samples)

    return {"services": services, "endpoints": endpoints, "rules": rules,
            "render_s": med(full, "render_seconds"), "swap_s": med(full, "apply_seconds"),
            "total_s": med(full, "render_seconds") + med(full, "apply_seconds"),
            "cpu_python_s": cpu(full, 1), "cpu_nft_s": cpu(full, 2),
            "one_change_render_s": med(changed, "render_seconds"),
            "one_change_swap_s": med(changed, "apply_seconds"),
            "one_change_total_s": med(changed, "render_seconds") + med(changed, "apply_seconds"),
            "one_change_cpu_python_s": cpu(changed, 1), "one_change_cpu_nft_s": cpu(changed, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench network", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=3.0, help="length of each iperf3 run")
    p.add_argument("--rounds", type=int, default=5, help="iperf3 runs per path; swaps per case (median)")
    p.add_argument("--pod-mtu", type=int, default=None,
                   help="MTU of the pods' eth0 (default: the runtime's 1500; the overlay's is 1450)")
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--endpoints", type=int, default=10)
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench network needs root (network namespaces, nftables)", file=sys.stderr)
        return 1
    missing = [tool for tool in ("nft", "ip") + (() if args.skip_throughput else ("iperf3",))
               if shutil.which(tool) is None]
    if missing:
        print(f"bench network needs {', '.join(missing)} (deploy/install-deps.sh installs them)", file=sys.stderr)
        return 2
    results: dict = {}
    if not args.skip_throughput:
        t = throughput(args.seconds, args.rounds, args.pod_mtu)
        print(f"throughput pod-to-pod over VXLAN : {t['overlay_gbps']:.2f} Gbit/s")
        print(f"throughput node-to-node direct   : {t['direct_gbps']:.2f} Gbit/s")
        print(f"ratio overlay/direct             : {t['ratio']:.2f}  (median of {t['rounds']} paired rounds, "
              f"{t['ratio_min']:.2f}..{t['ratio_max']:.2f}; aim >= 0.80)")
        results["throughput"] = t
    s = proxy_swap(args.services, args.endpoints, max(3, args.rounds))
    print(f"proxy {s['services']} Services x {s['endpoints']} endpoints ({s['rules']} rules in the table):")
    print(f"  full render {s['render_s'] * 1000:.0f} ms + nft swap {s['swap_s'] * 1000:.0f} ms "
          f"= {s['total_s'] * 1000:.0f} ms  (aim < 1000 ms); CPU: proxy {s['cpu_python_s'] * 1000:.0f} ms"
          f" + nft {s['cpu_nft_s'] * 1000:.0f} ms")
    print(f"  one Service changed (delta transaction): render+diff {s['one_change_render_s'] * 1000:.0f} ms"
          f" + nft {s['one_change_swap_s'] * 1000:.0f} ms = {s['one_change_total_s'] * 1000:.0f} ms; CPU: proxy "
          f"{s['one_change_cpu_python_s'] * 1000:.0f} ms + nft {s['one_change_cpu_nft_s'] * 1000:.0f} ms")
    results["proxy"] = s
    if args.json:
        print(json.dumps(results, separators=(",", ":")))
    return 0  # aims missed are reported above; a failure to measure raises


if __name__ == "__main__":
    raise SystemExit(main())
