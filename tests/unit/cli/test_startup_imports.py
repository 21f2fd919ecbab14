"""`ketch get` must start fast: nothing heavy may sneak onto its import path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]

#: each costs milliseconds of start-up that `kubectl get pods` does not pay
FORBIDDEN = ("yaml", "http.client", "email", "dataclasses", "typing", "httpx", "fastapi",
             "ketch.api", "tempfile", "shutil", "encodings.idna", "datetime")


def test_get_path_imports_nothing_heavy():
    probe = (
        "import sys, json\n"
        "from ketch.cli import main, context, discovery, targets, printing, output\n"
        "from ketch.cli.commands import get\n"
        "from ketch.client import kubeconfig, rest\n"
        "get.build_parser().parse_intermixed_args(['pods', '-o', 'wide'])\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=str(REPO_ROOT)).stdout
    loaded = set(json.loads(out))
    heavy = sorted(m for m in loaded for f in FORBIDDEN if m == f or m.startswith(f + "."))
    assert heavy == [], f"imported on the `ketch get` path: {heavy}"
