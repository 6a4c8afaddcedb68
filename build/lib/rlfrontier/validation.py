"""Range and choice checks whose messages name the field and what is allowed."""

from __future__ import annotations

import numbers
from typing import Any, Iterable


class BadInput(ValueError):
    """Input the user can fix: the CLI prints it on one line and exits 2."""


def check_range(
    name: str,
    value: Any,
    low: float | None,
    high: float | None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> None:
    """Raises BadInput unless low <= value <= high (bounds open on request)."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise BadInput(
            f"{name}={value!r} must be {'an integer' if integer else 'a number'}"
        )
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
        raise BadInput(f"{name}={value!r} is out of range: allowed {lo}, {hi}")


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> None:
    allowed = tuple(allowed)
    if value not in allowed or (isinstance(value, bool) != any(isinstance(a, bool) for a in allowed)):
        raise BadInput(f"{name}={value!r} is not one of {', '.join(map(repr, allowed))}")
