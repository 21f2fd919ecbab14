"""Kubernetes protobuf request bodies → JSON-shaped dicts, for the kinds typed clients create.

client-go's typed clients (what `kubectl create namespace|configmap|secret|deployment|
job|serviceaccount|service` use) send `application/vnd.kubernetes.protobuf`: the magic
`k8s\\0`, then a `runtime.Unknown` {typeMeta, raw} whose `raw` is the object in the
k8s.io/api generated.proto encoding. Ketch answers in JSON (those clients accept it),
but it must read these bodies.

Only the messages and fields below are known (field numbers of k8s.io/api, checked
against what kubectl 1.32 sends). Go's encoder writes every non-pointer field even when
empty; such zero values are dropped, as Go's `omitempty` JSON would. A non-empty field
this table does not know answers 415 with a message naming it, never a silent drop.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from ketch.api import errors

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"


class _F:
    """One field: JSON name, kind (string/int/bool/bytes/time/intorstr/quantity/skip/msg:X/map:Y)."""

    __slots__ = ("name", "kind", "repeated", "pointer")

    def __init__(self, name: str, kind: str = "string", repeated: bool = False, pointer: bool = False) -> None:
        self.name, self.kind, self.repeated, self.pointer = name, kind, repeated, pointer


def _rep(name: str, kind: str = "string") -> _F:
    return _F(name, kind, repeated=True)


def _ptr(name: str, kind: str) -> _F:
    return _F(name, kind, pointer=True)


_META = _F("metadata", "msg:ObjectMeta")
_SKIP_STATUS = _F("status", "skip")

MESSAGES: dict[str, dict[int, _F]] = {
    "TypeMeta": {1: _F("apiVersion"), 2: _F("kind")},
    "Unknown": {1: _F("typeMeta", "msg:TypeMeta"), 2: _F("raw", "rawbytes"), 3: _F("contentEncoding"),
                4: _F("contentType")},
    "ObjectMeta": {
        1: _F("name"), 2: _F("generateName"), 3: _F("namespace"), 4: _F("selfLink", "skip"), 5: _F("uid"),
        6: _F("resourceVersion"), 7: _F("generation", "int"), 8: _F("creationTimestamp", "time"),
        9: _F("deletionTimestamp", "time"), 10: _ptr("deletionGracePeriodSeconds", "int"),
        11: _F("labels", "map:string"), 12: _F("annotations", "map:string"),
        13: _rep("ownerReferences", "msg:OwnerReference"), 14: _rep("finalizers"),
        17: _F("managedFields", "skip"),
    },
    "OwnerReference": {1: _F("kind"), 3: _F("name"), 4: _F("uid"), 5: _F("apiVersion"),
                       6: _ptr("controller", "bool"), 7: _ptr("blockOwnerDeletion", "bool")},
    "LabelSelector": {1: _F("matchLabels", "map:string"),
                      2: _rep("matchExpressions", "msg:LabelSelectorRequirement")},
    "LabelSelectorRequirement": {1: _F("key"), 2: _F("operator"), 3: _rep("values")},
    "LocalObjectReference": {1: _F("name")},
    "ObjectReference": {1: _F("kind"), 2: _F("namespace"), 3: _F("name"), 4: _F("uid"), 5: _F("apiVersion"),
                        6: _F("resourceVersion"), 7: _F("fieldPath")},
    # core/v1
    "Namespace": {1: _META, 2: _F("spec", "msg:NamespaceSpec"), 3: _SKIP_STATUS},
    "NamespaceSpec": {1: _rep("finalizers")},
    "ConfigMap": {1: _META, 2: _F("data", "map:string"), 3: _F("binaryData", "map:bytes"),
                  4: _ptr("immutable", "bool")},
    "Secret": {1: _META, 2: _F("data", "map:bytes"), 3: _F("type"), 4: _F("stringData", "map:string"),
               5: _ptr("immutable", "bool")},
    "ServiceAccount": {1: _META, 2: _rep("secrets", "msg:ObjectReference"),
                       3: _rep("imagePullSecrets", "msg:LocalObjectReference"),
                       4: _ptr("automountServiceAccountToken", "bool")},
    "Service": {1: _META, 2: _F("spec", "msg:ServiceSpec"), 3: _SKIP_STATUS},
    "ServiceSpec": {1: _rep("ports", "msg:ServicePort"), 2: _F("selector", "map:string"), 3: _F("clusterIP"),
                    4: _F("type"), 5: _rep("externalIPs"), 7: _F("sessionAffinity"), 10: _F("externalName"),
                    11: _F("externalTrafficPolicy"), 13: _F("publishNotReadyAddresses", "bool"),
                    18: _rep("clusterIPs"), 22: _ptr("internalTrafficPolicy", "string")},
    "ServicePort": {1: _F("name"), 2: _F("protocol"), 3: _F("port", "int"), 4: _F("targetPort", "intorstr"),
                    5: _F("nodePort", "int"), 6: _ptr("appProtocol", "string")},
    "PodTemplateSpec": {1: _META, 2: _F("spec", "msg:PodSpec")},
    "PodSpec": {
        2: _rep("containers", "msg:Container"), 3: _F("restartPolicy"),
        4: _ptr("terminationGracePeriodSeconds", "int"), 5: _ptr("activeDeadlineSeconds", "int"),
        6: _F("dnsPolicy"), 7: _F("nodeSelector", "map:string"), 8: _F("serviceAccountName"),
        9: _F("serviceAccount", "skip"), 10: _F("nodeName"), 11: _F("hostNetwork", "bool"),
        12: _F("hostPID", "bool"), 13: _F("hostIPC", "bool"),
        15: _rep("imagePullSecrets", "msg:LocalObjectReference"), 16: _F("hostname"), 17: _F("subdomain"),
        19: _F("schedulerName"), 20: _rep("initContainers", "msg:Container"),
        21: _ptr("automountServiceAccountToken", "bool"), 24: _F("priorityClassName"),
        30: _ptr("enableServiceLinks", "bool"),
    },
    "Container": {
        1: _F("name"), 2: _F("image"), 3: _rep("command"), 4: _rep("args"), 5: _F("workingDir"),
        6: _rep("ports", "msg:ContainerPort"), 7: _rep("env", "msg:EnvVar"),
        8: _F("resources", "msg:ResourceRequirements"), 13: _F("terminationMessagePath"),
        14: _F("imagePullPolicy"), 16: _F("stdin", "bool"), 17: _F("stdinOnce", "bool"), 18: _F("tty", "bool"),
        20: _F("terminationMessagePolicy"),
    },
    "ContainerPort": {1: _F("name"), 2: _F("hostPort", "int"), 3: _F("containerPort", "int"), 4: _F("protocol"),
                      5: _F("hostIP")},
    "EnvVar": {1: _F("name"), 2: _F("value")},
    "ResourceRequirements": {1: _F("limits", "map:quantity"), 2: _F("requests", "map:quantity")},
    # apps/v1
    "Deployment": {1: _META, 2: _F("spec", "msg:DeploymentSpec"), 3: _SKIP_STATUS},
    "DeploymentSpec": {1: _ptr("replicas", "int"), 2: _F("selector", "msg:LabelSelector"),
                       3: _F("template", "msg:PodTemplateSpec"), 4: _F("strategy", "msg:DeploymentStrategy"),
                       5: _F("minReadySeconds", "int"), 6: _ptr("revisionHistoryLimit", "int"),
                       7: _F("paused", "bool"), 9: _ptr("progressDeadlineSeconds", "int")},
    "DeploymentStrategy": {1: _F("type"), 2: _F("rollingUpdate", "msg:RollingUpdateDeployment")},
    "RollingUpdateDeployment": {1: _F("maxUnavailable", "intorstr"), 2: _F("maxSurge", "intorstr")},
    # batch/v1
    "Job": {1: _META, 2: _F("spec", "msg:JobSpec"), 3: _SKIP_STATUS},
    "JobSpec": {1: _ptr("parallelism", "int"), 2: _ptr("completions", "int"),
                3: _ptr("activeDeadlineSeconds", "int"), 4: _F("selector", "msg:LabelSelector"),
                5: _ptr("manualSelector", "bool"), 6: _F("template", "msg:PodTemplateSpec"),
                7: _ptr("backoffLimit", "int"), 8: _ptr("ttlSecondsAfterFinished", "int"),
                9: _ptr("completionMode", "string"), 10: _ptr("suspend", "bool")},
}

#: (apiVersion, kind) of the top-level objects this module decodes.
TOP_LEVEL = {("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "ServiceAccount"),
             ("v1", "Service"), ("apps/v1", "Deployment"), ("batch/v1", "Job")}


class ProtobufError(ValueError):
    pass


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(buf):
            raise ProtobufError("truncated varint")
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def _fields(buf: bytes):
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            length, i = _varint(buf, i)
            if i + length > len(buf):
                raise ProtobufError("truncated field")
            value, i = buf[i:i + length], i + length
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        yield number, wire, value


def _int(value: Any) -> int:
    if not isinstance(value, int):
        raise ProtobufError("expected a varint")
    return value - (1 << 64) if value >= 1 << 63 else value


def _is_zero(value: Any) -> bool:
    return value in (0, b"", "", False)


def _time(buf: bytes) -> str | None:
    seconds = 0
    for number, _wire, value in _fields(buf):
        if number == 1:
            seconds = _int(value)
    if not buf:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_or_string(buf: bytes) -> int | str:
    kind, int_val, str_val = 0, 0, ""
    for number, _wire, value in _fields(buf):
        if number == 1:
            kind = _int(value)
        elif number == 2:
            int_val = _int(value)
        elif number == 3:
            str_val = bytes(value).decode()
    return str_val if kind == 1 else int_val


def _quantity(buf: bytes) -> str:
    for number, _wire, value in _fields(buf):
        if number == 1:
            return bytes(value).decode()
    return "0"


def _scalar(kind: str, value: Any) -> Any:
    if kind == "string":
        return bytes(value).decode()
    if kind == "int":
        return _int(value)
    if kind == "bool":
        return bool(value)
    if kind == "bytes":
        return base64.b64encode(bytes(value)).decode()
    if kind == "time":
        return _time(bytes(value))
    if kind == "intorstr":
        return _int_or_string(bytes(value))
    if kind == "quantity":
        return _quantity(bytes(value))
    raise ProtobufError(f"unknown field kind {kind}")


def _map_entry(kind: str, buf: bytes) -> tuple[str, Any]:
    key, val = "", None
    for number, _wire, value in _fields(buf):
        if number == 1:
            key = bytes(value).decode()
        elif number == 2:
            val = value
    if kind == "string":
        return key, bytes(val or b"").decode()
    if kind == "bytes":
        return key, base64.b64encode(bytes(val or b"")).decode()
    return key, _scalar(kind, val or b"")


def decode_message(name: str, buf: bytes, path: str) -> dict:
    spec = MESSAGES[name]
    out: dict[str, Any] = {}
    for number, _wire, value in _fields(buf):
        field = spec.get(number)
        if field is None:
            if _is_zero(value):
                continue
            raise ProtobufError(f"{path}: protobuf field {number} of {name} is not supported by Ketch")
        if field.kind == "skip":
            continue
        where = f"{path}.{field.name}" if path else field.name
        if field.kind.startswith("map:"):
            key, val = _map_entry(field.kind[4:], bytes(value))
            out.setdefault(field.name, {})[key] = val
            continue
        if field.kind.startswith("msg:"):
            decoded: Any = decode_message(field.kind[4:], bytes(value), where)
        elif field.kind == "rawbytes":
            decoded = bytes(value)
        else:
            decoded = _scalar(field.kind, value)
            if decoded is None or (_is_zero(decoded) and not field.pointer and not field.repeated):
                continue
        if field.repeated:
            out.setdefault(field.name, []).append(decoded)
        else:
            out[field.name] = decoded
    return out


def decode(body: bytes) -> dict:
    """A JSON-shaped object from a protobuf request body; 415/400 ApiError when it cannot be read."""
    if not body.startswith(MAGIC):
        raise errors.bad_request("a protobuf body must start with the Kubernetes magic bytes k8s\\0")
    try:
        envelope = decode_message("Unknown", body[len(MAGIC):], "")
        type_meta = envelope.get("typeMeta") or {}
        api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
        if (api_version, kind) not in TOP_LEVEL:
            raise errors.unsupported_media_type(
                f"Ketch reads protobuf bodies only for {', '.join(sorted(k for _, k in TOP_LEVEL))}; "
                f"send {kind or 'this object'} as application/json (e.g. kubectl apply -f)"
            )
        obj = decode_message(kind, envelope.get("raw", b""), "")
    except ProtobufError as exc:
        raise errors.unsupported_media_type(
            f"the protobuf body could not be read ({exc}); send it as application/json"
        ) from None
    return {"apiVersion": api_version, "kind": kind, **obj}
