"""Process entry points for the streaming tests: the real apiserver and node agent, with the
streaming pieces wired in even before their mains call them.

`python -m tests.integration.streaming.launchers apiserver ARGS` runs `apiserver.main`
with `apiserver.node_proxy.install` applied to the app (unless create_app already did);
`... agent ARGS` runs `node_agent.main` with `--port` honoured and
`serve_agent_api` running beside the pod manager (unless main already runs it).
These are the exact calls the integrator wires into the mains; the launchers keep
the tests independent of when that happens.
"""

from __future__ import annotations

import argparse
import asyncio
import sys


def run_apiserver(argv: list[str]) -> int:
    import apiserver.app as app_module
    from apiserver import main as apiserver_main
    from apiserver import node_proxy
    from apiserver.handlers import subresources

    original = app_module.create_app

    def create_app(config, authenticator, authorizer=None):  # noqa: ANN001, ANN202
        app = original(config, authenticator, authorizer)
        if subresources.NODE_AGENT_PROXY is None:
            node_proxy.install(app, None, config)
        return app

    app_module.create_app = create_app
    return apiserver_main.main(argv)


def run_agent(argv: list[str]) -> int:
    import inspect

    from node_agent import main as agent_main
    from node_agent.server import AgentServerConfig, serve_agent_api

    wired = "serve_agent_api" in inspect.getsource(agent_main)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--port", type=int, default=10250)
    known, rest = pre.parse_known_args(argv)
    if wired:
        return agent_main.main(argv)
    port = known.port
    original_config, original_manager = agent_main.NodeConfig, agent_main.PodManager

    def node_config(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        kwargs.setdefault("agent_port", port)
        return original_config(*args, **kwargs)

    class PodManagerWithApi(original_manager):  # type: ignore[misc, valid-type]
        async def run(self) -> None:
            args = agent_main.parse_args(rest)
            args.port = port
            config = AgentServerConfig.from_args(args, internal_ip=self.ctx.host_ip)
            await asyncio.gather(super().run(), serve_agent_api(self, self.ctx.runtime, config))

    agent_main.NodeConfig = node_config
    agent_main.PodManager = PodManagerWithApi
    return agent_main.main(rest)


if __name__ == "__main__":
    which, args = sys.argv[1], sys.argv[2:]
    sys.exit(run_apiserver(args) if which == "apiserver" else run_agent(args))
