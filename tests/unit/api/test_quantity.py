"""Kubernetes quantities: exact parsing, integer views, canonical text."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from ketch.api.quantity import (
    QuantityError,
    bytes_value,
    cpu_millis,
    format_quantity,
    is_quantity,
    parse_quantity,
    quantity_format,
)


@pytest.mark.parametrize(
    "text, value",
    [
        ("100m", Fraction(1, 10)),
        ("0.5", Fraction(1, 2)),
        ("1", Fraction(1)),
        ("128Mi", Fraction(128 * 1024**2)),
        ("1G", Fraction(10**9)),
        ("1e3", Fraction(1000)),
        ("1E3", Fraction(1000)),
        ("1E", Fraction(10**18)),
        ("2Ki", Fraction(2048)),
        ("1.5Gi", Fraction(3 * 1024**3, 2)),
        ("5n", Fraction(5, 10**9)),
        ("3u", Fraction(3, 10**6)),
        ("-2", Fraction(-2)),
        ("+2k", Fraction(2000)),
        (".5", Fraction(1, 2)),
        ("5.", Fraction(5)),
        ("12e-3", Fraction(12, 1000)),
        ("0.1", Fraction(1, 10)),
    ],
)
def test_parse_text(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "bad", ["", "abc", "1Kb", "1K", "1e", "1.2.3", "--1", "1 Mi", "Mi", "1ki", "0x10"]
)
def test_parse_rejects(bad):
    with pytest.raises(ValueError) as info:
        parse_quantity(bad)
    assert isinstance(info.value, QuantityError)
    assert not is_quantity(bad)


def test_numbers_are_exact():
    assert parse_quantity(0.1) == Fraction(1, 10)
    assert parse_quantity(3) == 3
    assert parse_quantity(Decimal("2.5")) == Fraction(5, 2)
    with pytest.raises(ValueError):
        parse_quantity(float("nan"))
    with pytest.raises(ValueError):
        parse_quantity(True)


@pytest.mark.parametrize(
    "text, millis",
    [("100m", 100), ("1", 1000), ("0.5", 500), ("2", 2000), ("1u", 1), ("250m", 250), (1.5, 1500)],
)
def test_cpu_millis_rounds_up(text, millis):
    assert cpu_millis(text) == millis


@pytest.mark.parametrize(
    "text, value",
    [
        ("128Mi", 134217728),
        ("1G", 1_000_000_000),
        ("1.5k", 1500),
        ("100m", 1),
        ("1Ki", 1024),
        (64, 64),
    ],
)
def test_bytes_value_rounds_up(text, value):
    assert bytes_value(text) == value


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("0.5", "500m"),
        ("1000", "1k"),
        ("1500", "1500"),
        ("1.5", "1500m"),
        ("1200000", "1200k"),
        ("1024Mi", "1Gi"),
        ("1536", "1536"),
        ("2048Ki", "2Mi"),
        ("1.5Ki", "1536"),
        ("0.5Ki", "512"),
        ("1e3", "1e3"),
        ("1500e0", "1500"),
        ("0.1m", "100u"),
        ("0.0000000001", "1n"),
        ("0", "0"),
        ("-100m", "-100m"),
    ],
)
def test_format_canonical(text, canonical):
    assert format_quantity(text) == canonical


def test_format_with_explicit_format():
    assert format_quantity(134217728, "BinarySI") == "128Mi"
    assert format_quantity(Fraction(1, 2), "DecimalSI") == "500m"
    assert format_quantity("1k", "DecimalExponent") == "1e3"
    assert quantity_format("1Gi") == "BinarySI"
    assert quantity_format("1e9") == "DecimalExponent"
    assert quantity_format("1G") == "DecimalSI"
    with pytest.raises(ValueError):
        format_quantity("1", "Weird")


@pytest.mark.parametrize(
    "text",
    [
        "0.5",
        "1536",
        "1024Mi",
        "1.5Gi",
        "1e3",
        "0.1m",
        "100m",
        "2048Ki",
        "12e-3",
        "1E",
        "+2k",
        ".5",
        "5n",
        "3u",
        "1G",
        "-250m",
    ],
)
def test_parse_agrees_with_the_kubernetes_python_client(text):
    kube_utils = pytest.importorskip("kubernetes.utils")
    assert parse_quantity(text) == kube_utils.parse_quantity(text)
