"""Kubernetes resource quantities (`100m`, `0.5`, `128Mi`, `1G`, `1e3`) as exact numbers.

Grammar (k8s.io/apimachinery/pkg/api/resource):
    <quantity> ::= <sign><number><suffix>
    <number>   ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
    <suffix>   ::= Ki | Mi | Gi | Ti | Pi | Ei          (binary SI, powers of 1024)
                 | n | u | m | "" | k | M | G | T | P | E   (decimal SI)
                 | e<sign><digits> | E<sign><digits>   (decimal exponent)
Values are kept as `Fraction`s so nothing is lost; like Kubernetes, the
integer views (`cpu_millis`, `bytes_value`) round up, and the canonical text
rounds up to nano precision.
"""

from __future__ import annotations

import functools
import math
import re
from decimal import Decimal
from fractions import Fraction

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

_BINARY_SUFFIXES = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL_SUFFIXES = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_DECIMAL_BY_EXPONENT = {v: k for k, v in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_POWER = {v: k for k, v in _BINARY_SUFFIXES.items()}

_QUANTITY_RE = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<exp>[eE][+-]?[0-9]+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?))$"
)

_NANO = Fraction(1, 10**9)


class QuantityError(ValueError):
    """A text that is not a Kubernetes quantity."""


@functools.lru_cache(maxsize=4096)
def _parse_text(text: str) -> tuple[Fraction, str]:
    """Cached: the same few quantities ("100m", "128Mi") recur in every pod, and results are immutable."""
    match = _QUANTITY_RE.fullmatch(text)
    if match is None:
        raise QuantityError(
            f"quantities must match the regular expression "
            f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {text!r} is not a quantity"
        )
    number = Fraction(
        Decimal(match["number"] if not match["number"].endswith(".") else match["number"][:-1])
    )
    if match["sign"] == "-":
        number = -number
    if match["exp"] is not None:
        exponent = int(match["exp"][1:])
        if abs(exponent) > 100:
            raise QuantityError(f"quantity {text!r} is out of range")
        return number * Fraction(10) ** exponent, DECIMAL_EXPONENT
    suffix = match["suffix"] or ""
    if suffix in _BINARY_SUFFIXES:
        return number * 1024 ** _BINARY_SUFFIXES[suffix], BINARY_SI
    return number * Fraction(10) ** _DECIMAL_SUFFIXES[suffix], DECIMAL_SI


def parse_quantity(value: str | int | float | Fraction | Decimal) -> Fraction:
    """The exact value of a quantity; `ValueError` (QuantityError) when it is not one."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, (int, Fraction)):
        return Fraction(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise QuantityError(f"{value!r} is not a quantity")
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"{value!r} is not a quantity")
        # Through the shortest repr, so 0.1 means one tenth and not its binary neighbour.
        return Fraction(Decimal(repr(value)))
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise QuantityError("quantity is empty")
        return _parse_text(text)[0]
    raise QuantityError(f"{value!r} ({type(value).__name__}) is not a quantity")


def quantity_format(value: str | int | float) -> str:
    """The format a quantity was written in: DecimalSI, BinarySI or DecimalExponent."""
    if isinstance(value, str):
        return _parse_text(value.strip())[1]
    parse_quantity(value)
    return DECIMAL_SI


def is_quantity(value: object) -> bool:
    try:
        parse_quantity(value)  # type: ignore[arg-type]
    except (QuantityError, TypeError):
        return False
    return True


def cpu_millis(value: str | int | float | Fraction) -> int:
    """Millicores, rounded up (`0.1` → 100, `1` → 1000, `1u` → 1), like Quantity.MilliValue."""
    return math.ceil(parse_quantity(value) * 1000)


def bytes_value(value: str | int | float | Fraction) -> int:
    """The integer value rounded up (`128Mi` → 134217728, `1.5k` → 1500), like Quantity.Value."""
    return math.ceil(parse_quantity(value))


def _round_up_to_nano(value: Fraction) -> Fraction:
    scaled = value / _NANO
    if scaled.denominator == 1:
        return value
    return Fraction(math.ceil(scaled)) * _NANO


def _decimal_mantissa(value: Fraction, min_exponent: int = -9) -> tuple[int, int]:
    """(mantissa, exponent) with exponent a multiple of 3, as large as possible, exact."""
    if value == 0:
        return 0, 0
    exponent = 18
    while exponent > min_exponent:
        mantissa = value / Fraction(10) ** exponent
        if mantissa.denominator == 1:
            return int(mantissa), exponent
        exponent -= 3
    return int(value / Fraction(10) ** min_exponent), min_exponent


def format_quantity(value: str | int | float | Fraction | Decimal, fmt: str | None = None) -> str:
    """Canonical text of a quantity, as Kubernetes serialises it.

    `fmt` defaults to the format the text was written in (DecimalSI for numbers):
    `format_quantity("0.5")` → "500m", `format_quantity("1024Mi")` → "1Gi",
    `format_quantity(1500)` → "1500", `format_quantity("1e3")` → "1e3".
    BinarySI falls back to DecimalSI for values below 1024 or not whole, as Kubernetes does.
    """
    if fmt is None:
        fmt = quantity_format(value) if isinstance(value, str) else DECIMAL_SI
    exact = _round_up_to_nano(parse_quantity(value))
    if fmt == BINARY_SI:
        if -1024 < exact < 1024 or exact.denominator != 1:
            fmt = DECIMAL_SI
        else:
            amount, power = int(exact), 0
            while power < 6 and amount % 1024 == 0 and amount != 0:
                amount //= 1024
                power += 1
            return f"{amount}{_BINARY_BY_POWER.get(power, '')}"
    mantissa, exponent = _decimal_mantissa(exact)
    if fmt == DECIMAL_EXPONENT:
        return f"{mantissa}e{exponent}" if exponent else str(mantissa)
    if fmt != DECIMAL_SI:
        raise QuantityError(f"unknown quantity format {fmt!r}")
    return f"{mantissa}{_DECIMAL_BY_EXPONENT[exponent]}"


def canonical(text: str | int | float) -> str:
    """Shorthand for `format_quantity(text)` in the text's own format."""
    return format_quantity(text)
