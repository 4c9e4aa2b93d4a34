"""Runtime library: the null rules, coercions and built-in functions of PQL (docs/pql.md).

Everything here is total: bad or missing input gives None (values) or False (predicates),
never an exception, so a rule can only fail at compile time.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from offerbase.regex import Pattern, RegexError, compile_like, compile_regex, fullmatch, search

# ---- truthiness and shapes ---------------------------------------------------------------


def truthy(v: Any) -> bool:
    """null is false, an array is true when non-empty, any other value when present."""
    if v is True:
        return True
    if v is False or v is None:
        return False
    if isinstance(v, list | tuple):
        return len(v) > 0
    return True


def scalar(v: Any) -> Any:
    """A one-element list (typically a projection such as `@{T}.weather`) stands for its item."""
    if isinstance(v, list | tuple) and len(v) == 1:
        return v[0]
    return v


def as_list(v: Any) -> list[Any] | None:
    if v is None:
        return None
    if isinstance(v, list):
        return v
    if isinstance(v, tuple):
        return list(v)
    return [v]


def field(v: Any, name: str) -> Any:
    """Dot access: a map lookup (dot-as-get), mapped over the items of a list."""
    if isinstance(v, Mapping):
        return v.get(name)
    if isinstance(v, list | tuple):
        out: list[Any] = []
        for item in v:
            x = field(item, name)
            if isinstance(x, list):
                out.extend(x)
            elif x is not None:
                out.append(x)
        return out or None
    return None


# ---- numbers -----------------------------------------------------------------------------


def num(v: Any) -> int | float | None:
    """A number, with numeric strings coerced (F6 multiplies by a string characteristic)."""
    c = v.__class__
    if c is int or c is float:
        return v  # type: ignore[no-any-return]
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            pass
        try:
            return float(v)
        except ValueError:
            return None
    if isinstance(v, list | tuple) and len(v) == 1:
        return num(v[0])
    return None


def _numbers(a: Any, b: Any) -> tuple[int | float, int | float] | None:
    x = num(a)
    y = num(b)
    return None if x is None or y is None else (x, y)


# Each operator checks for two plain numbers first: the common case costs no extra call.
def add(a: Any, b: Any) -> int | float | None:
    ca = a.__class__
    cb = b.__class__
    try:
        if (ca is int or ca is float) and (cb is int or cb is float):
            return a + b  # type: ignore[no-any-return]
        xy = _numbers(a, b)
        return None if xy is None else xy[0] + xy[1]
    except OverflowError:  # a huge int meeting a float
        return None


def sub(a: Any, b: Any) -> int | float | None:
    ca = a.__class__
    cb = b.__class__
    try:
        if (ca is int or ca is float) and (cb is int or cb is float):
            return a - b  # type: ignore[no-any-return]
        xy = _numbers(a, b)
        return None if xy is None else xy[0] - xy[1]
    except OverflowError:  # a huge int meeting a float
        return None


def mul(a: Any, b: Any) -> int | float | None:
    ca = a.__class__
    cb = b.__class__
    try:
        if (ca is int or ca is float) and (cb is int or cb is float):
            return a * b  # type: ignore[no-any-return]
        xy = _numbers(a, b)
        return None if xy is None else xy[0] * xy[1]
    except OverflowError:  # a huge int meeting a float
        return None


def div(a: Any, b: Any) -> float | None:
    """Always a float; division by zero is null, not an error."""
    xy = _numbers(a, b)
    if xy is None or xy[1] == 0:
        return None
    try:
        return xy[0] / xy[1]
    except OverflowError:
        return None


def mod(a: Any, b: Any) -> int | float | None:
    """Java semantics: the sign follows the dividend; modulo by zero is null."""
    xy = _numbers(a, b)
    if xy is None or xy[1] == 0:
        return None
    x, y = xy
    if isinstance(x, int) and isinstance(y, int):
        r = abs(x) % abs(y)
        return -r if x < 0 else r
    try:
        return math.fmod(x, y)
    except (ValueError, OverflowError):  # inf % y, huge int % float
        return None


ARITH: dict[str, Callable[[Any, Any], int | float | None]] = {
    "+": add,
    "-": sub,
    "*": mul,
    "/": div,
    "%": mod,
}


def negate(v: Any) -> int | float | None:
    x = num(v)
    return None if x is None else -x


# ---- comparison --------------------------------------------------------------------------


def eq(a: Any, b: Any) -> bool:
    """`=`: both sides non-null and equal; a list against a scalar means "any item"."""
    if a is None or b is None:
        return False
    if a.__class__ is b.__class__:
        return bool(a == b)
    la = isinstance(a, list | tuple)
    if la != isinstance(b, list | tuple):
        if la:
            return any(eq(x, b) for x in a)
        return any(eq(a, y) for y in b)
    if la:
        return list(a) == list(b)
    return _coerced_eq(a, b)


def _coerced_eq(a: Any, b: Any) -> bool:
    """Different scalar types: coerce where sensible, e.g. "true" = true, "30" = 30."""
    if isinstance(a, bool) or isinstance(b, bool):
        if isinstance(a, str) or isinstance(b, str):
            return str(a).lower() == str(b).lower()
        return False
    na = num(a)
    nb = num(b)
    if na is not None and nb is not None:
        return na == nb
    if isinstance(a, datetime | Period) or isinstance(b, datetime | Period):
        da = to_dt(a)
        return da is not None and da == to_dt(b)
    return False


def ne(a: Any, b: Any) -> bool:
    """`!=` is the non-null negation of `=`: a missing side makes it false too."""
    return a is not None and b is not None and not eq(a, b)


def _ordered(a: Any, b: Any) -> tuple[Any, Any] | None:
    if isinstance(a, bool) or isinstance(b, bool):
        return None
    ca = a.__class__
    if (ca is int or ca is float) and (b.__class__ is int or b.__class__ is float):
        return a, b
    if isinstance(a, str) and isinstance(b, str):
        return a, b
    if isinstance(a, datetime | Period) or isinstance(b, datetime | Period):
        da = to_dt(a)
        db = to_dt(b)
        return None if da is None or db is None else (da, db)
    na = num(a)
    nb = num(b)
    return None if na is None or nb is None else (na, nb)


def order(op: str, a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    if isinstance(a, list | tuple):
        return any(order(op, x, b) for x in a)
    if isinstance(b, list | tuple):
        return any(order(op, a, y) for y in b)
    pair = _ordered(a, b)
    if pair is None:
        return False
    x, y = pair
    if op == "<":
        return bool(x < y)
    if op == "<=":
        return bool(x <= y)
    if op == ">":
        return bool(x > y)
    return bool(x >= y)


def member(v: Any, coll: Any) -> bool:
    """`in`: both non-null and v is an item of coll."""
    items = as_list(coll)
    if v is None or items is None:
        return False
    if isinstance(v, list | tuple):
        return any(member(x, items) for x in v)
    cls = v.__class__
    for x in items:
        # Same-class items compare directly; eq() only for the coercion cases.
        if x.__class__ is cls:
            if x == v:
                return True
        elif eq(v, x):
            return True
    return False


def not_member(v: Any, coll: Any) -> bool:
    return v is not None and coll is not None and not member(v, coll)


# ---- strings -----------------------------------------------------------------------------


# Regular expressions run on RE2 (offerbase.regex): linear in the text whatever the pattern,
# so neither a rule's pattern nor a pattern read from profile data can stall a decision.
def like_regex(pattern: str) -> Pattern | None:
    """SQL LIKE: `%` any run, `_` one character, anchored at both ends; None if too long."""
    try:
        return compile_like(pattern)
    except RegexError:
        return None


def find_regex(pattern: str) -> Pattern | None:
    try:
        return compile_regex(pattern)
    except RegexError:
        return None


def like(s: Any, pattern: Any) -> bool:
    s = scalar(s)
    if not isinstance(s, str) or not isinstance(pattern, str):
        return False
    rx = like_regex(pattern)
    return rx is not None and fullmatch(rx, s) is not None


def matches(s: Any, pattern: Any) -> bool:
    """Java `find` semantics: a search, anchored only by an explicit ^ or $."""
    s = scalar(s)
    if not isinstance(s, str) or not isinstance(pattern, str):
        return False
    rx = find_regex(pattern)
    return rx is not None and search(rx, s) is not None


def regex_group(s: Any, pattern: Any, index: Any = 0) -> str | None:
    s = scalar(s)
    if not isinstance(s, str) or not isinstance(pattern, str) or index.__class__ is not int:
        return None
    rx = find_regex(pattern)
    m = search(rx, s) if rx is not None else None
    if m is None or not 0 <= index <= rx.groups:  # type: ignore[union-attr]
        return None
    return m.group(index)


def _fold(s: str, t: str, case_sensitive: Any) -> tuple[str, str]:
    if case_sensitive is False:
        return s.casefold(), t.casefold()
    return s, t


def str_test(name: str, s: Any, t: Any, case_sensitive: Any = True) -> bool:
    """The string methods: false whenever either string is missing."""
    s = scalar(s)
    t = scalar(t)
    if not isinstance(s, str) or not isinstance(t, str):
        return False
    s, t = _fold(s, t, case_sensitive)
    return _STR_TESTS[name](s, t)


_STR_TESTS: dict[str, Callable[[str, str], bool]] = {
    "equals": lambda s, t: s == t,
    "notEqualTo": lambda s, t: s != t,
    "contains": lambda s, t: t in s,
    "doesNotContain": lambda s, t: t not in s,
    "startsWith": lambda s, t: s.startswith(t),
    "doesNotStartWith": lambda s, t: not s.startswith(t),
    "endsWith": lambda s, t: s.endswith(t),
    "doesNotEndWith": lambda s, t: not s.endswith(t),
}
STRING_METHODS = frozenset(_STR_TESTS)


# ---- arrays and aggregates ---------------------------------------------------------------


def distinct(v: Any) -> list[Any] | None:
    items = as_list(v)
    if items is None:
        return None
    out: list[Any] = []
    for x in items:
        if not any(x == y and x.__class__ is y.__class__ for y in out):
            out.append(x)
    return out


def includes(a: Any, x: Any) -> bool:
    return member(x, a) if not isinstance(x, list | tuple) else False


def intersects(a: Any, b: Any) -> bool:
    la = as_list(a)
    lb = as_list(b)
    if la is None or lb is None:
        return False
    for x in la:
        if member(x, lb):
            return True
    return False


def intersection(a: Any, b: Any) -> list[Any] | None:
    """The common items, or null when there are none (old spec)."""
    la = as_list(a)
    lb = as_list(b)
    if la is None or lb is None:
        return None
    return distinct([x for x in la if member(x, lb)]) or None


def subset_of(a: Any, b: Any) -> bool:
    la = as_list(a)
    lb = as_list(b)
    if la is None or lb is None:
        return False
    return all(member(x, lb) for x in la)


def head(v: Any) -> Any:
    items = as_list(v)
    return items[0] if items else None


def count(v: Any) -> int:
    items = as_list(v)
    return 0 if items is None else len(items)


def numbers(values: list[Any]) -> list[int | float]:
    out: list[int | float] = []
    for v in values:
        n = num(v)
        if n is not None:
            out.append(n)
    return out


def aggregate(name: str, values: list[Any]) -> int | float | None:
    """sum of nothing is 0; average, min and max of nothing are null."""
    ns = numbers(values)
    if name == "sum":
        return sum(ns)
    if not ns:
        return None
    if name == "average":
        try:
            return sum(ns) / len(ns)
        except OverflowError:
            return None
    return min(ns) if name == "min" else max(ns)


# ---- maps --------------------------------------------------------------------------------


def get(m: Any, key: Any) -> Any:
    m = scalar(m)
    if not isinstance(m, Mapping) or not isinstance(key, str):
        return None
    return m.get(key)


def keys(m: Any) -> list[Any] | None:
    m = scalar(m)
    return list(m.keys()) if isinstance(m, Mapping) else None


def values(m: Any) -> list[Any] | None:
    m = scalar(m)
    return list(m.values()) if isinstance(m, Mapping) else None


# ---- audiences ---------------------------------------------------------------------------

_MEMBER_STATUSES = frozenset({"realized", "existing"})


def in_segment(profile: Mapping[str, Any], segment_id: Any) -> bool:
    """Realized or existing membership in any namespace (`ups` first); exited does not count."""
    if not isinstance(segment_id, str):
        return False
    membership = profile.get("segmentMembership")
    if not isinstance(membership, Mapping):
        return False
    namespaces = list(membership.values())
    ups = membership.get("ups")
    if ups is not None:
        namespaces.insert(0, ups)
    for ns in namespaces:
        entry = ns.get(segment_id) if isinstance(ns, Mapping) else None
        if isinstance(entry, Mapping) and entry.get("status") in _MEMBER_STATUSES:
            return True
    return False


# ---- time --------------------------------------------------------------------------------


class Period(NamedTuple):
    """A stretch of time [start, end); an instant has `instant` set and end == start."""

    start: datetime
    end: datetime
    instant: bool = False


_FIXED = {
    "millisecond": timedelta(milliseconds=1),
    "second": timedelta(seconds=1),
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
}
_MONTHS = {"month": 1, "year": 12, "decade": 120, "century": 1200, "millennium": 12000}


def to_dt(v: Any) -> datetime | None:
    """Timestamps arrive as datetimes, epoch milliseconds or ISO-8601 strings; all become UTC."""
    if isinstance(v, datetime):
        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)
    if isinstance(v, Period):
        return v.start
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=UTC)
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        try:
            return datetime.fromtimestamp(v / 1000, UTC)
        except (OverflowError, ValueError, OSError):
            return None
    if isinstance(v, str):
        s = v.strip()
        if s[-1:] in ("Z", "z"):
            s = s[:-1] + "+00:00"
        try:
            d = datetime.fromisoformat(s)
        except ValueError:
            return None
        return d if d.tzinfo is not None else d.replace(tzinfo=UTC)
    if isinstance(v, list | tuple) and len(v) == 1:
        return to_dt(v[0])
    return None


def to_period(v: Any) -> Period | None:
    if isinstance(v, Period):
        return v
    d = to_dt(v)
    return None if d is None else Period(d, d, True)


def shift(d: datetime, n: int, unit: str) -> datetime:
    """Calendar arithmetic: months and longer clamp the day (31 Mar - 1 month = 28/29 Feb)."""
    step = _FIXED.get(unit)
    if step is not None:
        return d + step * n
    years, month0 = divmod(d.month - 1 + n * _MONTHS[unit], 12)
    year = d.year + years
    day = min(d.day, calendar.monthrange(year, month0 + 1)[1])
    return d.replace(year=year, month=month0 + 1, day=day)


def truncate(d: datetime, unit: str) -> datetime:
    """Start of the calendar unit holding d; weeks start on Sunday."""
    if unit == "millisecond":
        return d.replace(microsecond=d.microsecond // 1000 * 1000)
    if unit == "second":
        return d.replace(microsecond=0)
    if unit == "minute":
        return d.replace(second=0, microsecond=0)
    if unit == "hour":
        return d.replace(minute=0, second=0, microsecond=0)
    day = d.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=(day.weekday() + 1) % 7)
    if unit == "month":
        return day.replace(day=1)
    size = {"year": 1, "decade": 10, "century": 100}.get(unit, 1000)
    return day.replace(year=d.year // size * size, month=1, day=1)


def period_of(d: datetime, unit: str, offset: int = 0) -> Period:
    start = shift(truncate(d, unit), offset, unit)
    return Period(start, shift(start, 1, unit))


def day_period(d: datetime, offset: int = 0) -> Period:
    return period_of(d, "day", offset)


def make_date(y: Any, m: Any, d: Any) -> Period | None:
    if y.__class__ is not int or m.__class__ is not int or d.__class__ is not int:
        return None
    try:
        return day_period(datetime(y, m, d, tzinfo=UTC))
    except (ValueError, OverflowError):
        return None


def date_part(v: Any, part: str) -> int | None:
    d = to_dt(v)
    if d is None:
        return None
    return d.month if part == "month" else d.year if part == "year" else d.day


def occurs_distance(t: Any, ref: Any, op: str, n: int, unit: str, direction: str) -> bool:
    """Form A: compare the distance between t and ref with n units."""
    d = to_dt(t)
    p = to_period(ref)
    if d is None or p is None:
        return False
    try:
        if direction == "before":
            anchor = p.start
            if d > anchor:
                return False
            bound = shift(anchor, -n, unit)
            closer = d >= bound, d > bound
        else:
            anchor = p.start if p.instant else p.end
            if d < anchor:
                return False
            bound = shift(anchor, n, unit)
            closer = d <= bound, d < bound
        if op in ("=", "!="):
            start = truncate(bound, unit)
            inside = start <= d < shift(start, 1, unit)
            return inside if op == "=" else not inside
    except (ValueError, OverflowError):
        return False
    within, strictly = closer
    if op == "<=":
        return within
    if op == "<":
        return strictly
    if op == ">":
        return not within
    return not strictly


def occurs_side(t: Any, ref: Any, direction: str) -> bool:
    """Form B: before the start, or after the end, of ref."""
    d = to_dt(t)
    p = to_period(ref)
    if d is None or p is None:
        return False
    if direction == "before":
        return d < p.start
    return d > p.start if p.instant else d >= p.end


def occurs_on(t: Any, ref: Any) -> bool:
    d = to_dt(t)
    p = to_period(ref)
    if d is None or p is None:
        return False
    if p.instant:  # `occurs on <timestamp>` means the same UTC day
        p = day_period(p.start)
    return p.start <= d < p.end


def occurs_between(t: Any, ref1: Any, ref2: Any) -> bool:
    d = to_dt(t)
    p1 = to_period(ref1)
    p2 = to_period(ref2)
    if d is None or p1 is None or p2 is None:
        return False
    if d < p1.start:
        return False
    return d <= p2.start if p2.instant else d < p2.end
