"""Kubeconfig files: read, merge and resolve them exactly as kubectl does.

Why a JSON cache: importing PyYAML costs ~15 ms, as much as the whole rest of a
`ketch get pods`. A parsed kubeconfig is cached as JSON (mode 0600, next to the
user's other caches) keyed by the file's path, size and mtime, so YAML is only
imported when a kubeconfig changed.
"""

from __future__ import annotations

import base64
import json
import os

DEFAULT_NAMESPACE = "default"


class KubeconfigError(Exception):
    """A kubeconfig that cannot be used; the message says what to fix."""


# --------------------------------------------------------------------------- files


def default_paths(environ: dict[str, str] | None = None) -> list[str]:
    """The files kubectl would read: `$KUBECONFIG` (colon list) or `~/.kube/config`."""
    env = os.environ if environ is None else environ
    listed = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    if listed:
        seen: list[str] = []
        for p in listed:
            if p not in seen:
                seen.append(p)
        return seen
    return [os.path.join(os.path.expanduser("~"), ".kube", "config")]


def write_target(environ: dict[str, str] | None = None) -> str:
    """The file a new context goes to: the first `$KUBECONFIG` entry, else ~/.kube/config."""
    return default_paths(environ)[0]


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ketch", "kubeconfig")


def read_file(path: str) -> dict[str, object]:
    """Parse one kubeconfig file (YAML or JSON); {} when it is empty."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {}
    key = os.path.abspath(path).replace("%", "%25").replace("/", "%2F")
    cache = os.path.join(_cache_dir(), key + ".json")
    stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
    try:
        with open(cache, encoding="utf-8") as f:
            cached = json.load(f)
        if cached.get("stamp") == stamp:
            return cached["config"]
    except (OSError, ValueError, KeyError):
        pass
    with open(path, encoding="utf-8") as f:
        text = f.read()
    config = parse_text(text, path)
    _write_cache(cache, {"stamp": stamp, "config": config})
    return config


def parse_text(text: str, source: str = "<kubeconfig>") -> dict[str, object]:
    """YAML (a superset of JSON) into a dict, with a message naming the file on error."""
    import yaml

    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        raise KubeconfigError(f"error loading config file {source!r}: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KubeconfigError(f"error loading config file {source!r}: not a mapping")
    return data


def _write_cache(path: str, data: dict[str, object]) -> None:
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except OSError:
        pass  # a cache we cannot write only costs speed


def dump_yaml(config: dict[str, object]) -> str:
    import yaml

    return yaml.safe_dump(config, default_flow_style=False, sort_keys=False)


def write_file(path: str, config: dict[str, object]) -> None:
    """Write a kubeconfig atomically with mode 0600 (it holds credentials)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o755, exist_ok=True)
    tmp = f"{path}.ketch-{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(dump_yaml(config))
    os.replace(tmp, path)


# --------------------------------------------------------------------------- merging


class Entry:
    """A named cluster, user or context, and the file that defined it."""

    __slots__ = ("name", "value", "source")

    def __init__(self, name: str, value: dict[str, object], source: str):
        self.name, self.value, self.source = name, value, source


class Kubeconfig:
    """Several kubeconfig files merged with kubectl's rules: the first to define a name wins."""

    def __init__(self, paths: list[str]):
        self.paths = paths
        self.clusters: dict[str, Entry] = {}
        self.users: dict[str, Entry] = {}
        self.contexts: dict[str, Entry] = {}
        self.current_context = ""
        self.current_context_source = ""

    def to_dict(self) -> dict[str, object]:
        """The merged view, in kubeconfig shape (what `config view` prints)."""

        def named(entries: dict[str, Entry], key: str) -> list[dict[str, object]]:
            return [{"name": e.name, key: e.value} for e in entries.values()]

        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": named(self.clusters, "cluster"),
            "contexts": named(self.contexts, "context"),
            "current-context": self.current_context,
            "preferences": {},
            "users": named(self.users, "user"),
        }


def merge(files: list[tuple[str, dict[str, object]]]) -> Kubeconfig:
    """Merge parsed files in order, as kubectl does for a `$KUBECONFIG` list."""
    kc = Kubeconfig(paths=[p for p, _ in files])
    for path, data in files:
        for section, key, target in (
            ("clusters", "cluster", kc.clusters),
            ("users", "user", kc.users),
            ("contexts", "context", kc.contexts),
        ):
            for item in data.get(section) or []:
                if not isinstance(item, dict) or not item.get("name"):
                    continue
                name = str(item["name"])
                if name not in target:
                    target[name] = Entry(name, dict(item.get(key) or {}), path)
        current = data.get("current-context") or ""
        if current and not kc.current_context:
            kc.current_context = str(current)
            kc.current_context_source = path
    return kc


def load(explicit: str | None = None, environ: dict[str, str] | None = None) -> Kubeconfig:
    """`--kubeconfig FILE` alone if given (it must exist), else the default chain."""
    if explicit:
        if not os.path.exists(explicit):
            raise KubeconfigError(f'stat {explicit}: no such file or directory')
        paths = [explicit]
    else:
        paths = default_paths(environ)
    return merge([(p, read_file(p)) for p in paths])


# --------------------------------------------------------------------------- resolving


class Connection:
    """Everything needed to reach and authenticate to one API server.

    (Plain classes, not dataclasses, here and in rest.py: `dataclasses` imports
    `inspect`, ~7 ms of start-up.)
    """

    def __init__(self, server: str, namespace: str = DEFAULT_NAMESPACE, context: str = ""):
        self.server = server
        self.namespace = namespace
        self.context = context
        self.token: str | None = None
        self.username: str | None = None
        self.password: str | None = None
        self.ca_data: bytes | None = None  # PEM
        self.client_cert_data: bytes | None = None  # PEM
        self.client_key_data: bytes | None = None  # PEM
        self.insecure = False
        self.tls_server_name: str | None = None


class Overrides:
    """Command-line flags that override the kubeconfig (kubectl's names)."""

    def __init__(self, context: str | None = None, cluster: str | None = None,
                 user: str | None = None, namespace: str | None = None,
                 server: str | None = None, token: str | None = None,
                 insecure: bool = False, ca_file: str | None = None):
        self.context, self.cluster, self.user = context, cluster, user
        self.namespace, self.server, self.token = namespace, server, token
        self.insecure, self.ca_file = insecure, ca_file


def _rel(path: str, source: str) -> str:
    """Relative paths in a kubeconfig are relative to the file that holds them."""
    if os.path.isabs(path):
        return path
    return os.path.join(os.path.dirname(os.path.abspath(source)), path)


def _data_or_file(entry: Entry, data_key: str, file_key: str) -> bytes | None:
    value = entry.value
    if value.get(data_key):
        try:
            return base64.b64decode(value[data_key])
        except ValueError as e:
            raise KubeconfigError(f"{data_key} of {entry.name!r} is not base64: {e}") from None
    if value.get(file_key):
        path = _rel(str(value[file_key]), entry.source)
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as e:
            raise KubeconfigError(f"unable to read {file_key} {path}: {e.strerror}") from None
    return None


def resolve(kc: Kubeconfig, overrides: Overrides | None = None) -> Connection:
    """The server, credentials and namespace the current (or chosen) context points at."""
    o = overrides or Overrides()
    context_name = o.context or kc.current_context
    context: dict[str, object] = {}
    if context_name:
        ctx_entry = kc.contexts.get(context_name)
        if ctx_entry is None:
            raise KubeconfigError(f'context "{context_name}" does not exist')
        context = ctx_entry.value
    cluster_name = o.cluster or context.get("cluster") or ""
    user_name = o.user or context.get("user") or ""
    cluster = kc.clusters.get(cluster_name)
    user = kc.users.get(user_name)
    if cluster_name and cluster is None and not o.server:
        raise KubeconfigError(f'cluster "{cluster_name}" does not exist (context "{context_name}")')
    server = o.server or (cluster.value.get("server") if cluster else None)
    if not server:
        where = ", ".join(kc.paths) or "no kubeconfig file"
        raise KubeconfigError(
            f"no cluster configured (read {where}): start a local one with `ketch up`, "
            "or pass --kubeconfig / set KUBECONFIG"
        )
    conn = Connection(server=str(server).rstrip("/"), context=context_name)
    conn.namespace = o.namespace or context.get("namespace") or DEFAULT_NAMESPACE
    if cluster is not None:
        conn.ca_data = _data_or_file(cluster, "certificate-authority-data", "certificate-authority")
        conn.insecure = bool(cluster.value.get("insecure-skip-tls-verify"))
        conn.tls_server_name = cluster.value.get("tls-server-name")
    if o.ca_file:
        with open(o.ca_file, "rb") as f:
            conn.ca_data = f.read()
    if o.insecure:
        conn.insecure = True
    if user is not None:
        u = user.value
        conn.token = u.get("token")
        if not conn.token and u.get("tokenFile"):
            with open(_rel(str(u["tokenFile"]), user.source), encoding="utf-8") as f:
                conn.token = f.read().strip()
        conn.username, conn.password = u.get("username"), u.get("password")
        conn.client_cert_data = _data_or_file(
            user, "client-certificate-data", "client-certificate"
        )
        conn.client_key_data = _data_or_file(user, "client-key-data", "client-key")
    if o.token:
        conn.token = o.token
    return conn


# --------------------------------------------------------------------------- editing


def upsert_named(items: list[dict[str, object]], name: str, key: str, value: dict[str, object]) -> None:
    """Replace the entry called `name` in a clusters/users/contexts list, or append it."""
    for item in items:
        if item.get("name") == name:
            item[key] = value
            return
    items.append({"name": name, key: value})


def merge_context_into_file(
    path: str,
    *,
    name: str,
    cluster_name: str,
    user_name: str,
    cluster: dict[str, object],
    user: dict[str, object],
    namespace: str | None = None,
    make_current: bool = True,
) -> None:
    """Add or replace one cluster, user and context in a kubeconfig file, keeping the rest.

    This is what `ketch up` does to the user's kubeconfig, as kind and minikube do.
    """
    data = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            data = parse_text(f.read(), path)
    data.setdefault("apiVersion", "v1")
    data.setdefault("kind", "Config")
    for section in ("clusters", "users", "contexts"):
        if not isinstance(data.get(section), list):
            data[section] = []
    context: dict[str, object] = {"cluster": cluster_name, "user": user_name}
    if namespace:
        context["namespace"] = namespace
    upsert_named(data["clusters"], cluster_name, "cluster", cluster)
    upsert_named(data["users"], user_name, "user", user)
    upsert_named(data["contexts"], name, "context", context)
    if make_current or not data.get("current-context"):
        data["current-context"] = name
    data.setdefault("preferences", {})
    write_file(path, data)


def edit_file(path: str, change) -> None:
    """Read one file, let `change(data)` edit it in place, write it back."""
    data = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            data = parse_text(f.read(), path)
    change(data)
    write_file(path, data)
