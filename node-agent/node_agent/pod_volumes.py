"""A pod's volumes, made real on the node and mounted into its containers.

Each volume gets a directory ``<root>/pods/<uid>/volumes/<name>``:
emptyDir is that directory (a tmpfs with ``medium: Memory``); configMap,
secret, projected and downwardAPI volumes are files written there (secrets on
a tmpfs so they never reach the disk) and refreshed on every sync; hostPath is
the host path itself, checked against its ``type``. Everything under the pod's
directory is removed when the pod is cleaned up.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from node_agent.config_sources import ConfigError, Lookup, source_data
from node_agent.env import field_value, resource_value
from node_agent.runtime.linux.syscalls import MNT_DETACH, mount, umount2


def _is_mountpoint(path: Path) -> bool:
    return os.path.ismount(path)


def _mount_tmpfs(path: Path, size: str | None = None) -> None:
    if _is_mountpoint(path):
        return
    data = "mode=0755" + (f",size={size}" if size else "")
    mount("tmpfs", str(path), "tmpfs", 0, data)


def _write_files(directory: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """Write the projected files atomically and remove files no longer projected."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for rel, (content, mode) in files.items():
        rel = os.path.normpath(rel)
        if rel.startswith("..") or os.path.isabs(rel):
            raise ConfigError(f"volume item path {rel!r} must be relative and stay inside the volume")
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        wanted.add(target)
        if target.exists() and target.read_bytes() == content and stat.S_IMODE(target.stat().st_mode) == mode:
            continue
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(content)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    for path in sorted(directory.rglob("*"), reverse=True):
        if path.is_file() and path not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def _items(data: dict[str, bytes], items: list[dict] | None, default_mode: int, what: str,
           optional: bool) -> dict[str, tuple[bytes, int]]:
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    out = {}
    for item in items:
        if item["key"] not in data:
            if optional:
                continue
            raise ConfigError(f"{what}: key {item['key']!r} not found")
        out[item["path"]] = (data[item["key"]], int(item.get("mode", default_mode)))
    return out


class PodVolumes:
    def __init__(self, root: Path) -> None:
        self.root = root

    def pod_dir(self, uid: str) -> Path:
        return self.root / "pods" / uid

    async def setup(self, pod: dict, lookup: Lookup, *, pod_ip: str = "", host_ip: str = "",
                    node_allocatable: dict[str, str] | None = None) -> dict[str, str]:
        """Volume name -> host path, for every volume of the pod (idempotent: run on every sync)."""
        uid = pod["metadata"]["uid"]
        namespace = pod["metadata"]["namespace"]

        async def data(kind: str, name: str, optional: bool) -> dict[str, bytes] | None:
            return await source_data(lookup, kind, namespace, name, optional)

        base = self.pod_dir(uid) / "volumes"
        paths: dict[str, str] = {}
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            name = volume["name"]
            directory = base / name
            if "hostPath" in volume:
                paths[name] = self._host_path(volume["hostPath"])
                continue
            directory.mkdir(parents=True, exist_ok=True)
            if "emptyDir" in volume:
                empty = volume["emptyDir"] or {}
                if empty.get("medium") == "Memory":
                    _mount_tmpfs(directory, empty.get("sizeLimit"))
                else:
                    os.chmod(directory, 0o777)  # as the kubelet: any container user may write
            elif "configMap" in volume:
                await self._config_map(data, volume["configMap"], directory)
            elif "secret" in volume:
                _mount_tmpfs(directory)
                await self._secret(data, volume["secret"], directory)
            elif "downwardAPI" in volume:
                files = self._downward(pod, volume["downwardAPI"], pod_ip, host_ip, node_allocatable or {})
                _write_files(directory, files)
            elif "projected" in volume:
                await self._projected(data, pod, volume["projected"], directory, pod_ip, host_ip, node_allocatable or {})
            else:
                raise ConfigError(f"volume {name!r}: unsupported volume source")
            paths[name] = str(directory)
        return paths

    def _host_path(self, spec: dict) -> str:
        path = Path(spec["path"])
        kind = spec.get("type") or ""
        if kind == "DirectoryOrCreate":
            path.mkdir(parents=True, exist_ok=True, mode=0o755)
        elif kind == "FileOrCreate":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(exist_ok=True)
        checks = {
            "Directory": path.is_dir, "File": path.is_file, "Socket": path.is_socket,
            "CharDevice": path.is_char_device, "BlockDevice": path.is_block_device,
        }
        if kind in checks and not checks[kind]():
            raise ConfigError(f"hostPath type check failed: {path} is not a {kind}")
        return str(path)

    async def _config_map(self, data_of, spec: dict, directory: Path) -> None:  # noqa: ANN001
        optional = bool(spec.get("optional"))
        data = await data_of("configmaps", spec["name"], optional) or {}
        _write_files(directory, _items(data, spec.get("items"), int(spec.get("defaultMode", 0o644)),
                                       f"configmap {spec['name']}", optional))

    async def _secret(self, data_of, spec: dict, directory: Path) -> None:  # noqa: ANN001
        optional = bool(spec.get("optional"))
        data = await data_of("secrets", spec["secretName"], optional) or {}
        _write_files(directory, _items(data, spec.get("items"), int(spec.get("defaultMode", 0o644)),
                                       f"secret {spec['secretName']}", optional))

    def _downward(self, pod: dict, spec: dict, pod_ip: str, host_ip: str, alloc: dict) -> dict[str, tuple[bytes, int]]:
        mode = int(spec.get("defaultMode", 0o644))
        files = {}
        for item in spec.get("items") or []:
            if "fieldRef" in item:
                value = field_value(pod, item["fieldRef"]["fieldPath"], pod_ip, host_ip)
            else:
                ref = item["resourceFieldRef"]
                container = next((c for c in pod["spec"]["containers"] if c["name"] == ref.get("containerName")),
                                 pod["spec"]["containers"][0])
                value = resource_value(container, ref, alloc)
            files[item["path"]] = (value.encode(), int(item.get("mode", mode)))
        return files

    async def _projected(self, data_of, pod: dict, spec: dict, directory: Path,  # noqa: ANN001
                         pod_ip: str, host_ip: str, alloc: dict) -> None:
        mode = int(spec.get("defaultMode", 0o644))
        files: dict[str, tuple[bytes, int]] = {}
        for source in spec.get("sources") or []:
            if "configMap" in source:
                s = source["configMap"]
                data = await data_of("configmaps", s["name"], bool(s.get("optional"))) or {}
                files.update(_items(data, s.get("items"), mode, f"configmap {s['name']}", bool(s.get("optional"))))
            elif "secret" in source:
                s = source["secret"]
                data = await data_of("secrets", s["name"], bool(s.get("optional"))) or {}
                files.update(_items(data, s.get("items"), mode, f"secret {s['name']}", bool(s.get("optional"))))
            elif "downwardAPI" in source:
                files.update(self._downward(pod, {**source["downwardAPI"], "defaultMode": mode}, pod_ip, host_ip, alloc))
            else:
                raise ConfigError("projected volume: unsupported source (configMap, secret, downwardAPI are)")
        _write_files(directory, files)

    def cleanup(self, uid: str) -> None:
        """Unmount tmpfs volumes and remove everything the pod had on the node."""
        pod_dir = self.pod_dir(uid)
        volumes = pod_dir / "volumes"
        if volumes.is_dir():
            for directory in volumes.iterdir():
                if _is_mountpoint(directory):
                    umount2(str(directory), MNT_DETACH)
        shutil.rmtree(pod_dir, ignore_errors=True)

    def known_pod_uids(self) -> list[str]:
        pods = self.root / "pods"
        return [p.name for p in pods.iterdir()] if pods.is_dir() else []
