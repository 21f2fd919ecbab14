"""Resolve an image/user `User` string ("nobody", "1000", "1000:1000", "app:staff")
against a root filesystem's /etc/passwd and /etc/group, the way Docker does."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class UserNotFound(ValueError):
    pass


@dataclass
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"


def _read_db(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def resolve_user(rootfs: str | Path, user: str | None) -> ResolvedUser:
    """uid, gid, supplementary gids and home for `user` inside `rootfs`.

    An empty user is root. Numeric parts need no passwd entry; names must exist
    (UserNotFound names the file it looked in).
    """
    root = Path(rootfs)
    passwd = _read_db(root / "etc/passwd")
    groups = _read_db(root / "etc/group")
    user = (user or "").strip()
    user_part, _, group_part = user.partition(":")
    user_part = user_part or "0"

    entry = None
    if user_part.isdigit():
        uid = int(user_part)
        entry = next((p for p in passwd if len(p) >= 4 and p[2] == user_part), None)
    else:
        entry = next((p for p in passwd if len(p) >= 4 and p[0] == user_part), None)
        if entry is None:
            raise UserNotFound(f"unable to find user {user_part}: no matching entries in passwd file {root / 'etc/passwd'}")
        uid = int(entry[2])
    gid = int(entry[3]) if entry is not None and entry[3].isdigit() else 0
    home = entry[5] if entry is not None and len(entry) > 5 and entry[5] else "/"

    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            grp = next((g for g in groups if len(g) >= 3 and g[0] == group_part), None)
            if grp is None:
                raise UserNotFound(f"unable to find group {group_part}: no matching entries in group file {root / 'etc/group'}")
            gid = int(grp[2])

    additional: list[int] = []
    if not group_part and entry is not None:
        name = entry[0]
        for g in groups:
            if len(g) >= 4 and g[2].isdigit() and name in g[3].split(","):
                if int(g[2]) != gid and int(g[2]) not in additional:
                    additional.append(int(g[2]))
    return ResolvedUser(uid=uid, gid=gid, additional_gids=additional, home=home)
