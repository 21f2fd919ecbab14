"""Kubeconfig reading, merging and resolving follow kubectl's rules."""

from __future__ import annotations

import base64
import os

import pytest
import yaml

from ketch.client import kubeconfig as kc


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def write(path, data) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


def config(cluster="c1", server="https://one:6443", user="u1", token="t1", context="ctx1",
           current=None, namespace=None):
    ctx = {"cluster": cluster, "user": user}
    if namespace:
        ctx["namespace"] = namespace
    data = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": ctx}],
    }
    if current:
        data["current-context"] = current
    return data


def test_default_paths_use_kubeconfig_list_or_home(monkeypatch, tmp_path):
    assert kc.default_paths({"KUBECONFIG": "/a:/b:/a"}) == ["/a", "/b"]
    monkeypatch.setenv("HOME", str(tmp_path))
    assert kc.default_paths({}) == [str(tmp_path / ".kube" / "config")]


def test_first_file_wins_for_names_and_current_context(tmp_path):
    a = write(tmp_path / "a", config(server="https://a:1", token="ta", current=""))
    b = write(tmp_path / "b", config(server="https://b:2", token="tb", current="ctx1"))
    merged = kc.load(environ={"KUBECONFIG": f"{a}:{b}"})
    assert merged.current_context == "ctx1"
    assert merged.current_context_source == b
    conn = kc.resolve(merged)
    assert conn.server == "https://a:1"  # cluster c1 defined first in a
    assert conn.token == "ta"


def test_namespace_from_context_and_flag(tmp_path):
    a = write(tmp_path / "a", config(current="ctx1", namespace="team"))
    merged = kc.load(a)
    assert kc.resolve(merged).namespace == "team"
    assert kc.resolve(merged, kc.Overrides(namespace="other")).namespace == "other"
    plain = kc.load(write(tmp_path / "b", config(current="ctx1")))
    assert kc.resolve(plain).namespace == "default"


def test_unknown_context_is_an_error(tmp_path):
    merged = kc.load(write(tmp_path / "a", config(current="ctx1")))
    with pytest.raises(kc.KubeconfigError, match='context "nope" does not exist'):
        kc.resolve(merged, kc.Overrides(context="nope"))


def test_ca_file_relative_to_kubeconfig_and_ca_data(tmp_path):
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.crt").write_bytes(b"PEM-FROM-FILE")
    data = config(current="ctx1")
    data["clusters"][0]["cluster"]["certificate-authority"] = "pki/ca.crt"
    merged = kc.load(write(tmp_path / "cfg", data))
    assert kc.resolve(merged).ca_data == b"PEM-FROM-FILE"
    data["clusters"][0]["cluster"] = {"server": "https://x", "certificate-authority-data":
                                      base64.b64encode(b"PEM-DATA").decode(),
                                      "insecure-skip-tls-verify": True}
    conn = kc.resolve(kc.load(write(tmp_path / "cfg2", data)))
    assert conn.ca_data == b"PEM-DATA" and conn.insecure


def test_token_file_and_client_cert_data(tmp_path):
    (tmp_path / "tok").write_text("secret-token\n")
    data = config(current="ctx1")
    data["users"][0]["user"] = {"tokenFile": "tok",
                                "client-certificate-data": base64.b64encode(b"CERT").decode(),
                                "client-key-data": base64.b64encode(b"KEY").decode()}
    conn = kc.resolve(kc.load(write(tmp_path / "cfg", data)))
    assert conn.token == "secret-token"
    assert (conn.client_cert_data, conn.client_key_data) == (b"CERT", b"KEY")


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(kc.KubeconfigError):
        kc.load(str(tmp_path / "absent"))


def test_parsed_file_cache_follows_changes(tmp_path):
    path = tmp_path / "cfg"
    write(path, config(server="https://first", current="ctx1"))
    assert kc.resolve(kc.load(str(path))).server == "https://first"
    assert os.listdir(tmp_path / "cache" / "ketch" / "kubeconfig")
    write(path, config(server="https://second-longer", current="ctx1"))
    assert kc.resolve(kc.load(str(path))).server == "https://second-longer"


def test_merge_context_into_file_keeps_everything_else(tmp_path):
    path = tmp_path / "config"
    original = config(current="ctx1")
    original["preferences"] = {"colors": True}
    write(path, original)
    kc.merge_context_into_file(str(path), name="ketch", cluster_name="ketch", user_name="ketch-admin",
                               cluster={"server": "https://127.0.0.1:6443"}, user={"token": "T"})
    data = yaml.safe_load(path.read_text())
    assert data["current-context"] == "ketch"
    assert [c["name"] for c in data["clusters"]] == ["c1", "ketch"]
    assert [u["name"] for u in data["users"]] == ["u1", "ketch-admin"]
    assert {c["name"] for c in data["contexts"]} == {"ctx1", "ketch"}
    assert data["preferences"] == {"colors": True}
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    # again with a new token: replaced, not duplicated
    kc.merge_context_into_file(str(path), name="ketch", cluster_name="ketch", user_name="ketch-admin",
                               cluster={"server": "https://127.0.0.1:6443"}, user={"token": "T2"})
    data = yaml.safe_load(path.read_text())
    assert [u["user"] for u in data["users"] if u["name"] == "ketch-admin"] == [{"token": "T2"}]
    conn = kc.resolve(kc.load(str(path)))
    assert (conn.server, conn.token) == ("https://127.0.0.1:6443", "T2")


def test_merge_context_creates_missing_file_and_directory(tmp_path):
    path = tmp_path / "new" / ".kube" / "config"
    kc.merge_context_into_file(str(path), name="ketch", cluster_name="ketch", user_name="ketch-admin",
                               cluster={"server": "https://h:1"}, user={"token": "x"})
    assert kc.resolve(kc.load(str(path))).server == "https://h:1"
