"""coordination.k8s.io/v1 kinds: Lease (node heartbeats, leader election)."""

from __future__ import annotations

from ketch.api.meta_v1 import micro_time, top_level
from ketch.api.schema import Field, Integer, Object, String

LEASE = top_level(
    "io.k8s.api.coordination.v1.Lease",
    "A lease: node heartbeats and leader election.",
    spec=Object(
        {
            "holderIdentity": Field(String()),
            "leaseDurationSeconds": Field(Integer(minimum=1)),
            "acquireTime": Field(micro_time()),
            "renewTime": Field(micro_time()),
            "leaseTransitions": Field(Integer(minimum=0)),
            "strategy": Field(String()),
            "preferredHolder": Field(String()),
        },
        description="Who holds the lease, and until when.",
        name="io.k8s.api.coordination.v1.LeaseSpec",
    ),
)

KINDS: dict[str, Object] = {"Lease": LEASE}
