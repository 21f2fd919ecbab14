"""Every served resource tables cleanly, even for a bare object."""

from __future__ import annotations

import pytest

from ketch.api import resources
from ketch.api.printers import column_definitions, table


@pytest.mark.parametrize("info", resources.RESOURCES, ids=lambda r: r.group_resource)
def test_every_resource_tables_a_minimal_object(info):
    obj = {"metadata": {"name": "x", "creationTimestamp": "2024-01-01T00:00:00Z"}}
    result = table(info, [obj, {"metadata": {"name": "y"}}])
    columns = column_definitions(info)
    assert result["columnDefinitions"] == columns
    name_columns = [c for c in columns if c["format"] == "name"]
    assert len(name_columns) == 1
    for row in result["rows"]:
        assert len(row["cells"]) == len(columns)
        assert row["object"]["kind"] == "PartialObjectMetadata"
    names = {row["cells"][columns.index(name_columns[0])] for row in result["rows"]}
    assert names == {"x", "y"}
    if info.kind != "Event":
        assert columns[0]["name"] == "Name"
