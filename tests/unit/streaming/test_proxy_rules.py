"""The apiserver proxy's checks and the agent's log options, without any server."""

import pytest

from apiserver import node_proxy
from ketch.api.errors import ApiError


def _pod(containers=("app", "side"), annotations=None, node="n1", phase="Running", statuses=None):
    return {"metadata": {"name": "p", "annotations": annotations or {}},
            "spec": {"nodeName": node, "containers": [{"name": c} for c in containers]},
            "status": {"phase": phase, "containerStatuses": statuses or []}}


def test_default_container_is_the_annotation_or_the_first():
    assert node_proxy.default_container(_pod()) == "app"
    pod = _pod(annotations={"kubectl.kubernetes.io/default-container": "side"})
    assert node_proxy.default_container(pod) == "side"
    pod = _pod(annotations={"kubectl.kubernetes.io/default-container": "gone"})
    assert node_proxy.default_container(pod) == "app"


def _message(fn, *args, **kwargs) -> tuple[int, str]:
    with pytest.raises(ApiError) as info:
        fn(*args, **kwargs)
    return info.value.code, info.value.message


def test_check_pod_wording_matches_kubernetes():
    running = [{"name": "app", "state": {"running": {}}}]
    node_proxy.check_pod(_pod(statuses=running), "exec", "app")
    assert _message(node_proxy.check_pod, _pod(), "log", "nope") == (400, "container nope is not valid for pod p")
    assert _message(node_proxy.check_pod, _pod(node=""), "log", "app") == (
        400, "pod p does not have a host assigned")
    assert _message(node_proxy.check_pod, _pod(), "log", "app") == (
        400, 'container "app" in pod "p" is waiting to start: ContainerCreating')
    waiting = [{"name": "app", "state": {"waiting": {"reason": "ErrImagePull"}}}]
    assert _message(node_proxy.check_pod, _pod(statuses=waiting), "exec", "app")[1].endswith(": ErrImagePull")
    assert _message(node_proxy.check_pod, _pod(phase="Succeeded"), "exec", "app") == (
        400, "cannot exec into a container in a completed pod; current phase is Succeeded")
    done = [{"name": "app", "state": {"terminated": {"exitCode": 0}}}]
    node_proxy.check_pod(_pod(statuses=done, phase="Succeeded"), "log", "app")  # logs of a finished container
    crashing = [{"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 1}}}]
    node_proxy.check_pod(_pod(statuses=crashing), "log", "app")  # the last instance's log is there


def test_node_address_prefers_internal_ip_and_the_reported_port():
    node = {"metadata": {"name": "n1"}, "status": {
        "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.5"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 11250}}}}
    assert node_proxy.node_address(node) == ("10.0.0.5", 11250)
    assert node_proxy.node_address({"metadata": {"name": "n"}, "status": {
        "addresses": [{"type": "InternalIP", "address": "10.0.0.6"}]}}) == ("10.0.0.6", 10250)
    with pytest.raises(ApiError):
        node_proxy.node_address({"metadata": {"name": "n"}, "status": {}})


def test_nodes_proxy_paths():
    assert node_proxy._nodes_proxy_rest("/api/v1/nodes/n1/proxy/stats/summary") == ("n1", "stats/summary")
    assert node_proxy._nodes_proxy_rest("/api/v1/nodes/n1/proxy") is None  # the router serves this one
    assert node_proxy._nodes_proxy_rest("/api/v1/nodes/n1/status") is None
    assert node_proxy._pod_stream_path("/api/v1/namespaces/ns/pods/p/exec") == ("ns", "p", "exec")
    with pytest.raises(ApiError):
        node_proxy._pod_stream_path("/api/v1/namespaces/ns/pods/p/log")


def test_client_cert_is_signed_by_the_cluster_ca_and_made_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from apiserver.tls import ensure_ca

    ca_cert, _ = ensure_ca(tmp_path)
    with ThreadPoolExecutor(4) as pool:  # workers starting together agree on one pair
        pairs = list(pool.map(lambda _: node_proxy.ensure_client_cert(tmp_path), range(4)))
    crt, key = pairs[0]
    first = crt.read_bytes()
    cert = x509.load_pem_x509_certificate(first)
    assert cert.issuer == ca_cert.subject
    ca_cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    node_proxy.client_ssl_context(crt, key)  # the key matches the certificate
    assert node_proxy.ensure_client_cert(tmp_path)[0].read_bytes() == first  # kept across restarts
