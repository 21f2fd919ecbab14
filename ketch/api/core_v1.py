"""core/v1 kinds: Namespace, Node, Pod, Service, Endpoints, ConfigMap, Secret, Event,
ServiceAccount, Binding, and the PodSpec every workload embeds.

Fields Kubernetes has and Ketch knowingly does not implement are listed in each
object's `unsupported` map with the reason, so a manifest using them gets a
clear "not supported by Ketch" error instead of being silently half-run.
"""

from __future__ import annotations

from ketch.api.meta_v1 import (
    DELETE_OPTIONS,
    OBJECT_META,
    condition_fields,
    micro_time,
    time,
    top_level,
)
from ketch.api.schema import (
    Array,
    Boolean,
    Field,
    FreeForm,
    Integer,
    IntOrString,
    Map,
    Object,
    Quantity,
    String,
)

CORE = "io.k8s.api.core.v1."

PROTOCOLS = ("TCP", "UDP")
#: The PriorityClasses every Kubernetes cluster has, and their values.
BUILTIN_PRIORITY_CLASSES = {
    "system-node-critical": 2000001000,
    "system-cluster-critical": 2000000000,
}
PORT = Integer(minimum=1, maximum=65535)
NAMES_ONLY = "this feature is not implemented"

# --- references -------------------------------------------------------------------------

OBJECT_REFERENCE = Object(
    {
        "kind": Field(String()),
        "namespace": Field(String()),
        "name": Field(String()),
        "uid": Field(String()),
        "apiVersion": Field(String()),
        "resourceVersion": Field(String()),
        "fieldPath": Field(String()),
    },
    "A reference to another object.",
    name=CORE + "ObjectReference",
)

LOCAL_OBJECT_REFERENCE = Object(
    {"name": Field(String("Name of the referent in the same namespace."))},
    description="The name of an object in the same namespace.",
    name=CORE + "LocalObjectReference",
)

# --- container ----------------------------------------------------------------------------

KEY_SELECTOR = {
    "name": Field(String("Name of the ConfigMap or Secret.")),
    "key": Field(String("The key to select."), required=True),
    "optional": Field(Boolean("If true, a missing object or key is not an error.")),
}

OBJECT_FIELD_SELECTOR = Object(
    {
        "apiVersion": Field(String(), default="v1"),
        "fieldPath": Field(
            String(
                "metadata.name, metadata.namespace, metadata.uid, metadata.labels['k'], "
                "metadata.annotations['k'], spec.nodeName, spec.serviceAccountName, "
                "status.hostIP, status.hostIPs, status.podIP, status.podIPs"
            ),
            required=True,
        ),
    },
    "Selects a field of the pod (downward API).",
    name=CORE + "ObjectFieldSelector",
)

RESOURCE_FIELD_SELECTOR = Object(
    {
        "containerName": Field(String()),
        "resource": Field(
            String(
                enum=(
                    "limits.cpu",
                    "limits.memory",
                    "limits.ephemeral-storage",
                    "requests.cpu",
                    "requests.memory",
                    "requests.ephemeral-storage",
                )
            ),
            required=True,
        ),
        "divisor": Field(Quantity()),
    },
    "Selects a resource of a container (downward API).",
    name=CORE + "ResourceFieldSelector",
)

ENV_VAR = Object(
    {
        "name": Field(String("Name of the environment variable."), required=True),
        "value": Field(String("Literal value; $(VAR) references are expanded.")),
        "valueFrom": Field(
            Object(
                {
                    "configMapKeyRef": Field(
                        Object(
                            dict(KEY_SELECTOR),
                            description="One key of a ConfigMap.",
                            name=CORE + "ConfigMapKeySelector",
                        )
                    ),
                    "secretKeyRef": Field(
                        Object(
                            dict(KEY_SELECTOR),
                            description="One key of a Secret.",
                            name=CORE + "SecretKeySelector",
                        )
                    ),
                    "fieldRef": Field(OBJECT_FIELD_SELECTOR),
                    "resourceFieldRef": Field(RESOURCE_FIELD_SELECTOR),
                },
                "Source of the value; exactly one.",
                unsupported={"fileKeyRef": NAMES_ONLY},
                name=CORE + "EnvVarSource",
            )
        ),
    },
    description="An environment variable of a container.",
    name=CORE + "EnvVar",
)

ENV_FROM_SOURCE = Object(
    {
        "prefix": Field(String("Prepended to every key.")),
        "configMapRef": Field(
            Object(
                {"name": Field(String()), "optional": Field(Boolean())},
                description="Every key of a ConfigMap as an environment variable.",
                name=CORE + "ConfigMapEnvSource",
            )
        ),
        "secretRef": Field(
            Object(
                {"name": Field(String()), "optional": Field(Boolean())},
                description="Every key of a Secret as an environment variable.",
                name=CORE + "SecretEnvSource",
            )
        ),
    },
    description="Environment variables from every key of a ConfigMap or Secret.",
    name=CORE + "EnvFromSource",
)

CONTAINER_PORT = Object(
    {
        "containerPort": Field(PORT, required=True),
        "hostPort": Field(
            Integer(
                "Port exposed on the host (needs a free port on the node).",
                minimum=1,
                maximum=65535,
            )
        ),
        "protocol": Field(String(enum=PROTOCOLS), default="TCP"),
        "name": Field(String("IANA service name, unique in the pod.", format="port-name")),
        "hostIP": Field(String(format="ip")),
    },
    description="A port the container listens on (informational, and the target of hostPort).",
    name=CORE + "ContainerPort",
)

RESOURCE_LIST = Map(Quantity(), "cpu, memory, ...: quantities.", key_format="resource-name")

RESOURCE_REQUIREMENTS = Object(
    {
        "limits": Field(RESOURCE_LIST),
        "requests": Field(RESOURCE_LIST),
    },
    "Compute resources; requests are for scheduling, limits are enforced by cgroups.",
    unsupported={"claims": "dynamic resource allocation " + "is not implemented"},
    name=CORE + "ResourceRequirements",
)

VOLUME_MOUNT = Object(
    {
        "name": Field(String("The volume's name."), required=True),
        "mountPath": Field(
            String("Path inside the container.", format="absolute-path"), required=True
        ),
        "readOnly": Field(Boolean()),
        "subPath": Field(String("Path within the volume.", format="relative-path")),
    },
    unsupported={
        "subPathExpr": NAMES_ONLY,
        "mountPropagation": "mount propagation is not implemented",
        "recursiveReadOnly": NAMES_ONLY,
    },
    description="Where a volume appears in the container.",
    name=CORE + "VolumeMount",
)

EXEC_ACTION = Object(
    {"command": Field(Array(String()), required=True)},
    "Run a command in the container; exit 0 is success.",
    name=CORE + "ExecAction",
)

HTTP_GET_ACTION = Object(
    {
        "path": Field(String()),
        "port": Field(IntOrString("Port number or name."), required=True),
        "host": Field(String("Defaults to the pod IP.")),
        "scheme": Field(String(enum=("HTTP", "HTTPS")), default="HTTP"),
        "httpHeaders": Field(
            Array(
                Object(
                    {
                        "name": Field(String(), required=True),
                        "value": Field(String(), required=True),
                    },
                    name=CORE + "HTTPHeader",
                )
            )
        ),
    },
    "HTTP GET; a 2xx or 3xx answer is success.",
    name=CORE + "HTTPGetAction",
)

TCP_SOCKET_ACTION = Object(
    {"port": Field(IntOrString(), required=True), "host": Field(String())},
    "Open a TCP connection; success if it connects.",
    name=CORE + "TCPSocketAction",
)

PROBE = Object(
    {
        "exec": Field(EXEC_ACTION),
        "httpGet": Field(HTTP_GET_ACTION),
        "tcpSocket": Field(TCP_SOCKET_ACTION),
        "initialDelaySeconds": Field(Integer(minimum=0)),
        "timeoutSeconds": Field(Integer(minimum=1), default=1),
        "periodSeconds": Field(Integer(minimum=1), default=10),
        "successThreshold": Field(Integer(minimum=1), default=1),
        "failureThreshold": Field(Integer(minimum=1), default=3),
        "terminationGracePeriodSeconds": Field(Integer(format="int64", minimum=1)),
    },
    "A periodic check of a container: exactly one of exec, httpGet, tcpSocket.",
    unsupported={"grpc": "gRPC probes are not implemented"},
    name=CORE + "Probe",
)

LIFECYCLE_HANDLER = Object(
    {
        "exec": Field(EXEC_ACTION),
        "httpGet": Field(HTTP_GET_ACTION),
        "tcpSocket": Field(TCP_SOCKET_ACTION),
        "sleep": Field(
            Object(
                {"seconds": Field(Integer(format="int64", minimum=0), required=True)},
                name=CORE + "SleepAction",
            )
        ),
    },
    "Exactly one of exec, httpGet, sleep (tcpSocket is accepted as Kubernetes does).",
    name=CORE + "LifecycleHandler",
)

LIFECYCLE = Object(
    {"postStart": Field(LIFECYCLE_HANDLER), "preStop": Field(LIFECYCLE_HANDLER)},
    unsupported={"stopSignal": NAMES_ONLY},
    description="Actions run right after a container starts and right before it stops.",
    name=CORE + "Lifecycle",
)

CAPABILITIES = Object(
    {
        "add": Field(Array(String(), "Capabilities to add, e.g. NET_ADMIN.")),
        "drop": Field(Array(String(), "Capabilities to drop, e.g. ALL.")),
    },
    description="Linux capabilities to add to or drop from the default set.",
    name=CORE + "Capabilities",
)

_SECURITY_UNSUPPORTED = {
    "seLinuxOptions": "SELinux is not implemented",
    "windowsOptions": "Ketch runs Linux containers only",
    "seccompProfile": "seccomp profiles are not implemented",
    "appArmorProfile": "AppArmor is not implemented",
}

SECURITY_CONTEXT = Object(
    {
        "runAsUser": Field(Integer(format="int64", minimum=0)),
        "runAsGroup": Field(Integer(format="int64", minimum=0)),
        "runAsNonRoot": Field(Boolean("Refuse to start if the process would run as uid 0.")),
        "readOnlyRootFilesystem": Field(Boolean()),
        "capabilities": Field(CAPABILITIES),
        "privileged": Field(
            Boolean("All capabilities and devices; refused unless the node allows it.")
        ),
        "allowPrivilegeEscalation": Field(
            Boolean("false sets no_new_privs (Ketch sets it anyway unless privileged).")
        ),
    },
    unsupported={**_SECURITY_UNSUPPORTED, "procMount": NAMES_ONLY},
    description="Security options of a container; they override the pod's.",
    name=CORE + "SecurityContext",
)

CONTAINER = Object(
    {
        "name": Field(
            String("Unique in the pod (DNS-1123 label).", format="dns1123-label"), required=True
        ),
        "image": Field(String("Image reference, e.g. busybox:1.36."), required=True),
        "command": Field(Array(String(), "Entrypoint; replaces the image's ENTRYPOINT.")),
        "args": Field(Array(String(), "Arguments; replace the image's CMD.")),
        "workingDir": Field(String("Working directory; defaults to the image's.")),
        "ports": Field(Array(CONTAINER_PORT, merge_key="containerPort", patch_strategy="merge")),
        "envFrom": Field(Array(ENV_FROM_SOURCE)),
        "env": Field(Array(ENV_VAR, merge_key="name", patch_strategy="merge")),
        "resources": Field(RESOURCE_REQUIREMENTS),
        "volumeMounts": Field(Array(VOLUME_MOUNT, merge_key="mountPath", patch_strategy="merge")),
        "livenessProbe": Field(PROBE),
        "readinessProbe": Field(PROBE),
        "startupProbe": Field(PROBE),
        "lifecycle": Field(LIFECYCLE),
        "terminationMessagePath": Field(String(), default="/dev/termination-log"),
        "terminationMessagePolicy": Field(
            String(enum=("File", "FallbackToLogsOnError")), default="File"
        ),
        "imagePullPolicy": Field(
            String(
                "Always: pull every start; IfNotPresent; Never: use only local images. Defaults from the tag.",
                enum=("Always", "IfNotPresent", "Never"),
            )
        ),
        "securityContext": Field(SECURITY_CONTEXT),
        "stdin": Field(Boolean("Keep stdin open (kubectl attach/exec -i).")),
        "stdinOnce": Field(Boolean()),
        "tty": Field(Boolean("Allocate a terminal.")),
    },
    "A container of a pod.",
    unsupported={
        "resizePolicy": "in-place resize is not implemented",
        "restartPolicy": "sidecar containers (container restartPolicy) are not implemented",
        "restartPolicyRules": NAMES_ONLY,
        "volumeDevices": "block devices are not implemented",
    },
    name=CORE + "Container",
)

# --- volumes ------------------------------------------------------------------------------

KEY_TO_PATH = Object(
    {
        "key": Field(String(), required=True),
        "path": Field(String(format="relative-path"), required=True),
        "mode": Field(Integer(minimum=0, maximum=0o777)),
    },
    description="Maps one key to a file path inside the volume.",
    name=CORE + "KeyToPath",
)

DOWNWARD_API_FILE = Object(
    {
        "path": Field(String(format="relative-path"), required=True),
        "fieldRef": Field(OBJECT_FIELD_SELECTOR),
        "resourceFieldRef": Field(RESOURCE_FIELD_SELECTOR),
        "mode": Field(Integer(minimum=0, maximum=0o777)),
    },
    description="A file holding one pod field or container resource.",
    name=CORE + "DownwardAPIVolumeFile",
)

MODE = Integer("File mode bits (0644 = 420).", minimum=0, maximum=0o777)

CONFIG_MAP_PROJECTION = Object(
    {"name": Field(String()), "items": Field(Array(KEY_TO_PATH)), "optional": Field(Boolean())},
    description="ConfigMap keys projected into a volume.",
    name=CORE + "ConfigMapProjection",
)
SECRET_PROJECTION = Object(
    {"name": Field(String()), "items": Field(Array(KEY_TO_PATH)), "optional": Field(Boolean())},
    description="Secret keys projected into a volume.",
    name=CORE + "SecretProjection",
)
DOWNWARD_API_PROJECTION = Object(
    {"items": Field(Array(DOWNWARD_API_FILE))}, name=CORE + "DownwardAPIProjection"
)

VOLUME = Object(
    {
        "name": Field(
            String("Unique in the pod (DNS-1123 label).", format="dns1123-label"), required=True
        ),
        "emptyDir": Field(
            Object(
                {
                    "medium": Field(
                        String('"" (node disk) or "Memory" (tmpfs).', enum=("", "Memory"))
                    ),
                    "sizeLimit": Field(Quantity()),
                },
                description="A directory that lives as long as the pod: on the node's disk, or in memory (tmpfs).",
                name=CORE + "EmptyDirVolumeSource",
            )
        ),
        "hostPath": Field(
            Object(
                {
                    "path": Field(String(format="absolute-path"), required=True),
                    "type": Field(
                        String(
                            enum=(
                                "",
                                "DirectoryOrCreate",
                                "Directory",
                                "FileOrCreate",
                                "File",
                                "Socket",
                                "CharDevice",
                                "BlockDevice",
                            )
                        ),
                        default="",
                    ),
                },
                description="A file or directory of the node, mounted into the pod.",
                name=CORE + "HostPathVolumeSource",
            )
        ),
        "configMap": Field(
            Object(
                {
                    "name": Field(String()),
                    "items": Field(Array(KEY_TO_PATH)),
                    "defaultMode": Field(MODE, default=420),
                    "optional": Field(Boolean()),
                },
                description="A ConfigMap's keys as files.",
                name=CORE + "ConfigMapVolumeSource",
            )
        ),
        "secret": Field(
            Object(
                {
                    "secretName": Field(String()),
                    "items": Field(Array(KEY_TO_PATH)),
                    "defaultMode": Field(MODE, default=420),
                    "optional": Field(Boolean()),
                },
                description="A Secret's keys as files.",
                name=CORE + "SecretVolumeSource",
            )
        ),
        "downwardAPI": Field(
            Object(
                {
                    "items": Field(Array(DOWNWARD_API_FILE)),
                    "defaultMode": Field(MODE, default=420),
                },
                description="Pod fields and container resources as files.",
                name=CORE + "DownwardAPIVolumeSource",
            )
        ),
        "projected": Field(
            Object(
                {
                    "sources": Field(
                        Array(
                            Object(
                                {
                                    "configMap": Field(CONFIG_MAP_PROJECTION),
                                    "secret": Field(SECRET_PROJECTION),
                                    "downwardAPI": Field(DOWNWARD_API_PROJECTION),
                                },
                                unsupported={
                                    "serviceAccountToken": "service account tokens are not implemented",
                                    "clusterTrustBundle": NAMES_ONLY,
                                    "podCertificate": NAMES_ONLY,
                                },
                                description="One source of a projected volume: exactly one of configMap, secret, downwardAPI.",
                                name=CORE + "VolumeProjection",
                            )
                        )
                    ),
                    "defaultMode": Field(MODE, default=420),
                },
                description="Several ConfigMaps, Secrets and downward API items in one directory.",
                name=CORE + "ProjectedVolumeSource",
            )
        ),
    },
    "A volume: exactly one of emptyDir, hostPath, configMap, secret, downwardAPI, projected.",
    retain_keys=True,
    unsupported={
        k: "Ketch supports emptyDir, hostPath, configMap, secret, downwardAPI and projected volumes"
        for k in (
            "persistentVolumeClaim",
            "nfs",
            "iscsi",
            "csi",
            "ephemeral",
            "image",
            "gitRepo",
            "awsElasticBlockStore",
            "gcePersistentDisk",
            "azureDisk",
            "azureFile",
            "cephfs",
            "cinder",
            "fc",
            "flexVolume",
            "flocker",
            "glusterfs",
            "photonPersistentDisk",
            "portworxVolume",
            "quobyte",
            "rbd",
            "scaleIO",
            "storageos",
            "vsphereVolume",
        )
    },
    name=CORE + "Volume",
)

# --- scheduling ---------------------------------------------------------------------------

NODE_SELECTOR_REQUIREMENT = Object(
    {
        "key": Field(String(), required=True),
        "operator": Field(
            String(enum=("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")), required=True
        ),
        "values": Field(Array(String())),
    },
    description="A key, an operator and values, matched against node labels or fields.",
    name=CORE + "NodeSelectorRequirement",
)

NODE_SELECTOR_TERM = Object(
    {
        "matchExpressions": Field(Array(NODE_SELECTOR_REQUIREMENT, "On node labels.")),
        "matchFields": Field(Array(NODE_SELECTOR_REQUIREMENT, "On node fields (metadata.name).")),
    },
    "Requirements ANDed together.",
    name=CORE + "NodeSelectorTerm",
)

NODE_AFFINITY = Object(
    {
        "requiredDuringSchedulingIgnoredDuringExecution": Field(
            Object(
                {"nodeSelectorTerms": Field(Array(NODE_SELECTOR_TERM, "ORed."), required=True)},
                description="Terms, ORed: a node must match at least one.",
                name=CORE + "NodeSelector",
            )
        ),
        "preferredDuringSchedulingIgnoredDuringExecution": Field(
            Array(
                Object(
                    {
                        "weight": Field(Integer(minimum=1, maximum=100), required=True),
                        "preference": Field(NODE_SELECTOR_TERM, required=True),
                    },
                    description="A weighted preference for nodes matching a term.",
                    name=CORE + "PreferredSchedulingTerm",
                )
            )
        ),
    },
    description="Rules on node labels the scheduler honours.",
    name=CORE + "NodeAffinity",
)

AFFINITY = Object(
    {"nodeAffinity": Field(NODE_AFFINITY)},
    unsupported={
        "podAffinity": "inter-pod affinity is not implemented",
        "podAntiAffinity": "inter-pod anti-affinity is not implemented "
        "(the scheduler already spreads pods of the same owner)",
    },
    description="Scheduling constraints: node affinity (inter-pod affinity is not supported by Ketch).",
    name=CORE + "Affinity",
)

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

TOLERATION = Object(
    {
        "key": Field(String(format="label-key")),
        "operator": Field(String(enum=("Exists", "Equal"))),
        "value": Field(String()),
        "effect": Field(String(enum=("", *TAINT_EFFECTS))),
        "tolerationSeconds": Field(Integer(format="int64")),
    },
    description="Lets the pod run on nodes with a matching taint.",
    name=CORE + "Toleration",
)

POD_SECURITY_CONTEXT = Object(
    {
        "runAsUser": Field(Integer(format="int64", minimum=0)),
        "runAsGroup": Field(Integer(format="int64", minimum=0)),
        "runAsNonRoot": Field(Boolean()),
        "fsGroup": Field(Integer(format="int64", minimum=0)),
        "supplementalGroups": Field(Array(Integer(format="int64", minimum=0))),
    },
    "Applies to every container unless the container's securityContext overrides it.",
    unsupported={
        **_SECURITY_UNSUPPORTED,
        "fsGroupChangePolicy": NAMES_ONLY,
        "sysctls": "sysctls are not implemented",
        "supplementalGroupsPolicy": NAMES_ONLY,
        "seLinuxChangePolicy": NAMES_ONLY,
    },
    name=CORE + "PodSecurityContext",
)

POD_DNS_CONFIG = Object(
    {
        "nameservers": Field(Array(String(format="ip"))),
        "searches": Field(Array(String())),
        "options": Field(
            Array(
                Object(
                    {"name": Field(String()), "value": Field(String())},
                    name=CORE + "PodDNSConfigOption",
                )
            )
        ),
    },
    description="DNS settings merged into the pod's resolv.conf.",
    name=CORE + "PodDNSConfig",
)

POD_SPEC = Object(
    {
        "volumes": Field(Array(VOLUME, merge_key="name", patch_strategy="merge")),
        "initContainers": Field(
            Array(
                CONTAINER,
                "Run to completion, in order, before the containers start.",
                merge_key="name",
                patch_strategy="merge",
            )
        ),
        "containers": Field(
            Array(CONTAINER, "At least one.", merge_key="name", patch_strategy="merge"),
            required=True,
        ),
        "restartPolicy": Field(
            String(
                "Restart the containers when they exit: Always (default), OnFailure, Never.",
                enum=("Always", "OnFailure", "Never"),
            )
        ),
        "terminationGracePeriodSeconds": Field(
            Integer(
                "Seconds between SIGTERM and SIGKILL when the pod is deleted.",
                format="int64",
                minimum=0,
            ),
            default=30,
        ),
        "activeDeadlineSeconds": Field(
            Integer("The pod is failed after running this long.", format="int64", minimum=1)
        ),
        "dnsPolicy": Field(
            String(enum=("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")),
            default="ClusterFirst",
        ),
        "dnsConfig": Field(POD_DNS_CONFIG),
        "nodeSelector": Field(
            Map(
                String(format="label-value"),
                "Only nodes with all these labels can run the pod.",
                key_format="label-key",
            )
        ),
        "serviceAccountName": Field(
            String(
                "The ServiceAccount the pod runs as (default: default).", format="dns1123-subdomain"
            )
        ),
        "serviceAccount": Field(String("Deprecated alias of serviceAccountName.")),
        "automountServiceAccountToken": Field(Boolean()),
        "nodeName": Field(
            String(
                "Set by the scheduler through pods/binding, or by hand.", format="dns1123-subdomain"
            )
        ),
        "hostNetwork": Field(Boolean("Use the node's network namespace.")),
        "securityContext": Field(POD_SECURITY_CONTEXT, default={}),
        "imagePullSecrets": Field(
            Array(LOCAL_OBJECT_REFERENCE, merge_key="name", patch_strategy="merge")
        ),
        "hostname": Field(
            String("Hostname of the pod; defaults to its name.", format="dns1123-label")
        ),
        "subdomain": Field(
            String(
                "With a headless Service of this name: <hostname>.<subdomain>.<ns>.svc DNS.",
                format="dns1123-label",
            )
        ),
        "affinity": Field(AFFINITY),
        "schedulerName": Field(
            String("The scheduler that places the pod."), default="default-scheduler"
        ),
        "tolerations": Field(Array(TOLERATION, "Taints the pod tolerates.")),
        "priorityClassName": Field(
            String(
                "system-node-critical or system-cluster-critical (the built-in classes); "
                "Ketch has no PriorityClass objects: set priority for other values.",
                enum=tuple(BUILTIN_PRIORITY_CLASSES),
            )
        ),
        "priority": Field(Integer("Scheduling priority: higher goes first in the queue.")),
        "enableServiceLinks": Field(
            Boolean("Inject <SERVICE>_SERVICE_HOST/_PORT variables for the namespace's Services."),
            default=True,
        ),
    },
    "The desired state of a pod.",
    unsupported={
        "ephemeralContainers": "ephemeral containers (kubectl debug) are not implemented",
        "hostPID": "host PID namespace is not implemented",
        "hostIPC": "host IPC namespace is not implemented",
        "hostAliases": NAMES_ONLY,
        "hostUsers": "user namespaces are not implemented",
        "shareProcessNamespace": "a PID namespace shared by the pod's containers is not implemented",
        "runtimeClassName": "Ketch has a single runtime",
        "overhead": NAMES_ONLY,
        "preemptionPolicy": "preemption is not implemented",
        "topologySpreadConstraints": "topology spread is not implemented",
        "readinessGates": NAMES_ONLY,
        "setHostnameAsFQDN": NAMES_ONLY,
        "os": "Ketch runs Linux pods only",
        "schedulingGates": NAMES_ONLY,
        "resourceClaims": "dynamic resource allocation is not implemented",
        "resources": "pod-level resources are not implemented; set them per container",
        "hostnameOverride": NAMES_ONLY,
    },
    name=CORE + "PodSpec",
)

POD_TEMPLATE_SPEC = Object(
    {"metadata": Field(OBJECT_META), "spec": Field(POD_SPEC, required=True)},
    "The pods a workload creates.",
    name=CORE + "PodTemplateSpec",
)

# --- pod status ---------------------------------------------------------------------------

CONTAINER_STATE = Object(
    {
        "waiting": Field(
            Object(
                {"reason": Field(String()), "message": Field(String())},
                name=CORE + "ContainerStateWaiting",
            )
        ),
        "running": Field(Object({"startedAt": Field(time())}, name=CORE + "ContainerStateRunning")),
        "terminated": Field(
            Object(
                {
                    "exitCode": Field(Integer(), required=True),
                    "signal": Field(Integer()),
                    "reason": Field(String()),
                    "message": Field(String()),
                    "startedAt": Field(time()),
                    "finishedAt": Field(time()),
                    "containerID": Field(String()),
                },
                name=CORE + "ContainerStateTerminated",
            )
        ),
    },
    "At most one of waiting, running, terminated.",
    name=CORE + "ContainerState",
)

CONTAINER_STATUS = Object(
    {
        "name": Field(String(), required=True),
        "state": Field(CONTAINER_STATE),
        "lastState": Field(CONTAINER_STATE),
        "ready": Field(Boolean(), required=True),
        "restartCount": Field(Integer(minimum=0), required=True),
        "image": Field(String(), required=True),
        "imageID": Field(String()),  # "" while the container waits for its image
        "containerID": Field(String()),
        "started": Field(Boolean()),
        "allocatedResources": Field(RESOURCE_LIST),
        "resources": Field(RESOURCE_REQUIREMENTS),
    },
    description="Observed state of one container, written by the node agent.",
    name=CORE + "ContainerStatus",
)

POD_IP = Object({"ip": Field(String(format="ip"), required=True)}, name=CORE + "PodIP")
HOST_IP = Object({"ip": Field(String(format="ip"), required=True)}, name=CORE + "HostIP")

POD_STATUS = Object(
    {
        "phase": Field(String(enum=("Pending", "Running", "Succeeded", "Failed", "Unknown"))),
        "conditions": Field(
            Array(
                Object(condition_fields(probe=True), name=CORE + "PodCondition"),
                merge_key="type",
                patch_strategy="merge",
            )
        ),
        "message": Field(String()),
        "reason": Field(String()),
        "nominatedNodeName": Field(String()),
        "hostIP": Field(String(format="ip")),
        "hostIPs": Field(Array(HOST_IP, merge_key="ip", patch_strategy="merge")),
        "podIP": Field(String(format="ip")),
        "podIPs": Field(Array(POD_IP, merge_key="ip", patch_strategy="merge")),
        "startTime": Field(time()),
        "initContainerStatuses": Field(Array(CONTAINER_STATUS)),
        "containerStatuses": Field(Array(CONTAINER_STATUS)),
        "qosClass": Field(String(enum=("Guaranteed", "Burstable", "BestEffort"))),
        "observedGeneration": Field(Integer(format="int64")),
    },
    "Observed state of a pod, written by the node agent.",
    name=CORE + "PodStatus",
)

POD = top_level(
    CORE + "Pod",
    "A group of containers sharing a network namespace, run on one node.",
    spec=POD_SPEC,
    status=POD_STATUS,
    spec_required=True,
)

BINDING = Object(
    {
        "apiVersion": Field(String()),
        "kind": Field(String()),
        "metadata": Field(OBJECT_META),
        "target": Field(OBJECT_REFERENCE, required=True),
    },
    "Binds a pod to a node (POST pods/{name}/binding; target.kind Node, target.name).",
    name=CORE + "Binding",
)

# --- namespace ----------------------------------------------------------------------------

NAMESPACE = top_level(
    CORE + "Namespace",
    "A scope for names; deleting it deletes everything in it.",
    spec=Object(
        {"finalizers": Field(Array(String()))},
        description="Namespace finalizers.",
        name=CORE + "NamespaceSpec",
    ),
    status=Object(
        {
            "phase": Field(String(enum=("Active", "Terminating"))),
            "conditions": Field(
                Array(
                    Object(condition_fields(), name=CORE + "NamespaceCondition"),
                    merge_key="type",
                    patch_strategy="merge",
                )
            ),
        },
        description="Active or Terminating.",
        name=CORE + "NamespaceStatus",
    ),
)

# --- node ---------------------------------------------------------------------------------

TAINT = Object(
    {
        "key": Field(String(format="label-key"), required=True),
        "value": Field(String()),
        "effect": Field(String(enum=TAINT_EFFECTS), required=True),
        "timeAdded": Field(time()),
    },
    description="Repels pods that do not tolerate it.",
    name=CORE + "Taint",
)

NODE_SPEC = Object(
    {
        "podCIDR": Field(String(format="cidr")),
        "podCIDRs": Field(Array(String(format="cidr"), patch_strategy="merge")),
        "providerID": Field(String()),
        "unschedulable": Field(Boolean("Cordoned: no new pods are scheduled here.")),
        "taints": Field(Array(TAINT)),
        "externalID": Field(String()),
    },
    unsupported={"configSource": "dynamic kubelet config is not implemented"},
    description="The desired state of a node: pod CIDR, taints, cordon.",
    name=CORE + "NodeSpec",
)

NODE_STATUS = Object(
    {
        "capacity": Field(RESOURCE_LIST),
        "allocatable": Field(RESOURCE_LIST),
        "phase": Field(String()),
        "conditions": Field(
            Array(
                Object(
                    condition_fields(heartbeat="lastHeartbeatTime"),
                    name=CORE + "NodeCondition",
                ),
                merge_key="type",
                patch_strategy="merge",
            )
        ),
        "addresses": Field(
            Array(
                Object(
                    {
                        "type": Field(
                            String(
                                enum=(
                                    "Hostname",
                                    "InternalIP",
                                    "ExternalIP",
                                    "InternalDNS",
                                    "ExternalDNS",
                                )
                            ),
                            required=True,
                        ),
                        "address": Field(String(), required=True),
                    },
                    description="An address of the node.",
                    name=CORE + "NodeAddress",
                ),
                merge_key="type",
                patch_strategy="merge",
            )
        ),
        "daemonEndpoints": Field(
            Object(
                {
                    "kubeletEndpoint": Field(
                        Object({"Port": Field(PORT, required=True)}, name=CORE + "DaemonEndpoint")
                    )
                },
                name=CORE + "NodeDaemonEndpoints",
            )
        ),
        "nodeInfo": Field(
            Object(
                {
                    k: Field(String())
                    for k in (
                        "machineID",
                        "systemUUID",
                        "bootID",
                        "kernelVersion",
                        "osImage",
                        "containerRuntimeVersion",
                        "kubeletVersion",
                        "kubeProxyVersion",
                        "operatingSystem",
                        "architecture",
                    )
                },
                description="Kernel, OS, runtime and agent versions of the node.",
                name=CORE + "NodeSystemInfo",
            )
        ),
        "images": Field(
            Array(
                Object(
                    {
                        "names": Field(Array(String())),
                        "sizeBytes": Field(Integer(format="int64")),
                    },
                    name=CORE + "ContainerImage",
                )
            )
        ),
        "volumesInUse": Field(Array(String())),
        "volumesAttached": Field(
            Array(
                Object(
                    {"name": Field(String(), required=True), "devicePath": Field(String())},
                    name=CORE + "AttachedVolume",
                )
            )
        ),
        # Reported by newer kubelets; kept opaque (Ketch's node agent does not set them).
        "runtimeHandlers": Field(Array(FreeForm())),
        "features": Field(FreeForm()),
        "config": Field(FreeForm()),
    },
    description="Observed state of a node, written by its node agent.",
    name=CORE + "NodeStatus",
)

NODE = top_level(
    CORE + "Node",
    "A machine that runs pods (its node agent registers it).",
    spec=NODE_SPEC,
    status=NODE_STATUS,
)

# --- service ------------------------------------------------------------------------------

SERVICE_PORT = Object(
    {
        "name": Field(
            String(
                "Required when there is more than one port (DNS-1123 label).",
                format="dns1123-label",
            )
        ),
        "protocol": Field(String(enum=PROTOCOLS), default="TCP"),
        "appProtocol": Field(String()),
        "port": Field(PORT, required=True),
        "targetPort": Field(IntOrString("Port number or name on the pods; defaults to port.")),
        "nodePort": Field(
            Integer("Allocated from 30000-32767 when type is NodePort.", minimum=1, maximum=65535)
        ),
    },
    description="A port the Service exposes and where it forwards to.",
    name=CORE + "ServicePort",
)

SERVICE_SPEC = Object(
    {
        "ports": Field(Array(SERVICE_PORT, merge_key="port", patch_strategy="merge")),
        "selector": Field(
            Map(
                String(format="label-value"),
                "Pods with these labels are the endpoints.",
                key_format="label-key",
            )
        ),
        "clusterIP": Field(
            String('An IP from the service CIDR, "None" for headless, or empty to allocate.')
        ),
        "clusterIPs": Field(Array(String())),
        "type": Field(
            String(
                "ClusterIP or NodePort (LoadBalancer and ExternalName are not supported by Ketch).",
                enum=("ClusterIP", "NodePort"),
            ),
            default="ClusterIP",
        ),
        "sessionAffinity": Field(
            String(
                "ClientIP sends a client to the same endpoint for a while.",
                enum=("None", "ClientIP"),
            ),
            default="None",
        ),
        "sessionAffinityConfig": Field(
            Object(
                {
                    "clientIP": Field(
                        Object(
                            {"timeoutSeconds": Field(Integer(minimum=1, maximum=86400))},
                            name=CORE + "ClientIPConfig",
                        )
                    )
                },
                description="Settings of ClientIP session affinity.",
                name=CORE + "SessionAffinityConfig",
            )
        ),
        "publishNotReadyAddresses": Field(
            Boolean("Include endpoints that are not ready (e.g. for peer discovery).")
        ),
        "ipFamilies": Field(Array(String(enum=("IPv4",)))),
        "ipFamilyPolicy": Field(
            String(enum=("SingleStack", "PreferDualStack", "RequireDualStack"))
        ),
        "internalTrafficPolicy": Field(
            String(
                "Cluster: every ready endpoint serves (Local is not implemented by Ketch).",
                enum=("Cluster",),
            ),
            default="Cluster",
        ),
        "externalTrafficPolicy": Field(
            String(
                "NodePort only. Cluster: every ready endpoint serves (Local is not implemented by Ketch).",
                enum=("Cluster",),
            )
        ),
    },
    unsupported={
        "externalIPs": "external IPs are not implemented",
        "loadBalancerIP": "LoadBalancer services are not implemented",
        "loadBalancerSourceRanges": "LoadBalancer services are not implemented",
        "loadBalancerClass": "LoadBalancer services are not implemented",
        "allocateLoadBalancerNodePorts": "LoadBalancer services are not implemented",
        "healthCheckNodePort": "LoadBalancer services are not implemented",
        "externalName": "ExternalName services are not implemented",
        "trafficDistribution": NAMES_ONLY,
    },
    description="The desired state of a Service.",
    name=CORE + "ServiceSpec",
)

SERVICE = top_level(
    CORE + "Service",
    "A stable virtual IP and DNS name in front of the ready pods its selector matches.",
    spec=SERVICE_SPEC,
    status=Object(
        {
            "loadBalancer": Field(
                Object(
                    {
                        "ingress": Field(
                            Array(
                                Object(
                                    {"ip": Field(String()), "hostname": Field(String())},
                                    name=CORE + "LoadBalancerIngress",
                                )
                            )
                        )
                    },
                    name=CORE + "LoadBalancerStatus",
                )
            ),
            "conditions": Field(
                Array(
                    Object(
                        condition_fields(), name="io.k8s.apimachinery.pkg.apis.meta.v1.Condition"
                    ),
                    merge_key="type",
                    patch_strategy="merge",
                )
            ),
        },
        description="Observed state of a Service.",
        name=CORE + "ServiceStatus",
    ),
)

# --- endpoints ----------------------------------------------------------------------------

ENDPOINT_ADDRESS = Object(
    {
        "ip": Field(String(format="ip"), required=True),
        "hostname": Field(String()),
        "nodeName": Field(String()),
        "targetRef": Field(OBJECT_REFERENCE),
    },
    description="One endpoint: a pod IP.",
    name=CORE + "EndpointAddress",
)

ENDPOINTS = top_level(
    CORE + "Endpoints",
    "The addresses behind a Service, kept by the endpoints controller.",
    extra={
        "subsets": Field(
            Array(
                Object(
                    {
                        "addresses": Field(Array(ENDPOINT_ADDRESS, "Ready addresses.")),
                        "notReadyAddresses": Field(Array(ENDPOINT_ADDRESS)),
                        "ports": Field(
                            Array(
                                Object(
                                    {
                                        "name": Field(String()),
                                        "port": Field(PORT, required=True),
                                        "protocol": Field(String(enum=PROTOCOLS), default="TCP"),
                                        "appProtocol": Field(String()),
                                    },
                                    description="A port of the endpoints.",
                                    name=CORE + "EndpointPort",
                                )
                            )
                        ),
                    },
                    description="Addresses that share the same ports.",
                    name=CORE + "EndpointSubset",
                )
            )
        )
    },
)

# --- config -------------------------------------------------------------------------------

CONFIG_MAP = top_level(
    CORE + "ConfigMap",
    "Non-secret configuration as key-value pairs.",
    extra={
        "data": Field(Map(String(), key_format="config-key")),
        "binaryData": Field(Map(String(format="base64"), key_format="config-key")),
        "immutable": Field(Boolean("Once true, data can no longer change.")),
    },
)

SECRET = top_level(
    CORE + "Secret",
    "Sensitive data as key-value pairs, base64-encoded in data.",
    extra={
        "data": Field(Map(String(format="base64"), key_format="config-key")),
        "stringData": Field(
            Map(
                String(),
                "Write-only convenience: merged into data (base64-encoded) on write.",
                key_format="config-key",
            )
        ),
        "type": Field(String(), default="Opaque"),
        "immutable": Field(Boolean("Once true, data can no longer change.")),
    },
)

SERVICE_ACCOUNT = top_level(
    CORE + "ServiceAccount",
    "An identity for processes in pods.",
    extra={
        "secrets": Field(Array(OBJECT_REFERENCE, merge_key="name", patch_strategy="merge")),
        "imagePullSecrets": Field(Array(LOCAL_OBJECT_REFERENCE)),
        "automountServiceAccountToken": Field(Boolean()),
    },
)

# --- event --------------------------------------------------------------------------------

EVENT = top_level(
    CORE + "Event",
    "A report of something that happened to an object (kubectl describe shows them).",
    extra={
        "involvedObject": Field(OBJECT_REFERENCE, required=True),
        "reason": Field(String("Short, machine-readable, CamelCase.", max_length=128)),
        "message": Field(String()),
        "source": Field(
            Object(
                {"component": Field(String()), "host": Field(String())}, name=CORE + "EventSource"
            )
        ),
        "firstTimestamp": Field(time()),
        "lastTimestamp": Field(time()),
        "count": Field(Integer()),
        "type": Field(String(enum=("Normal", "Warning"))),
        "eventTime": Field(micro_time()),
        "series": Field(
            Object(
                {"count": Field(Integer()), "lastObservedTime": Field(micro_time())},
                name=CORE + "EventSeries",
            )
        ),
        "action": Field(String(max_length=128)),
        "related": Field(OBJECT_REFERENCE),
        "reportingComponent": Field(String(max_length=128)),
        "reportingInstance": Field(String(max_length=128)),
    },
)


KINDS: dict[str, Object] = {
    "Namespace": NAMESPACE,
    "Node": NODE,
    "Pod": POD,
    "Service": SERVICE,
    "Endpoints": ENDPOINTS,
    "ConfigMap": CONFIG_MAP,
    "Secret": SECRET,
    "Event": EVENT,
    "ServiceAccount": SERVICE_ACCOUNT,
    "Binding": BINDING,
    # kubectl sends DELETE bodies as {"kind": "DeleteOptions", "apiVersion": "v1"}.
    "DeleteOptions": DELETE_OPTIONS,
}
