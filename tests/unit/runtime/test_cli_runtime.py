"""`ketch runtime` argument handling and output formatting (no daemon needed)."""

from __future__ import annotations

import argparse

import pytest

from ketch.cli import runtime as cli
from ketch.cli.runtime import containers, formatting
from ketch.cli.runtime.errors import UsageError


def parse_run(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-d", "--detach", action="store_true")
    containers._container_options(p)
    return p.parse_args(list(argv))


def test_options_stop_at_the_image_and_the_rest_is_the_command() -> None:
    args = parse_run("--rm", "-it", "-e", "A=1", "busybox", "sh", "-c", "echo -n hi")
    assert args.rm and args.interactive and args.tty
    assert args.image == "busybox" and args.command == ["sh", "-c", "echo -n hi"]


def test_container_config_from_flags() -> None:
    args = parse_run("--name", "web", "-p", "127.0.0.1:8080:80", "-v", "data:/data:ro", "-v", "/srv:/srv",
                     "--tmpfs", "/run:size=1m", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "20",
                     "--cap-add", "NET_ADMIN", "--read-only", "--entrypoint", "", "-l", "a=b",
                     "--network", "appnet", "busybox")
    cfg = containers.container_config(args, detach=True)
    assert cfg["name"] == "web" and cfg["network"] == "appnet" and cfg["labels"] == {"a": "b"}
    assert cfg["port_mappings"] == [{"protocol": "tcp", "container_port": 80, "host_port": 8080,
                                     "host_ip": "127.0.0.1"}]
    assert cfg["mounts"] == [
        {"type": "volume", "source": "data", "destination": "/data", "read_only": True},
        {"type": "bind", "source": "/srv", "destination": "/srv", "read_only": False},
        {"type": "tmpfs", "destination": "/run", "options": ["size=1m"]},
    ]
    assert cfg["resources"] == {"memory_bytes": 64 << 20, "cpu_period_us": 100_000, "cpu_quota_us": 50_000,
                                "pids_limit": 20}
    assert cfg["entrypoint"] == [] and cfg["clear_entrypoint"] is True
    assert cfg["read_only_rootfs"] and cfg["cap_add"] == ["NET_ADMIN"]


def test_anonymous_volume_and_bad_specs() -> None:
    cfg = containers.container_config(parse_run("-v", "/data", "busybox"), detach=False)
    assert cfg["mounts"] == [{"type": "volume", "source": "", "destination": "/data", "read_only": False}]
    with pytest.raises(UsageError):
        containers.container_config(parse_run("-v", "data:relative", "busybox"), detach=False)
    with pytest.raises(UsageError):
        containers.container_config(parse_run("-p", "x:80", "busybox"), detach=False)
    with pytest.raises(UsageError):
        containers.container_config(parse_run("--memory", "lots", "busybox"), detach=False)


def test_env_without_value_comes_from_our_environment(monkeypatch) -> None:
    monkeypatch.setenv("FROM_HOST", "yes")
    monkeypatch.delenv("NOT_SET", raising=False)
    cfg = containers.container_config(parse_run("-e", "FROM_HOST", "-e", "NOT_SET", "busybox"), detach=False)
    assert cfg["env"] == [{"key": "FROM_HOST", "value": "yes"}]


def test_sizes_and_tables(capsys) -> None:
    assert formatting.parse_size("64m") == 64 << 20
    assert formatting.parse_size("1g") == 1 << 30
    assert formatting.parse_size("512") == 512
    assert formatting.human_size(1_980_000) == "1.98MB"
    assert formatting.human_size(32 << 20, binary=True) == "32MiB"
    assert formatting.quote_command(["httpd", "-f", "-p", "80", "-h", "/www/root"]) == '"httpd -f -p 80 -h /…"'  # 20 characters, as docker
    assert formatting.ports_text([{"host_port": 8080, "container_port": 80}]) == "0.0.0.0:8080->80/tcp"
    formatting.table(["A", "LONGER"], [["xx", "y"]])
    assert capsys.readouterr().out == "A    LONGER\nxx   y\n"


def test_inspect_template_subset() -> None:
    obj = {"State": {"Pid": 42, "Running": True}, "Config": {"Env": ["A=1"]}}
    assert containers.render_template("{{.State.Pid}} {{.State.Running}}", obj) == "42 true"
    assert containers.render_template("{{json .Config.Env}}", obj) == '["A=1"]'
    assert containers.render_template("{{.Nope.Nada}}", obj) == "<no value>"


def test_no_daemon_is_a_clear_error(tmp_path, capsys) -> None:
    code = cli.main(["--socket", str(tmp_path / "none.sock"), "ps"])
    assert code == 1
    assert "Is the daemon running?" in capsys.readouterr().err
    code = cli.main(["--socket", str(tmp_path / "none.sock"), "run", "--rm", "busybox", "true"])
    assert code == 125


def test_help_and_unknown_command(capsys) -> None:
    assert cli.main([]) == 0 and "run " in capsys.readouterr().out
    assert cli.main(["frobnicate"]) == 1
