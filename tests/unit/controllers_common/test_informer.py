import asyncio

from ketch.api.errors import ApiError, gone
from ketch.api.resources import lookup
from ketch.informer import Informer, object_key

PODS = lookup("", "v1", "pods")


def pod(name, rv, node=""):
    return {"metadata": {"name": name, "namespace": "default", "resourceVersion": str(rv)},
            "spec": {"nodeName": node}}


class ScriptedClient:
    """Answers list_all and watch from scripts, one entry per call."""

    def __init__(self, lists, watches):
        self.lists = list(lists)
        self.watches = list(watches)
        self.watch_rvs = []

    async def list_all(self, info, namespace=None, **kw):
        items, rv = self.lists.pop(0)
        return {"items": items, "metadata": {"resourceVersion": str(rv)}}

    async def watch(self, info, namespace=None, *, resource_version=None, **kw):
        self.watch_rvs.append(resource_version)
        if not self.watches:
            await asyncio.Event().wait()
        script = self.watches.pop(0)
        for event in script:
            if isinstance(event, ApiError):
                raise event
            yield event


async def run_until(informer, predicate, timeout=2):
    task = asyncio.create_task(informer.run())
    try:
        async def wait():
            while not predicate():
                await asyncio.sleep(0.005)
        await asyncio.wait_for(wait(), timeout)
    finally:
        task.cancel()


async def test_list_then_watch_fires_handlers_and_tracks_rv():
    client = ScriptedClient(
        lists=[([pod("a", 5)], 10)],
        watches=[[{"type": "ADDED", "object": pod("b", 11)},
                  {"type": "MODIFIED", "object": pod("a", 12, "n1")},
                  {"type": "DELETED", "object": pod("b", 13)},
                  {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "20"}}}]],
    )
    inf = Informer(client, PODS, retry_delay=0.01)
    seen = []
    inf.add_handler(on_add=lambda o: seen.append(("add", object_key(o))),
                    on_update=lambda old, new: seen.append(("update", new["spec"]["nodeName"])),
                    on_delete=lambda o: seen.append(("delete", object_key(o))))
    await run_until(inf, lambda: inf.resource_version == "20")
    assert seen == [("add", "default/a"), ("add", "default/b"), ("update", "n1"), ("delete", "default/b")]
    assert client.watch_rvs[0] == "10"
    assert [o["metadata"]["name"] for o in inf.store.list()] == ["a"]


async def test_gone_relists_and_reports_what_vanished():
    client = ScriptedClient(
        lists=[([pod("a", 5), pod("b", 6)], 10), ([pod("b", 6), pod("c", 30)], 31)],
        watches=[[gone("too old resource version")]],
    )
    inf = Informer(client, PODS, retry_delay=0.01)
    deleted, added = [], []
    inf.add_handler(on_add=lambda o: added.append(o["metadata"]["name"]),
                    on_delete=lambda o: deleted.append(o["metadata"]["name"]))
    await run_until(inf, lambda: inf.relists == 2)
    assert deleted == ["a"], "an object deleted during the gap must be reported deleted"
    assert added == ["a", "b", "c"]
    assert inf.resource_version == "31"


async def test_index_follows_updates():
    client = ScriptedClient(
        lists=[([pod("a", 1, "n1"), pod("b", 2, "n1")], 2)],
        watches=[[{"type": "MODIFIED", "object": pod("a", 3, "n2")}]],
    )
    inf = Informer(client, PODS, retry_delay=0.01)
    inf.add_index("node", lambda o: [o["spec"]["nodeName"]] if o["spec"].get("nodeName") else [])
    await run_until(inf, lambda: inf.resource_version == "3")
    assert [o["metadata"]["name"] for o in inf.store.by_index("node", "n1")] == ["b"]
    assert [o["metadata"]["name"] for o in inf.store.by_index("node", "n2")] == ["a"]
