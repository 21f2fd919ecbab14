"""The state file a shim keeps in its container's state dir (written atomically)."""

from __future__ import annotations

import json
import os

STATE_FILE = "state.json"
CONFIG_FILE = "config.json"
SOCKET_FILE = "shim.sock"


def write_json_atomic(path: str, data: dict) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def read_json(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None
