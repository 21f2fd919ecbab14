"""The real kubectl against a fake apiserver on loopback, for tests of our wire formats.

The fake server is the test's own (it answers what the test is about); this module
only serves it, points a throwaway kubeconfig at it, and runs kubectl with a
private HOME and discovery cache.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import HTTPServer
from pathlib import Path

KUBECTL = shutil.which("kubectl")


@contextmanager
def serving(server: HTTPServer) -> Iterator[HTTPServer]:
    """Serve in a daemon thread until the block ends."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def write_kubeconfig(tmp: Path, port: int) -> Path:
    path = tmp / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "t", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "t", "user": {"token": "t"}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t", "namespace": "default"}}],
        "current-context": "t",
    }))
    return path


def run_kubectl(tmp: Path, kubeconfig: Path, *args: str, stdin: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KUBECTL, *args, "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp / "cache")],
        capture_output=True, text=True, input=stdin, timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp)},
    )
