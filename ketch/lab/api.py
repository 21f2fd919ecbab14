"""Talking to the lab's apiserver as its admin: the token, a client, the admin kubeconfig."""

from __future__ import annotations

import base64
from pathlib import Path

from ketch.lab.components import LabLayout, LabSettings

USER = "ketch-admin"


class LabError(Exception):
    """`ketch up`/`down` could not finish; the message says which component and where its log is."""


def admin_token(layout: LabLayout) -> str:
    """The admin token the apiserver wrote into its token file on first start."""
    for line in layout.token_file.read_text().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) > 1 and parts[1] == "admin":
            return parts[0]
    raise LabError(f"no admin token in {layout.token_file}")


def api_url(settings: LabSettings) -> str:
    return f"https://{settings.gateway}:{settings.apiserver_port}"


def lab_client(layout: LabLayout, settings: LabSettings, *, timeout: float = 10.0):
    """A RestClient to the lab's apiserver with the admin token."""
    from ketch.client.kubeconfig import Connection
    from ketch.client.rest import RestClient

    conn = Connection(api_url(settings))
    conn.ca_data = layout.ca_file.read_bytes()
    conn.token = admin_token(layout)
    return RestClient(conn, timeout=timeout)


def write_kubeconfig(layout: LabLayout, settings: LabSettings, path: str | Path, *,
                     make_current: bool = True) -> None:
    """Merge the lab's admin context into `path` (keeping everything else), current if asked."""
    from ketch.client.kubeconfig import merge_context_into_file

    ca = base64.b64encode(layout.ca_file.read_bytes()).decode()
    merge_context_into_file(
        str(path),
        name=settings.context,
        cluster_name=settings.context,
        user_name=user_name(settings),
        cluster={"server": api_url(settings), "certificate-authority-data": ca},
        user={"token": admin_token(layout)},
        make_current=make_current,
    )


def user_name(settings: LabSettings) -> str:
    return USER if settings.context == "ketch" else f"{settings.context}-admin"


def forget_kubeconfig(settings: LabSettings, path: str | Path) -> bool:
    """Drop the lab's cluster, user and context from `path` (after `ketch down --purge`, as kind does)."""
    import os

    from ketch.client.kubeconfig import edit_file

    if not os.path.exists(path):
        return False
    found = []

    def change(data: dict) -> None:
        for section, name in (("clusters", settings.context), ("users", user_name(settings)),
                              ("contexts", settings.context)):
            items = data.get(section) or []
            kept = [i for i in items if i.get("name") != name]
            if len(kept) != len(items):
                found.append(section)
                data[section] = kept
        if data.get("current-context") == settings.context:
            data["current-context"] = ""

    edit_file(str(path), change)
    return bool(found)
