"""The node agent's HTTPS API for the apiserver: logs, exec, attach, port-forward, stats."""

from node_agent.server.app import AgentServerConfig, serve_agent_api

__all__ = ["AgentServerConfig", "serve_agent_api"]
