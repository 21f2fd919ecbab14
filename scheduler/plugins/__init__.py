"""Filter and score plugins, one concern per module, and the default profile."""

from __future__ import annotations

from scheduler.framework import Profile
from scheduler.plugins.balanced_allocation import BalancedAllocation
from scheduler.plugins.image_locality import ImageLocality
from scheduler.plugins.least_allocated import LeastAllocated
from scheduler.plugins.node_affinity import NodeAffinity
from scheduler.plugins.node_name import NodeName
from scheduler.plugins.node_ports import NodePorts
from scheduler.plugins.node_resources_fit import NodeResourcesFit
from scheduler.plugins.node_unschedulable import NodeUnschedulable
from scheduler.plugins.selector_spread import SelectorSpread
from scheduler.plugins.taint_toleration import TaintToleration


def default_profile() -> Profile:
    """The plugins and weights of Kubernetes' default profile that Ketch implements."""
    affinity, taints = NodeAffinity(), TaintToleration()
    return Profile(
        filters=[NodeUnschedulable(), NodeName(), affinity, taints, NodeResourcesFit(), NodePorts()],
        scores=[LeastAllocated(), BalancedAllocation(), SelectorSpread(), affinity, taints, ImageLocality()],
    )
