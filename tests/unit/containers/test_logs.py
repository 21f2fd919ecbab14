"""CRI log writer and reader."""

from __future__ import annotations

import asyncio
import re
import time

from node_agent.runtime import logs

LINE = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [FP] ")


def test_writer_cri_format_full_and_partial_lines(tmp_path):
    path = str(tmp_path / "c.log")
    w = logs.CriLogWriter(path, max_line=10)
    w.write("stdout", b"hello\nwor")
    w.write("stderr", b"err\n")
    w.write("stdout", b"ld\n" + b"x" * 25 + b"\n")
    w.write("stdout", b"no newline")
    w.close()
    raw = open(path, "rb").read().splitlines()
    assert all(LINE.match(line) for line in raw)
    entries = [logs.parse_line(line) for line in raw]
    assert [(e.stream, e.partial, e.content) for e in entries] == [
        ("stdout", False, b"hello"),
        ("stderr", False, b"err"),
        ("stdout", False, b"world"),
        ("stdout", True, b"x" * 10),
        ("stdout", True, b"x" * 10),
        ("stdout", False, b"x" * 5),
        ("stdout", True, b"no newline"),   # a tail without newline stays partial
    ]
    rendered = b"".join(e.render() for e in entries if e.stream == "stdout")
    assert rendered == b"hello\nworld\n" + b"x" * 25 + b"\nno newline"


def test_rotation_keeps_max_files_and_order(tmp_path):
    path = str(tmp_path / "c.log")
    w = logs.CriLogWriter(path, max_size=4096, max_files=3)
    for i in range(2000):
        w.write("stdout", b"%d\n" % i)
    w.close()
    files = logs.log_files(path)
    assert files == [path + ".2", path + ".1", path]
    numbers = [int(e.content) for e in logs.read_entries(path)]
    assert numbers == list(range(numbers[0], 2000))
    assert numbers[0] > 0                      # the oldest rotated file was dropped


def test_single_file_truncates(tmp_path):
    path = str(tmp_path / "c.log")
    w = logs.CriLogWriter(path, max_size=4096, max_files=1)
    for i in range(1000):
        w.write("stdout", b"%d\n" % i)
    w.close()
    assert logs.log_files(path) == [path]


def test_tail_counts_whole_lines(tmp_path):
    path = str(tmp_path / "c.log")
    w = logs.CriLogWriter(path, max_line=4)
    w.write("stdout", b"a\nbbbbbbbbb\nc\n")
    w.close()
    entries = list(logs.read_entries(path))
    tail2 = logs.tail_entries(entries, 2)
    assert b"".join(e.render() for e in tail2) == b"bbbbbbbbb\nc\n"
    assert logs.tail_entries(entries, 0) == []
    assert logs.tail_entries(entries, -1) == entries


def test_since_and_timestamps(tmp_path):
    path = str(tmp_path / "c.log")
    w = logs.CriLogWriter(path)
    w.write("stdout", b"old\n")
    time.sleep(0.01)
    cut = time.time_ns()
    w.write("stdout", b"new\n")
    w.close()
    got = [e.content for e in logs.read_entries(path, since_ns=cut)]
    assert got == [b"new"]
    entry = next(logs.read_entries(path))
    assert abs(entry.time_ns - cut) < 5_000_000_000
    assert entry.render(timestamps=True).startswith(entry.timestamp.encode() + b" ")


async def test_follow_sees_new_lines_across_rotation_and_stops(tmp_path):
    path = str(tmp_path / "c.log")
    w = logs.CriLogWriter(path, max_size=4096, max_files=3)
    w.write("stdout", b"first\n")
    running = True
    got: list[bytes] = []

    async def reader():
        async for _, chunk in logs.follow_logs(path, follow=True, is_running=lambda: running, poll_interval=0.01):
            got.append(chunk)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.05)
    for i in range(300):                # about 3 rotations' worth
        w.write("stdout", b"line-%04d\n" % i)
        if i % 50 == 0:
            await asyncio.sleep(0.02)
    w.close()
    await asyncio.sleep(0.1)
    running = False
    await asyncio.wait_for(task, 5)
    assert got[0] == b"first\n"
    assert got[1:] == [b"line-%04d\n" % i for i in range(300)]      # complete, in order, across rotations


async def test_follow_misses_nothing_written_while_it_starts(tmp_path):
    path = str(tmp_path / "c.log")
    w = logs.CriLogWriter(path)
    for i in range(100):
        w.write("stdout", b"%d\n" % i)
    got: list[bytes] = []
    running = True

    async def reader():
        async for _, chunk in logs.follow_logs(path, follow=True, is_running=lambda: running, poll_interval=0.01):
            got.append(chunk)

    task = asyncio.create_task(reader())
    for i in range(100, 200):           # written while the reader reads what exists
        w.write("stdout", b"%d\n" % i)
        await asyncio.sleep(0)
    w.close()
    running = False
    await asyncio.wait_for(task, 5)
    assert got == [b"%d\n" % i for i in range(200)]
