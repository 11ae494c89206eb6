"""Attribute filters, OpenAI's: comparisons (eq, ne, gt, gte, lt, lte, in, nin) and and/or."""

from __future__ import annotations

from .models import Attributes, AttributeValue, ComparisonFilter, CompoundFilter, Filter


def matches(flt: Filter | None, attributes: Attributes | None) -> bool:
    if flt is None:
        return True
    attrs = attributes or {}
    if isinstance(flt, CompoundFilter):
        results = (matches(f, attrs) for f in flt.filters)
        return all(results) if flt.type == "and" else any(results)
    return _compare(flt, attrs)


def _compare(flt: ComparisonFilter, attrs: Attributes) -> bool:
    if flt.key not in attrs:
        return flt.type in ("ne", "nin")  # absent is not equal to anything
    have = attrs[flt.key]
    want = flt.value
    if flt.type in ("in", "nin"):
        options = want if isinstance(want, list) else [want]
        found = any(_equal(have, o) for o in options)
        return found if flt.type == "in" else not found
    if isinstance(want, list):
        return False
    if flt.type == "eq":
        return _equal(have, want)
    if flt.type == "ne":
        return not _equal(have, want)
    if isinstance(have, bool) or isinstance(want, bool):
        return False  # booleans have no order
    if isinstance(have, str) != isinstance(want, str):
        return False  # a number and a string do not compare
    a, b = have, want
    if flt.type == "gt":
        return a > b  # type: ignore[operator]
    if flt.type == "gte":
        return a >= b  # type: ignore[operator]
    if flt.type == "lt":
        return a < b  # type: ignore[operator]
    return a <= b  # type: ignore[operator]


def _equal(a: AttributeValue, b: AttributeValue) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b
