"""apps/v1 kinds: Deployment, ReplicaSet, DaemonSet."""

from __future__ import annotations

from ketch.api.core_v1 import POD_TEMPLATE_SPEC
from ketch.api.meta_v1 import LABEL_SELECTOR, condition_fields, time, top_level
from ketch.api.schema import Array, Boolean, Field, Integer, IntOrString, Object, String

APPS = "io.k8s.api.apps.v1."


def _conditions(name: str, *, update_time: bool = False) -> Field:
    fields = condition_fields()
    if update_time:
        fields["lastUpdateTime"] = Field(time())
    return Field(Array(Object(fields, name=APPS + name), merge_key="type", patch_strategy="merge"))


def _count() -> Field:
    return Field(Integer(minimum=0))


DEPLOYMENT_STRATEGY = Object(
    {
        "type": Field(
            String(
                "RollingUpdate replaces pods gradually; Recreate kills all old pods first.",
                enum=("RollingUpdate", "Recreate"),
            ),
            default="RollingUpdate",
        ),
        "rollingUpdate": Field(
            Object(
                {
                    "maxUnavailable": Field(
                        IntOrString(
                            "Pods that may be unavailable during the update: a count or a percentage."
                        )
                    ),
                    "maxSurge": Field(
                        IntOrString(
                            "Pods that may be created above the desired count: a count or a percentage."
                        )
                    ),
                },
                description="Limits of a Deployment rolling update.",
                name=APPS + "RollingUpdateDeployment",
            )
        ),
    },
    retain_keys=True,
    description="How old pods are replaced by new ones.",
    name=APPS + "DeploymentStrategy",
)

DEPLOYMENT = top_level(
    APPS + "Deployment",
    "Declarative updates for pods through ReplicaSets.",
    spec=Object(
        {
            "replicas": Field(Integer("Desired number of pods.", minimum=0), default=1),
            "selector": Field(LABEL_SELECTOR, required=True),
            "template": Field(POD_TEMPLATE_SPEC, required=True),
            "strategy": Field(DEPLOYMENT_STRATEGY),
            "minReadySeconds": Field(
                Integer("A new pod counts as available after being ready this long.", minimum=0)
            ),
            "revisionHistoryLimit": Field(
                Integer("Old ReplicaSets kept for rollback.", minimum=0), default=10
            ),
            "paused": Field(Boolean("Stop rolling out template changes.")),
            "progressDeadlineSeconds": Field(
                Integer(
                    "Seconds without progress before the rollout is reported failed.", minimum=1
                ),
                default=600,
            ),
        },
        description="The desired state of a Deployment.",
        name=APPS + "DeploymentSpec",
    ),
    status=Object(
        {
            "observedGeneration": Field(Integer(format="int64")),
            "replicas": _count(),
            "updatedReplicas": _count(),
            "readyReplicas": _count(),
            "availableReplicas": _count(),
            "unavailableReplicas": _count(),
            "terminatingReplicas": _count(),
            "conditions": _conditions("DeploymentCondition", update_time=True),
            "collisionCount": _count(),
        },
        description="Observed state of a Deployment, written by the deployment controller (kubectl rollout status reads it).",
        name=APPS + "DeploymentStatus",
    ),
    spec_required=True,
)

REPLICA_SET = top_level(
    APPS + "ReplicaSet",
    "Keeps a stable number of identical pods running.",
    spec=Object(
        {
            "replicas": Field(Integer(minimum=0), default=1),
            "minReadySeconds": Field(Integer(minimum=0)),
            "selector": Field(LABEL_SELECTOR, required=True),
            "template": Field(POD_TEMPLATE_SPEC),
        },
        description="The desired state of a ReplicaSet.",
        name=APPS + "ReplicaSetSpec",
    ),
    status=Object(
        {
            "replicas": _count(),
            "fullyLabeledReplicas": _count(),
            "readyReplicas": _count(),
            "availableReplicas": _count(),
            "terminatingReplicas": _count(),
            "observedGeneration": Field(Integer(format="int64")),
            "conditions": _conditions("ReplicaSetCondition"),
        },
        description="Observed state of a ReplicaSet, written by the replicaset controller.",
        name=APPS + "ReplicaSetStatus",
    ),
    spec_required=True,
)

DAEMON_SET_UPDATE_STRATEGY = Object(
    {
        "type": Field(String(enum=("RollingUpdate", "OnDelete")), default="RollingUpdate"),
        "rollingUpdate": Field(
            Object(
                {"maxUnavailable": Field(IntOrString()), "maxSurge": Field(IntOrString())},
                description="Limits of a DaemonSet rolling update.",
                name=APPS + "RollingUpdateDaemonSet",
            )
        ),
    },
    description="How pods are replaced when the template changes: RollingUpdate or OnDelete.",
    name=APPS + "DaemonSetUpdateStrategy",
)

DAEMON_SET = top_level(
    APPS + "DaemonSet",
    "Runs one pod on every (matching) node.",
    spec=Object(
        {
            "selector": Field(LABEL_SELECTOR, required=True),
            "template": Field(POD_TEMPLATE_SPEC, required=True),
            "updateStrategy": Field(DAEMON_SET_UPDATE_STRATEGY),
            "minReadySeconds": Field(Integer(minimum=0)),
            "revisionHistoryLimit": Field(Integer(minimum=0), default=10),
        },
        description="The desired behaviour of a DaemonSet: which pods, updated how.",
        name=APPS + "DaemonSetSpec",
    ),
    status=Object(
        {
            "currentNumberScheduled": _count(),
            "numberMisscheduled": _count(),
            "desiredNumberScheduled": _count(),
            "numberReady": _count(),
            "observedGeneration": Field(Integer(format="int64")),
            "updatedNumberScheduled": _count(),
            "numberAvailable": _count(),
            "numberUnavailable": _count(),
            "collisionCount": _count(),
            "conditions": _conditions("DaemonSetCondition"),
        },
        description="Observed state of a DaemonSet, written by the daemonset controller.",
        name=APPS + "DaemonSetStatus",
    ),
    spec_required=True,
)

KINDS: dict[str, Object] = {
    "Deployment": DEPLOYMENT,
    "ReplicaSet": REPLICA_SET,
    "DaemonSet": DAEMON_SET,
}
