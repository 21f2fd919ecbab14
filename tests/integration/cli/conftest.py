"""Run the real `ketch` command line against the session apiserver."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


class Ketch:
    """`ketch ...` as a subprocess with the apiserver's kubeconfig and a private cache dir."""

    def __init__(self, kubeconfig: Path, cache: Path, namespace: str):
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "XDG_CACHE_HOME": str(cache),
                    "PYTHONPATH": str(REPO_ROOT)}

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "ketch.cli.main", *args]

    def run(self, *args: str, input: str | None = None, ok: bool = True, env: dict | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.command(*args), input=input, capture_output=True, text=True,
                              env={**self.env, **(env or {})}, timeout=timeout, cwd=str(REPO_ROOT))
        if ok and proc.returncode != 0:
            raise AssertionError(f"ketch {' '.join(args)} exited {proc.returncode}\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def ns(self, *args: str, **kw) -> subprocess.CompletedProcess:
        """The same, in this test's namespace."""
        return self.run(*args, "-n", self.namespace, **kw)


@pytest.fixture
def ketch(apiserver, tmp_path) -> Ketch:
    """A `ketch` runner with a namespace of this test's own (deleted afterwards)."""
    namespace = f"cli-{secrets.token_hex(3)}"
    k = Ketch(Path(apiserver.kubeconfig), tmp_path / "cache", namespace)
    k.run("create", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n")
    yield k
    k.run("delete", "namespace", namespace, "--wait=false", ok=False)
