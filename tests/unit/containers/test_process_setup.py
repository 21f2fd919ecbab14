"""Pure helpers of the container set-up: capabilities, users, paths, options, lookup."""

from __future__ import annotations

import os
import stat

import pytest
from node_agent.runtime.linux import caps
from node_agent.runtime.linux.users import UserNotFound, resolve_user
from node_agent.runtime.shim import init, protocol, rootfs


def test_default_caps_are_dockers():
    assert caps.effective_set([], [], False) == caps.DEFAULT_CAPS
    assert caps.mask(caps.DEFAULT_CAPS) == 0xA80425FB


def test_cap_add_drop_all_and_privileged():
    assert caps.effective_set(["cap_net_admin"], ["CHOWN"], False) == (caps.DEFAULT_CAPS - {"CHOWN"}) | {"NET_ADMIN"}
    assert caps.effective_set(["NET_BIND_SERVICE"], ["ALL"], False) == {"NET_BIND_SERVICE"}
    assert "SYS_ADMIN" in caps.effective_set([], [], True)
    with pytest.raises(caps.UnknownCapability):
        caps.effective_set(["NOT_A_CAP"], [], False)


@pytest.fixture
def userdb(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n"
                                         "app:x:1000:1000::/home/app:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\napp:x:1000:\nstaff:x:50:app,other\nwheel:x:10:app\n")
    return tmp_path


def test_resolve_user(userdb):
    assert resolve_user(userdb, "") .uid == 0
    nobody = resolve_user(userdb, "nobody")
    assert (nobody.uid, nobody.gid) == (65534, 65534)
    app = resolve_user(userdb, "app")
    assert (app.uid, app.gid, sorted(app.additional_gids), app.home) == (1000, 1000, [10, 50], "/home/app")
    assert (resolve_user(userdb, "1000:1000").uid, resolve_user(userdb, "1000:1000").gid) == (1000, 1000)
    assert resolve_user(userdb, "4242").gid == 0          # numeric users need no passwd entry
    assert resolve_user(userdb, "app:staff").gid == 50
    with pytest.raises(UserNotFound, match="ghost"):
        resolve_user(userdb, "ghost")
    with pytest.raises(UserNotFound, match="nogrp"):
        resolve_user(userdb, "app:nogrp")


def test_secure_join_keeps_symlinks_inside_root(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("/etc", root / "abs")                 # absolute link: must resolve inside root
    os.symlink("../../../../..", root / "etc/up")     # relative escape attempt
    assert rootfs.secure_join(str(root), "/abs/hosts") == str(root / "etc/hosts")
    assert rootfs.secure_join(str(root), "/etc/up/passwd") == str(root / "passwd")
    assert rootfs.secure_join(str(root), "/../../x") == str(root / "x")


def test_mount_options_split_into_flags_and_data():
    flags, data = rootfs.split_options(["ro", "nosuid", "size=1m", "mode=1777", "rbind"])
    assert data == "size=1m,mode=1777"
    assert flags & 1 and flags & 2


def test_lookup_executable(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    data = bindir / "data"
    data.write_text("")
    data.chmod(0o644)
    env = {"PATH": str(bindir)}
    assert init.lookup_executable("tool", env) == str(tool)
    with pytest.raises(init.ExecError) as e:
        init.lookup_executable("missing", env)
    assert e.value.exit_code == 127 and 'executable file not found in $PATH' in str(e.value)
    with pytest.raises(init.ExecError) as e:        # no x bit: denied even to root
        init.lookup_executable(str(data), env)
    assert e.value.exit_code == 126
    assert not stat.S_IXUSR & data.stat().st_mode


def test_env_dict_defaults_path():
    assert init.env_dict(["A=1", "B"])["PATH"] == init.DEFAULT_PATH
    assert init.env_dict(["PATH=/x", "A=b=c"]) == {"PATH": "/x", "A": "b=c"}


def test_frame_round_trip():
    import asyncio

    async def go():
        reader = asyncio.StreamReader()
        reader.feed_data(protocol.encode_json({"op": "x"}) + protocol.encode(protocol.STDOUT, b"data"))
        reader.feed_eof()
        assert await protocol.read_json(reader) == {"op": "x"}
        assert await protocol.read_frame(reader) == (protocol.STDOUT, b"data")
        assert await protocol.read_frame(reader) is None

    asyncio.run(go())
