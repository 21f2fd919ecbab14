"""apiserver.codec: orjson speed with the standard library's exact results."""

from __future__ import annotations

import json

import pytest

from apiserver import codec


def std(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize("obj", [
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "labels": {"x": "é€😀"}},
     "spec": {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}]}},
    {"n": [0, -1, 2**63 - 1, -(2**63), 1.5, 0.1, None, True, False], "s": "\u2028\"\\/\t<>&"},
    {"big": 2**64 + 5, "neg": -(2**70)},
    {1: "int keys become strings"},
    [],
])
def test_dumps_matches_the_standard_library(obj) -> None:
    assert codec.dumps(obj) == std(obj)


def test_floats_round_trip_exactly() -> None:
    """Exponents may be spelled differently (1e-7 vs 1e-07); the values are the same."""
    values = [1e-7, 1e16, 1.7976931348623157e308, 5e-324, 0.30000000000000004, -2.5e-300]
    assert json.loads(codec.dumps(values)) == values


@pytest.mark.parametrize("text", [
    b'{"a":1,"b":[1.5,"\xc3\xa9",null,true,false],"c":{"d":-3}}',
    b'{"exact":123456789012345678901234567890,"max":9223372036854775807,"min":-9223372036854775808}',
    b'{"beyond64":18446744073709551621}',
    '{"text":"caf\u00e9"}',
])
def test_loads_matches_the_standard_library_exactly(text) -> None:
    got = codec.loads(text)
    assert got == json.loads(text)
    assert [type(v) for v in _leaves(got)] == [type(v) for v in _leaves(json.loads(text))]


def _leaves(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _leaves(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _leaves(v)
    else:
        yield obj


def test_malformed_input_gets_the_standard_message() -> None:
    with pytest.raises(ValueError) as caught:
        codec.loads(b'{"a": }')
    with pytest.raises(ValueError) as expected:
        json.loads(b'{"a": }')
    assert str(caught.value) == str(expected.value)
