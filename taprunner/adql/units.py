"""Units for ADQL 2.1's IN_UNIT: VOUnit strings from TAP_SCHEMA, via astropy.units.

A value's unit is known for a column whose TAP_SCHEMA entry has one, and is
carried through what keeps or composes units (parentheses, negation, + and -
of equal units, * and /, POWER to a number, SQRT, ABS, ROUND..., MIN, MAX,
SUM, AVG). IN_UNIT multiplies by the conversion factor astropy gives; units
that do not convert (``deg`` to ``m``), unknown units and values without a unit
are refused with a message saying which. astropy is imported on first use (it
takes a while), not with the translator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlglot import exp

from taprunner.adql.model import AdqlError, AdqlSyntaxError
from taprunner.adql.sqltext import Fragment

__all__ = ["compose", "conversion_factor", "in_unit", "power"]


def _unit(text: str) -> Any:
    import astropy.units as u  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415

    try:
        return u.Unit(text, format="vounit")
    except ValueError:
        try:
            return u.Unit(text)
        except ValueError:
            raise AdqlError(f"unknown unit '{text}' (not a VOUnit)") from None


def _text(unit: Any) -> str:
    return str(unit.to_string("vounit"))


def conversion_factor(source: str | None, target: str, what: str) -> float:
    """The factor turning a value in ``source`` into ``target``.

    ``what`` names the value for the message (its ADQL text).

    Raises
    ------
    AdqlError
        If the value has no unit, a unit is unknown, or they do not convert.
    """
    import astropy.units as u  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415

    if source is None:
        raise AdqlError(
            f"IN_UNIT: {what} has no known unit (only columns with a unit in "
            "TAP_SCHEMA, and expressions of them, have one)"
        )
    wanted = _unit(target)
    try:
        return float(_unit(source).to(wanted))
    except u.UnitConversionError:
        raise AdqlError(
            f"IN_UNIT: cannot convert {what} from '{source}' to '{target}' "
            "(incompatible units)"
        ) from None


def compose(left: str | None, right: str | None, operator: str) -> str | None:
    """The unit of ``left * right`` or ``left / right`` (a side None: unknown;
    None too where astropy cannot make the result, see :func:`power`)."""
    if left is None or right is None:
        return None
    return _derived(
        lambda: (
            _unit(left) * _unit(right)
            if operator == "*"
            else _unit(left) / _unit(right)
        )
    )


def power(unit: str | None, exponent: float) -> str | None:
    """The unit of a value of ``unit`` raised to ``exponent`` (None where astropy
    cannot make it: ``deg**400``'s scale underflows to 0)."""
    if unit is None:
        return None
    return _derived(lambda: _unit(unit) ** exponent)


def _derived(make: Callable[[], Any]) -> str | None:
    """The VOUnit text of the unit ``make`` builds, or None (unknown: the value
    then has no unit for IN_UNIT) when a unit is no VOUnit (TAP_SCHEMA may say
    ``[cm/s2]``) or astropy cannot build or write the result; only IN_UNIT
    needs units, a query without it must not fail on them."""
    import astropy.units as u  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415

    try:
        return _text(make())
    except (AdqlError, u.UnitsError, ValueError, ArithmeticError):
        return None


def in_unit(args: list[Fragment], raw: Sequence[exp.Expr]) -> Fragment:
    """IN_UNIT(value, 'unit'): the value times the factor from its own unit."""
    if len(args) != 2:
        raise AdqlSyntaxError(f"IN_UNIT takes 2 arguments, {len(args)} given")
    target = raw[1]
    if not (isinstance(target, exp.Literal) and target.is_string):
        raise AdqlSyntaxError("IN_UNIT's second argument is a unit, in quotes")
    factor = conversion_factor(args[0].unit, str(target.this), raw[0].sql())
    return Fragment(
        f"({args[0].sql} * CAST({factor!r} AS double precision))",
        name="in_unit",
        unit=str(target.this),
    )
