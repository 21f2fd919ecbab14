"""The proxy loop: a burst of events costs one swap; an unchanged table is not re-applied."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from node_agent.network.service_proxy import ServiceProxy

from ketch.informer import Store


class Source:
    """An informer's surface the proxy uses: a store and handlers."""

    def __init__(self) -> None:
        self.store = Store()
        self.handlers = []

    def add_handler(self, on_add=None, on_update=None, on_delete=None) -> None:  # noqa: ANN001
        self.handlers.append(on_update)

    def put(self, key: str, obj: dict) -> None:
        self.store.put(key, obj)
        for h in self.handlers:
            h(obj, obj)


def recorder(tmp_path: Path) -> list[str]:
    """An `nft` stand-in that appends each script it is given to a file (counts the swaps)."""
    script = tmp_path / "nft.py"
    script.write_text("import sys\nopen(sys.argv[1], 'a').write(sys.stdin.read() + '\\n#END\\n')\n")
    return [sys.executable, str(script), str(tmp_path / "applied.txt")]


async def test_a_burst_of_events_is_one_swap(tmp_path: Path) -> None:
    services, endpoints = Source(), Source()
    cmd = recorder(tmp_path)
    proxy = ServiceProxy(services, endpoints, nft_command=[*cmd, "--"], debounce=0.2, check_interval=3600)
    # nft gets `-f -` appended: the recorder ignores them
    task = asyncio.create_task(proxy.loop())
    try:
        for i in range(100):
            services.put(f"default/s{i}", {"metadata": {"namespace": "default", "name": f"s{i}"},
                                           "spec": {"clusterIP": f"10.96.0.{i + 1}", "ports": [{"port": 80}]}})
            await asyncio.sleep(0)
        for _ in range(100):
            if proxy.swaps:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert proxy.swaps == 1
        applied = (tmp_path / "applied.txt").read_text()
        assert applied.count("#END") == 1 and "10.96.0.100 . tcp . 80" in applied
        # an event that changes nothing in the rendering: no swap
        services.put("default/s0", services.store.get("default/s0"))
        await asyncio.sleep(0.5)
        assert proxy.swaps == 1
    finally:
        task.cancel()
