"""Who may call the agent's API, and the agent's own serving certificate.

As the kubelet does with `--client-ca-file`: every caller must present a client
certificate signed by the cluster CA (the apiserver's `apiserver-kubelet-client`
certificate); the CA is the one the agent's kubeconfig trusts. The serving
certificate is self-signed and made on first start: the apiserver does not
verify it (kube-apiserver does not verify kubelets by default either).
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


class AuthSetupError(Exception):
    """The agent cannot tell who its callers are (no cluster CA to verify them against)."""


def cluster_ca_pem(kubeconfig: str | os.PathLike[str], context: str | None = None) -> bytes:
    """The PEM of the CA the kubeconfig's cluster trusts (certificate-authority[-data])."""
    path = Path(kubeconfig)
    config = yaml.safe_load(path.read_text()) or {}
    ctx_name = context or config.get("current-context")
    contexts = {c.get("name"): c.get("context") or {} for c in config.get("contexts") or []}
    clusters = {c.get("name"): c.get("cluster") or {} for c in config.get("clusters") or []}
    cluster = clusters.get((contexts.get(ctx_name) or {}).get("cluster"))
    if cluster is None and len(clusters) == 1:
        cluster = next(iter(clusters.values()))
    if not cluster:
        raise AuthSetupError(f"{path}: no cluster for context {ctx_name!r}: cannot verify apiserver client certs")
    if cluster.get("certificate-authority-data"):
        return base64.b64decode(cluster["certificate-authority-data"])
    if cluster.get("certificate-authority"):
        ca = Path(cluster["certificate-authority"])
        return (ca if ca.is_absolute() else path.parent / ca).read_bytes()
    raise AuthSetupError(f"{path}: the cluster has no certificate-authority(-data): the agent needs the cluster "
                         "CA to verify the apiserver's client certificate")


def ensure_serving_cert(cert_dir: Path, node_name: str, addresses: list[str]) -> tuple[Path, Path]:
    """(cert, key) of a self-signed serving certificate for this node, re-made when its SANs changed."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    crt_path, key_path = cert_dir / "agent.crt", cert_dir / "agent.key"
    sans: list[x509.GeneralName] = [x509.DNSName(node_name), x509.DNSName("localhost")]
    for addr in dict.fromkeys(addresses):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(addr)))
        except ValueError:
            sans.append(x509.DNSName(addr))
    if crt_path.exists() and key_path.exists():
        try:
            have = x509.load_pem_x509_certificate(crt_path.read_bytes()).extensions.get_extension_for_class(
                x509.SubjectAlternativeName).value
            if all(s in have for s in sans):
                return crt_path, key_path
        except (ValueError, x509.ExtensionNotFound):
            pass
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{node_name}@ketch-node-agent")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    crt_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return crt_path, key_path


def write_client_ca(cert_dir: Path, pem: bytes) -> Path:
    """The cluster CA as a file (what the TLS layer loads client-verification roots from)."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    path = cert_dir / "client-ca.crt"
    path.write_bytes(pem)
    return path
