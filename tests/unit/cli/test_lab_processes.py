"""Daemons of `ketch up` are tracked by pid + start time and stopped with their process group."""

from __future__ import annotations

import os
import re
import time

from ketch.lab import processes
from ketch.lab.components import LabLayout, LabSettings


def test_spawn_record_and_stop_with_children(tmp_path):
    pid_file, log = tmp_path / "run" / "d.pid", tmp_path / "log" / "d.log"
    # a parent that ignores SIGTERM and has a child: both must be gone after stop()
    # plus a child in a session of its own (like the apiserver's embedded etcd)
    script = "trap '' TERM; sleep 300 & echo CHILD=$!; setsid sleep 301 & echo OWN=$!; wait"
    pid = processes.spawn(["sh", "-c", script], pid_file=pid_file, log_file=log)
    assert processes.running_pid(pid_file) == pid
    deadline = time.monotonic() + 5
    while not re.search(r"CHILD=\d+", log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.02)
    while not re.search(r"OWN=\d+", log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.02)
    child = int(re.search(r"CHILD=(\d+)", log.read_text()).group(1))
    own = int(re.search(r"OWN=(\d+)", log.read_text()).group(1))
    assert processes.process_group(child) == pid
    deadline = time.monotonic() + 5
    while processes.process_group(own) != own and time.monotonic() < deadline:
        time.sleep(0.02)  # setsid has not run yet
    assert set(processes.family(pid)) == {pid, child, own}
    assert processes.stop(pid_file, timeout=0.5) is True
    assert processes.start_time(pid) is None and processes.start_time(child) is None
    assert processes.start_time(own) is None
    assert not pid_file.exists()
    assert processes.stop(pid_file) is False


def test_a_reused_pid_is_not_ours(tmp_path):
    pid_file = tmp_path / "x.pid"
    pid_file.write_text(f"{os.getpid()} 1\n")  # our pid, wrong start time
    assert processes.running_pid(pid_file) is None


def test_layout_and_settings_round_trip(tmp_path):
    layout = LabLayout.under(tmp_path)
    assert layout.run_dir == tmp_path / "run" and layout.log_dir == tmp_path / "logs"
    assert layout.ca_file == tmp_path / "apiserver" / "pki" / "ca.crt"
    LabSettings(apiserver_port=1234).save(layout.settings_file)
    assert LabSettings.load(layout.settings_file).apiserver_port == 1234
    assert LabLayout.under(None).run_dir.as_posix() == "/run/ketch"
