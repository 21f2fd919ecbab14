"""Pure parts of the runtime service: Docker's config merge, signals, status text."""

from __future__ import annotations

import signal

import pytest
from node_agent.runtime.service import (
    RuntimeError_,
    merge_process,
    parse_signal,
    status_text,
)

from ketch.api.timeutil import docker_duration
from proto import runtime_pb2 as pb

IMAGE = {"Entrypoint": ["/entry"], "Cmd": ["default"], "Env": ["PATH=/bin", "A=image", "B=image"],
         "WorkingDir": "/srv", "User": "app"}


def cfg(**kw) -> pb.ContainerConfig:
    return pb.ContainerConfig(image="x", **kw)


def test_image_defaults_apply() -> None:
    argv, env, cwd, user = merge_process(IMAGE, cfg())
    assert argv == ["/entry", "default"]
    assert env == ["PATH=/bin", "A=image", "B=image"]
    assert (cwd, user) == ("/srv", "app")


def test_command_replaces_cmd_but_keeps_entrypoint() -> None:
    assert merge_process(IMAGE, cfg(command=["x"]))[0] == ["/entry", "x"]


def test_entrypoint_replaces_entrypoint_and_drops_image_cmd() -> None:
    assert merge_process(IMAGE, cfg(entrypoint=["/other"]))[0] == ["/other"]
    assert merge_process(IMAGE, cfg(entrypoint=["/other"], command=["y"]))[0] == ["/other", "y"]
    assert merge_process(IMAGE, cfg(clear_entrypoint=True, command=["sh"]))[0] == ["sh"]
    assert merge_process(IMAGE, cfg(clear_entrypoint=True))[0] == []


def test_env_overrides_by_name_and_path_defaults() -> None:
    _, env, _, _ = merge_process(IMAGE, cfg(env=[pb.KeyValue(key="A", value="mine"), pb.KeyValue(key="C", value="c")]))
    assert env == ["PATH=/bin", "A=mine", "B=image", "C=c"]
    _, env, cwd, user = merge_process({}, cfg(command=["true"]))
    assert env[0].startswith("PATH=/usr/local/sbin") and (cwd, user) == ("/", "")


def test_request_workdir_and_user_win() -> None:
    _, _, cwd, user = merge_process(IMAGE, cfg(working_dir="/tmp", user="0"))
    assert (cwd, user) == ("/tmp", "0")


@pytest.mark.parametrize("text,expected", [("KILL", 9), ("SIGTERM", 15), ("9", 9), ("usr1", signal.SIGUSR1), ("", 9)])
def test_parse_signal(text: str, expected: int) -> None:
    assert parse_signal(text) == expected


def test_parse_signal_rejects_unknown() -> None:
    with pytest.raises(RuntimeError_):
        parse_signal("SIGNOPE")


def test_docker_status_text() -> None:
    now = 1_000_000 * 10**9
    assert status_text("running", 0, now - 3 * 10**9, 0, now) == "Up 3 seconds"
    assert status_text("exited", 137, now - 200 * 10**9, now - 120 * 10**9, now) == "Exited (137) 2 minutes ago"
    assert status_text("created", 0, 0, 0, now) == "Created"
    assert docker_duration(0.2) == "Less than a second"
    assert docker_duration(90) == "About a minute"
    assert docker_duration(3 * 3600) == "3 hours"


def test_no_log_call_uses_a_reserved_logrecord_field() -> None:
    """`extra={"name": ...}` raises KeyError inside whatever operation logs it (at INFO)."""
    import ast
    import logging
    from pathlib import Path

    import node_agent.network
    import node_agent.runtime

    reserved = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
    roots = [Path(node_agent.runtime.__file__).parent, Path(node_agent.network.__file__).parent]
    clashes, calls = [], 0
    for path in (p for root in roots for p in root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            for kw in node.keywords:
                if kw.arg == "extra" and isinstance(kw.value, ast.Dict):
                    calls += 1
                    keys = {k.value for k in kw.value.keys if isinstance(k, ast.Constant)}
                    clashes += [f"{path.name}:{node.lineno} {key}" for key in keys & reserved]
    assert calls > 10 and clashes == []
