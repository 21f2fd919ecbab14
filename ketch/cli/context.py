"""What every command needs: the kubeconfig, the REST client, the namespace."""

from __future__ import annotations

import sys

from ketch.cli.errors import CommandError


class CliContext:
    """Global flags plus lazily built kubeconfig and client (a command may need neither)."""

    def __init__(self, flags: dict[str, object]):
        self.flags = flags
        self._kubeconfig = None
        self._connection = None
        self._client = None
        self._catalog = None
        self._catalog_fresh = False
        self.out = sys.stdout
        self.err = sys.stderr

    # ------------------------------------------------------------------ kubeconfig
    def kubeconfig(self):
        if self._kubeconfig is None:
            from ketch.client import kubeconfig

            self._kubeconfig = kubeconfig.load(self.flags.get("kubeconfig"))
        return self._kubeconfig

    def connection(self):
        if self._connection is None:
            from ketch.client import kubeconfig

            f = self.flags
            overrides = kubeconfig.Overrides(
                context=f.get("context"), cluster=f.get("cluster"), user=f.get("user"),
                namespace=f.get("namespace"), server=f.get("server"), token=f.get("token"),
                insecure=bool(f.get("insecure")), ca_file=f.get("ca_file"),
            )
            self._connection = kubeconfig.resolve(self.kubeconfig(), overrides)
        return self._connection

    @property
    def namespace(self) -> str:
        """-n, else the context's namespace, else "default"."""
        explicit = self.flags.get("namespace")
        if explicit:
            return str(explicit)
        return self.connection().namespace

    @property
    def namespace_explicit(self) -> bool:
        return bool(self.flags.get("namespace"))

    @property
    def client(self):
        if self._client is None:
            from ketch.client.rest import RestClient

            timeout = self.flags.get("request_timeout")
            seconds = _parse_timeout(str(timeout)) if timeout else 60.0
            self._client = RestClient(self.connection(), timeout=seconds)
        return self._client

    # ------------------------------------------------------------------ resource types
    def catalog(self, refresh: bool = False):
        """The server's resource types (discovery, cached on disk as kubectl caches it)."""
        if self._catalog is None or refresh:
            from ketch.cli.discovery import load_catalog

            self._catalog = load_catalog(self.client, refresh=refresh)
            self._catalog_fresh = refresh
        return self._catalog

    def _lookup(self, find):
        found = find(self.catalog())
        if found is None and not self._catalog_fresh:
            found = find(self.catalog(refresh=True))  # maybe new since the cache was written
        return found

    def resolve(self, name: str):
        return self._lookup(lambda c: c.resolve(name))

    def by_kind(self, api_version: str, kind: str):
        return self._lookup(lambda c: c.by_kind(api_version, kind))

    def in_category(self, category: str) -> list:
        found = self.catalog().in_category(category)
        if not found and not self._catalog_fresh:
            found = self.catalog(refresh=True).in_category(category)
        return found

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # ------------------------------------------------------------------ output
    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def warn(self, text: str) -> None:
        self.err.write(text + "\n")


def _parse_timeout(text: str) -> float | None:
    """kubectl's --request-timeout: "0" (none), "30", "30s", "2m", "1h"."""
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if text[-1] in units:
            value = float(text[:-1]) * units[text[-1]]
        else:
            value = float(text)
    except (ValueError, IndexError):
        raise CommandError(f"invalid --request-timeout {text!r}: use 30, 30s, 2m or 1h") from None
    return value or None
