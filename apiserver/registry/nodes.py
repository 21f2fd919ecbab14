"""Nodes: created with their status (a node agent registers with capacity and conditions).

Unlike pods or deployments, kube-apiserver keeps a new Node's status; after that, status
changes go through nodes/{name}/status like every kind with a status subresource.
"""

from __future__ import annotations

from apiserver.registry.generic import ResourceStore
from apiserver.registry.strategy import Strategy


class NodeStrategy(Strategy):
    def prepare_create(self, obj: dict) -> None:
        """Keep the status the node registers with."""


class NodeStore(ResourceStore):
    strategy_class = NodeStrategy
