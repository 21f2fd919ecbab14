"""autoscaling/v1 Scale: what the deployments/scale and replicasets/scale subresources speak."""

from __future__ import annotations

from ketch.api.meta_v1 import top_level
from ketch.api.schema import Field, Integer, Object, String

SCALE = top_level(
    "io.k8s.api.autoscaling.v1.Scale",
    "The replica count of a scalable resource.",
    spec=Object(
        {"replicas": Field(Integer("Desired replicas.", minimum=0))},
        description="The desired replica count.",
        name="io.k8s.api.autoscaling.v1.ScaleSpec",
    ),
    status=Object(
        {
            "replicas": Field(Integer(minimum=0), required=True),
            "selector": Field(String("Label selector of the pods, in string form.")),
        },
        description="The observed replica count and the pods' selector.",
        name="io.k8s.api.autoscaling.v1.ScaleStatus",
    ),
)

KINDS: dict[str, Object] = {"Scale": SCALE}
