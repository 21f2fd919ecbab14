"""meta/v1 types every kind shares: ObjectMeta, ListMeta, OwnerReference, LabelSelector, ..."""

from __future__ import annotations

from ketch.api.schema import (
    Array,
    Boolean,
    Field,
    FreeForm,
    Integer,
    Map,
    Object,
    String,
)

META = "io.k8s.apimachinery.pkg.apis.meta.v1."


def time(description: str = "") -> String:
    """An RFC 3339 timestamp ("2024-01-02T03:04:05Z")."""
    return String(description, format="date-time")


def micro_time(description: str = "") -> String:
    """An RFC 3339 timestamp with microseconds ("2024-01-02T03:04:05.000000Z")."""
    return String(description, format="date-time")


def server_owned(node, description: str = "") -> Field:
    """A field the apiserver sets: accepted in input (clients PUT back what they GET), then overwritten."""
    if description:
        node.description = description
    return Field(node, read_only=True)


LABELS = Map(
    String(format="label-value"),
    "Map of string keys and values to organize and select objects.",
    key_format="label-key",
)
ANNOTATIONS = Map(
    String(),
    "Unstructured key value map stored with a resource (total size at most 256 KiB).",
    key_format="qualified-name",
)

OWNER_REFERENCE = Object(
    {
        "apiVersion": Field(String("API version of the referent."), required=True),
        "kind": Field(String("Kind of the referent."), required=True),
        "name": Field(String("Name of the referent."), required=True),
        "uid": Field(String("UID of the referent."), required=True),
        "controller": Field(Boolean("True if the referent is the managing controller.")),
        "blockOwnerDeletion": Field(
            Boolean("If true, the owner cannot be deleted (foreground) until this is removed.")
        ),
    },
    "A reference to an owner object in the same namespace (garbage collection).",
    name=META + "OwnerReference",
)

MANAGED_FIELDS_ENTRY = Object(
    {
        "manager": Field(String()),
        "operation": Field(String()),
        "apiVersion": Field(String()),
        "time": Field(time()),
        "fieldsType": Field(String()),
        "fieldsV1": Field(FreeForm()),
        "subresource": Field(String()),
    },
    "Server-side apply bookkeeping; accepted and ignored (Ketch does not do server-side apply).",
    name=META + "ManagedFieldsEntry",
)

OBJECT_META = Object(
    {
        "name": Field(
            String("Name, unique within a namespace (DNS-1123 subdomain for most kinds).")
        ),
        "generateName": Field(
            String("Prefix from which the server generates a unique name when name is empty.")
        ),
        "namespace": Field(String("Namespace of a namespaced object (DNS-1123 label).")),
        "labels": Field(LABELS),
        "annotations": Field(ANNOTATIONS),
        "ownerReferences": Field(
            Array(
                OWNER_REFERENCE,
                "Objects this object depends on.",
                merge_key="uid",
                patch_strategy="merge",
            )
        ),
        "finalizers": Field(
            Array(
                String(format="qualified-name"),
                "Must be empty before the object is removed from storage.",
                patch_strategy="merge",
            )
        ),
        "uid": server_owned(String(), "Unique in time and space; set by the server."),
        "resourceVersion": server_owned(
            String(), "The etcd revision of the last write; send it back for optimistic locking."
        ),
        "generation": server_owned(
            Integer(format="int64"), "Bumped by the server on every change of the desired state."
        ),
        "creationTimestamp": server_owned(time(), "When the server created the object."),
        "deletionTimestamp": server_owned(time(), "When the object will be (or is being) deleted."),
        "deletionGracePeriodSeconds": server_owned(Integer(format="int64")),
        "managedFields": server_owned(Array(MANAGED_FIELDS_ENTRY)),
        "selfLink": server_owned(String(), "Deprecated; accepted and ignored."),
    },
    "Standard object metadata.",
    name=META + "ObjectMeta",
)

LIST_META = Object(
    {
        "resourceVersion": Field(String()),
        "continue": Field(String()),
        "remainingItemCount": Field(Integer(format="int64")),
        "selfLink": Field(String()),
    },
    "Metadata of a list: the revision it was read at and the pagination token.",
    name=META + "ListMeta",
)

LABEL_SELECTOR_REQUIREMENT = Object(
    {
        "key": Field(
            String("The label key the selector applies to.", format="label-key"), required=True
        ),
        "operator": Field(
            String(enum=("In", "NotIn", "Exists", "DoesNotExist")),
            required=True,
        ),
        "values": Field(
            Array(
                String(format="label-value"),
                "Non-empty for In and NotIn, empty for Exists and DoesNotExist.",
            )
        ),
    },
    name=META + "LabelSelectorRequirement",
)

LABEL_SELECTOR = Object(
    {
        "matchLabels": Field(LABELS),
        "matchExpressions": Field(Array(LABEL_SELECTOR_REQUIREMENT)),
    },
    "Label query; the requirements are ANDed. An empty selector matches everything.",
    name=META + "LabelSelector",
)

PRECONDITIONS = Object(
    {"uid": Field(String()), "resourceVersion": Field(String())},
    name=META + "Preconditions",
)

DELETE_OPTIONS = Object(
    {
        "kind": Field(String()),
        "apiVersion": Field(String()),
        "gracePeriodSeconds": Field(Integer(format="int64", minimum=0)),
        "preconditions": Field(PRECONDITIONS),
        "orphanDependents": Field(Boolean("Deprecated: use propagationPolicy.")),
        "propagationPolicy": Field(String(enum=("Orphan", "Background", "Foreground"))),
        "dryRun": Field(Array(String(enum=("All",)))),
        "ignoreStoreReadErrorWithClusterBreakingPotential": Field(Boolean()),
    },
    "Options of a DELETE request.",
    name=META + "DeleteOptions",
)

STATUS_CAUSE = Object(
    {"reason": Field(String()), "message": Field(String()), "field": Field(String())},
    name=META + "StatusCause",
)

STATUS = Object(
    {
        "kind": Field(String()),
        "apiVersion": Field(String()),
        "metadata": Field(LIST_META),
        "status": Field(String()),
        "message": Field(String()),
        "reason": Field(String()),
        "details": Field(
            Object(
                {
                    "name": Field(String()),
                    "group": Field(String()),
                    "kind": Field(String()),
                    "uid": Field(String()),
                    "causes": Field(Array(STATUS_CAUSE)),
                    "retryAfterSeconds": Field(Integer()),
                },
                name=META + "StatusDetails",
            )
        ),
        "code": Field(Integer()),
    },
    "The answer of a failed request (and of some deletes).",
    name=META + "Status",
)


def condition_fields(*, heartbeat: str | None = None, probe: bool = False) -> dict[str, Field]:
    """Fields of the status conditions most kinds carry (type, status, times, reason, message)."""
    fields = {
        "type": Field(String("Type of the condition."), required=True),
        "status": Field(String(enum=("True", "False", "Unknown")), required=True),
        "lastTransitionTime": Field(time()),
        "reason": Field(String()),
        "message": Field(String()),
        "observedGeneration": Field(Integer(format="int64")),
    }
    if heartbeat:
        fields[heartbeat] = Field(time())
    if probe:
        fields["lastProbeTime"] = Field(time())
    return fields


def type_meta() -> dict[str, Field]:
    """apiVersion and kind: required on input, checked against the URL by the apiserver."""
    return {
        "apiVersion": Field(String("Versioned schema of this object, e.g. apps/v1.")),
        "kind": Field(String("Kind of this object, e.g. Deployment.")),
    }


def top_level(
    kind_name: str,
    description: str,
    *,
    spec: Object | None = None,
    status: Object | None = None,
    extra: dict[str, Field] | None = None,
    spec_required: bool = False,
) -> Object:
    """The whole object of a kind: apiVersion, kind, metadata, spec, status, extra fields."""
    fields = type_meta()
    fields["metadata"] = Field(OBJECT_META)
    if spec is not None:
        fields["spec"] = Field(spec, required=spec_required)
    if status is not None:
        fields["status"] = Field(status, read_only=True)
    if extra:
        fields.update(extra)
    return Object(fields, description, name=kind_name)


KINDS: dict[str, Object] = {
    "DeleteOptions": DELETE_OPTIONS,
    "Status": STATUS,
}
