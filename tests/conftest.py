"""Fixtures shared by every test tier.

Fixture modules live in tests/fixtures/, one per component, and are loaded here
so that unit, integration and e2e tests can all ask for them by name.
"""

import os
import secrets

import pytest

pytest_plugins = [
    "tests.fixtures.etcd",
    "tests.fixtures.apiserver",
    "tests.fixtures.runtime",
    "tests.fixtures.lab",
]

#: Short and unique per test run: kernel objects made by tests carry it after a
#: "ketch" prefix, so concurrent runs never collide and leftovers are findable.
RUN_ID = os.environ.setdefault("KETCH_TEST_RUN_ID", secrets.token_hex(3))


@pytest.fixture(scope="session")
def run_id() -> str:
    return RUN_ID


def pytest_collection_modifyitems(config, items):
    """Tests under integration/ and e2e/ need root; skip them clearly when not root."""
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (real namespaces, cgroups, etcd)")
    for item in items:
        path = str(item.fspath)
        if "/tests/integration/" in path or "/tests/e2e/" in path:
            item.add_marker(skip)
