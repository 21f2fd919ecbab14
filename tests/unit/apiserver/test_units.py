"""Unit tests of the apiserver's pure parts: paths, negotiation, auth, TLS, registry helpers."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from starlette.requests import Request

from apiserver.auth import ANONYMOUS, TokenAuthenticator, _parse_tokens, ensure_token_file
from apiserver.handlers import discovery, negotiation
from apiserver.handlers.paths import resolve
from apiserver.handlers.subresources import to_scale
from apiserver.registry.generic import decode_continue, encode_continue
from apiserver.registry.pods import PodStore, qos_class
from apiserver.registry.strategy import Strategy
from apiserver.tls import ensure_serving_cert, wanted_sans
from ketch.api import errors
from ketch.api.resources import lookup


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw, "query_string": b""})


class TestPaths:
    def test_namespaced_object_and_subresource(self) -> None:
        rp = resolve("", "v1", ["namespaces", "ns1", "pods", "p", "status"], "/x")
        assert (rp.info.plural, rp.namespace, rp.name, rp.subresource, rp.watch) == ("pods", "ns1", "p", "status", False)

    def test_all_namespaces_list_and_watch_prefix(self) -> None:
        rp = resolve("apps", "v1", ["watch", "deployments"], "/x")
        assert rp.info.plural == "deployments" and rp.namespace is None and rp.watch

    def test_namespace_itself_and_its_status(self) -> None:
        rp = resolve("", "v1", ["namespaces", "team-a"], "/x")
        assert rp.info.plural == "namespaces" and rp.name == "team-a" and rp.namespace is None
        rp = resolve("", "v1", ["namespaces", "team-a", "status"], "/x")
        assert rp.subresource == "status" and rp.name == "team-a"

    @pytest.mark.parametrize("segments", [["widgets"], ["pods", "p"], ["namespaces", "a", "pods", "p", "nosuch"],
                                          ["namespaces", "a", "pods", "p", "status", "more"]])
    def test_unknown_paths_are_404(self, segments: list[str]) -> None:
        with pytest.raises(errors.ApiError) as err:
            resolve("", "v1", segments, "/x")
        assert err.value.code == 404


class TestNegotiation:
    def test_kubectl_table_accept(self) -> None:
        accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        assert negotiation.wants_table(_request({"Accept": accept}))

    @pytest.mark.parametrize("accept", ["application/json", "application/vnd.kubernetes.protobuf,application/json", "",
                                        "application/json;as=Table;g=other.io"])
    def test_plain_json(self, accept: str) -> None:
        assert not negotiation.wants_table(_request({"Accept": accept}))


class TestAuth:
    def test_token_file_round_trip(self, tmp_path: Path) -> None:
        path = tmp_path / "tokens.csv"
        token = ensure_token_file(path)
        assert ensure_token_file(path) == token  # kept across restarts
        user = TokenAuthenticator.from_file(path).authenticate(f"Bearer {token}")
        assert user is not None and user.name == "admin" and "system:masters" in user.groups
        assert oct(path.stat().st_mode & 0o777) == "0o600"

    def test_csv_with_groups_and_bad_headers(self) -> None:
        users = _parse_tokens('abc,alice,u1,"dev,ops"\n# comment\n')
        assert users["abc"].groups == ("dev", "ops")
        auth = TokenAuthenticator(users)
        assert auth.authenticate("Bearer abc").name == "alice"
        assert auth.authenticate("Basic abc") is None
        assert auth.authenticate("Bearer nope") is None
        assert auth.authenticate(None) is None
        assert ANONYMOUS.name == "system:anonymous"


def test_serving_cert_covers_sans_and_is_reissued_for_new_ones(tmp_path: Path) -> None:
    files = ensure_serving_cert(tmp_path, wanted_sans("10.1.2.3", []))
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address("10.1.2.3") in sans.get_values_for_type(x509.IPAddress)
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    again = ensure_serving_cert(tmp_path, wanted_sans("10.1.2.3", ["api.example.com"]))
    cert2 = x509.load_pem_x509_certificate(again.cert.read_bytes())
    assert "api.example.com" in cert2.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert x509.load_pem_x509_certificate(again.ca_cert.read_bytes()) == ca  # the CA is kept


def test_continue_token_round_trip_and_garbage() -> None:
    token = encode_continue(42, "ns/name")
    assert decode_continue(token) == (42, "ns/name\x00")
    with pytest.raises(errors.ApiError) as err:
        decode_continue("%%%")
    assert err.value.code == 400


def test_generation_counts_spec_not_metadata_or_status() -> None:
    s = Strategy(lookup("apps", "v1", "deployments"))
    old = {"metadata": {"labels": {}}, "spec": {"replicas": 1}, "status": {}}
    assert not s.generation_changed({"metadata": {"labels": {"a": "b"}}, "spec": {"replicas": 1}, "status": {"x": 1}}, old)
    assert s.generation_changed({"metadata": {}, "spec": {"replicas": 2}}, old)


def test_status_update_keeps_everything_but_status() -> None:
    s = Strategy(lookup("apps", "v1", "deployments"))
    old = {"metadata": {"name": "d", "labels": {"a": "1"}, "resourceVersion": "5"}, "spec": {"replicas": 1}}
    new = {"metadata": {"name": "d", "labels": {"a": "2"}}, "spec": {"replicas": 9}, "status": {"replicas": 3}}
    out = s.prepare_status_update(new, old)
    assert out["spec"] == {"replicas": 1} and out["metadata"]["labels"] == {"a": "1"}
    assert out["status"] == {"replicas": 3}


def test_pod_qos_and_grace() -> None:
    assert qos_class({"spec": {"containers": [{}]}}) == "BestEffort"
    guaranteed = {"resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}}
    assert qos_class({"spec": {"containers": [guaranteed]}}) == "Guaranteed"
    assert qos_class({"spec": {"containers": [{"resources": {"requests": {"cpu": "1"}}}]}}) == "Burstable"
    store = PodStore.__new__(PodStore)
    bound = {"spec": {"nodeName": "n", "terminationGracePeriodSeconds": 12}}
    assert store.grace_period(bound, {}) == 12
    assert store.grace_period(bound, {"gracePeriodSeconds": 0}) == 0
    assert store.grace_period({"spec": {}}, {}) == 0
    assert store.grace_period({"spec": {"nodeName": "n"}, "status": {"phase": "Succeeded"}}, {}) == 0


def test_scale_view() -> None:
    d = {"metadata": {"name": "d", "namespace": "n", "resourceVersion": "3", "uid": "u"},
         "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "x", "b": "y"},
                                              "matchExpressions": [{"key": "t", "operator": "In", "values": ["1", "2"]}]}},
         "status": {"replicas": 2}}
    scale = to_scale(d)
    assert scale["apiVersion"] == "autoscaling/v1" and scale["spec"] == {"replicas": 4}
    assert scale["status"] == {"replicas": 2, "selector": "app=x,b=y,t in (1,2)"}


def test_discovery_lists_subresources_with_their_kinds() -> None:
    apps = discovery.api_resource_list("apps", "v1")
    entries = {r["name"]: r for r in apps["resources"]}
    assert entries["deployments"]["shortNames"] == ["deploy"]
    assert entries["deployments/scale"]["group"] == "autoscaling"
    assert discovery.api_resource_list("nope", "v1") is None
    assert discovery.version_info()["gitVersion"].startswith("v1.32.0-ketch.")
