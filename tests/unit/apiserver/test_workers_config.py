"""`--workers`: flags, which process is the leader, and a worker's command line."""

from __future__ import annotations

import sys

import pytest

from apiserver.config import parse_args
from apiserver.workers import worker_argv


def test_default_is_one_process_that_leads() -> None:
    config = parse_args([])
    assert config.workers == 1 and config.worker_index is None and config.leader


def test_only_worker_zero_leads() -> None:
    assert parse_args(["--workers", "3", "--worker-index", "0", "--listen-fd", "7"]).leader
    worker = parse_args(["--workers", "3", "--worker-index", "2", "--listen-fd", "8"])
    assert not worker.leader and worker.listen_fd == 8


def test_workers_must_be_positive(capsys) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--workers", "0"])
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_worker_argv_overrides_etcd_and_adds_its_socket() -> None:
    argv = worker_argv(["--workers", "2", "--secure-port", "6443"], 1, 9, ["http://127.0.0.1:2379"])
    assert argv[:3] == [sys.executable, "-m", "apiserver.main"]
    config = parse_args(argv[3:])
    assert config.etcd_servers == ["http://127.0.0.1:2379"]  # the supervisor's etcd, embedded or not
    assert (config.workers, config.worker_index, config.listen_fd, config.secure_port) == (2, 1, 9, 6443)
