"""Vectorised eligibility: PQL decision rules as Polars expressions over a frame of profiles.

`compile_rule(expression)` translates a rule's syntax tree into one Boolean `polars.Expr` with
the semantics of the engine's closures (`pql/functions.py`: null rules, coercions between
strings, numbers and booleans, the string methods). The closures stay the reference; this is a
faster way to get the same answers for a million profiles at once.

The translated expression is three-valued on purpose. True and False are the closure's answer.
Null means "this row holds data the translation does not model exactly" (a list where a scalar
was expected, an integer beyond 2**53, NaN, a non-ASCII string under a case-insensitive test, an
arithmetic result that a float cannot hold exactly): `eligible_mask` evaluates those rows with
the closure, so its masks are exact whatever the data. A rule whose shape is not translated
(offer, context or parameter reads, regular expressions, time, arrays, select/let, ...) compiles
to None and the caller evaluates it per row.

Frame layout (`profile_frame`): for every profile path a rule reads (its keys joined by "."):

    <path>#k   UInt8, the kind of value: 0 null or missing, 1 boolean, 2 number, 3 string,
               4 map, 5 irregular (anything else: list, huge integer, NaN, timestamp, ...)
    <path>#b   Boolean, the value when kind 1
    <path>#n   Float64, the value when kind 2 (integers only within 2**53: exact)
    <path>#s   String, the value when kind 3
    <path>#sn  Float64, the string as a number (functions.num): null when not numeric, NaN when
               that number is not exactly a float (an integer beyond 2**53, "nan")
    #seg:<id>  Boolean, inSegment("<id>") (functions.in_segment)

PQL names are `[A-Za-z_][A-Za-z0-9_]*`, so these names cannot collide. Only the columns that the
compiled expressions name (`Expr.meta.root_names()`) are built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias, cast

import polars as pl
import pyarrow as pa

from offerbase import pql
from offerbase.engine.snapshot import Snapshot
from offerbase.pql import ast as A
from offerbase.pql import functions as F
from offerbase.pql.parser import parse

__all__ = ["compile_rule", "eligible_mask", "profile_frame"]

Profiles: TypeAlias = Sequence[Mapping[str, Any]] | pl.DataFrame | pa.Table

NULL, BOOL, NUM, STR, MAP, IRREGULAR = range(6)
# Integers beyond this are not all exact as floats; the closures compare them exactly.
EXACT_INT = 2**53
# An `in` list longer than this is left to the closure (one comparison per item here).
MAX_LIST_ITEMS = 256
_STRING_TESTS = {
    "equals": lambda s, t: s == t,
    "notEqualTo": lambda s, t: s != t,
    "contains": lambda s, t: s.str.contains(t, literal=True),
    "doesNotContain": lambda s, t: ~s.str.contains(t, literal=True),
    "startsWith": lambda s, t: s.str.starts_with(t),
    "doesNotStartWith": lambda s, t: ~s.str.starts_with(t),
    "endsWith": lambda s, t: s.str.ends_with(t),
    "doesNotEndWith": lambda s, t: ~s.str.ends_with(t),
}
_ORDER: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_ARITH: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: pl.when(b == 0).then(None).otherwise(a / b),
}
_NON_ASCII = r"[^\x00-\x7F]"
# Arithmetic operators and predicates-as-values per rule (see _Translator).
MAX_SHARED_NODES = 6


class _Untranslatable(Exception):
    """The rule (or a part of it) has no exact vectorised form: the caller uses the closure."""


def column(path: str, part: str) -> str:
    return f"{path}#{part}"


def segment_column(segment_id: str) -> str:
    return f"#seg:{segment_id}"


Cond = pl.Expr | bool  # a condition folded to a Python bool where the kinds are known statically


def _bool(v: Any) -> pl.Expr:
    return v if isinstance(v, pl.Expr) else pl.lit(v, dtype=pl.Boolean)


def _and(a: Cond, b: Cond) -> Cond:
    if a is False or b is False:
        return False
    if a is True:
        return b
    if b is True:
        return a
    return a & b


def _or(a: Cond, b: Cond) -> Cond:
    if a is True or b is True:
        return True
    if a is False:
        return b
    if b is False:
        return a
    return a | b


def _case(branches: Iterable[tuple[Cond, Any]], default: Any) -> pl.Expr:
    """`when c1 then v1 when c2 then v2 ... otherwise default`, statically false branches dropped
    and a statically true one ending the chain; values are Boolean (None = undecided)."""
    live: list[tuple[pl.Expr, Any]] = []
    for cond, value in branches:
        if cond is False:
            continue
        if cond is True:
            default = value
            break
        live.append((cond, value))
    if not live:
        return _bool(default)
    chain: Any = pl
    for cond, value in live:
        chain = chain.when(cond).then(_bool(value))
    return chain.otherwise(_bool(default))  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class _Value:
    """A PQL value as columns: its kind and one typed expression per kind. `kind` is the kind
    when it is known statically (literals), else None and `k` is read per row."""

    k: pl.Expr
    b: pl.Expr
    n: pl.Expr
    s: pl.Expr
    sn: pl.Expr
    kind: int | None = None
    literal: Any = None
    numeric: bool = False  # an arithmetic result: only `n`, NaN standing for irregular

    def is_(self, kind: int) -> Cond:
        if self.kind is not None:
            return self.kind == kind
        if self.numeric:
            if kind == NULL:
                return self.n.is_null()
            if kind == IRREGULAR:
                return self.n.is_nan()
            return ~self.n.is_nan() if kind == NUM else False
        return self.k == kind

    def num(self) -> pl.Expr:
        """functions.num: numbers themselves, numeric strings coerced, anything else null;
        NaN where the value is left to the closure."""
        if self.numeric:
            return self.n
        if self.kind is not None:
            return self.n if self.kind == NUM else self.sn
        return (
            pl.when(self.k == NUM)
            .then(self.n)
            .when(self.k == STR)
            .then(self.sn)
            .when(self.k == IRREGULAR)
            .then(float("nan"))
            .otherwise(None)
            .cast(pl.Float64)
        )


_NULL_F64 = pl.lit(None, dtype=pl.Float64)
_NULL_STR = pl.lit(None, dtype=pl.String)
_NULL_BOOL = pl.lit(None, dtype=pl.Boolean)


def _exact_num(v: Any) -> float | None:
    """functions.num(v) as a float; NaN when the closure's number is not exactly that float."""
    x = F.num(v)
    if x is None:
        return None
    if isinstance(x, int) and not -EXACT_INT <= x <= EXACT_INT:
        return float("nan")
    return float(x)


def _literal(value: Any) -> _Value:
    if value.__class__ is bool:
        kind = BOOL
    elif value.__class__ is str:
        kind = STR
    elif value.__class__ is int or value.__class__ is float:
        if value != value or value.__class__ is int and not -EXACT_INT <= value <= EXACT_INT:
            raise _Untranslatable("number literal not exact as a float")
        kind = NUM
    else:  # pragma: no cover - the parser makes no other literal
        raise _Untranslatable(f"literal {value!r}")
    sn = _exact_num(value) if kind == STR else None
    return _Value(
        k=pl.lit(kind, dtype=pl.UInt8),
        b=pl.lit(value, dtype=pl.Boolean) if kind == BOOL else _NULL_BOOL,
        n=pl.lit(float(value), dtype=pl.Float64) if kind == NUM else _NULL_F64,
        s=pl.lit(value, dtype=pl.String) if kind == STR else _NULL_STR,
        sn=_NULL_F64 if sn is None else pl.lit(sn, dtype=pl.Float64),
        kind=kind,
        literal=value,
    )


def _path(path: str) -> _Value:
    return _Value(
        k=pl.col(column(path, "k")),
        b=pl.col(column(path, "b")),
        n=pl.col(column(path, "n")),
        s=pl.col(column(path, "s")),
        sn=pl.col(column(path, "sn")),
    )


def _from_predicate(p: pl.Expr) -> _Value:
    """A predicate used as a value: a boolean (undecided stays undecided)."""
    return _Value(
        k=pl.when(p.is_null()).then(pl.lit(IRREGULAR, pl.UInt8)).otherwise(pl.lit(BOOL, pl.UInt8)),
        b=p,
        n=_NULL_F64,
        s=_NULL_STR,
        sn=_NULL_F64,
    )


def _from_number(r: pl.Expr) -> _Value:
    """An arithmetic result, one Float64 expression: null is null, NaN is irregular (NaN itself,
    an operand left to the closure, or beyond 2**53 where the closures' integers are exact)."""
    n = pl.when(r.abs() > EXACT_INT).then(float("nan")).otherwise(r)
    return _Value(
        k=pl.lit(None, pl.UInt8), b=_NULL_BOOL, n=n, s=_NULL_STR, sn=_NULL_F64, numeric=True
    )


# ---- the semantics of functions.py, per kind ---------------------------------------------


def _known_non_null(a: _Value, b: _Value) -> list[tuple[Cond, Any]]:
    """The first branches of every binary predicate: a missing side is false, then an
    irregular side is undecided."""
    return [
        (_or(a.is_(NULL), b.is_(NULL)), False),
        (_or(a.is_(IRREGULAR), b.is_(IRREGULAR)), None),
    ]


def _lower(s: pl.Expr) -> pl.Expr:
    """casefold() equals lower() on ASCII; other strings are left to the closure (null)."""
    return pl.when(s.str.contains(_NON_ASCII)).then(None).otherwise(s.str.to_lowercase())


def _bool_str_eq(b: _Value, s: _Value) -> pl.Expr:
    """`true = "TRUE"`: str(bool).lower() == s.lower() (functions._coerced_eq)."""
    if s.kind == STR:
        low = s.literal.lower()
        if low == "true":
            return b.b
        if low == "false":
            return ~b.b
        return _bool(False)
    word = b.b.cast(pl.String).str.to_lowercase()  # "true" / "false"
    return _lower(s.s) == word


def _num_str(n: pl.Expr, sn: pl.Expr, test: Callable[[pl.Expr, pl.Expr], pl.Expr]) -> pl.Expr:
    """A number against a numeric string; a non-numeric string is false."""
    if sn is _NULL_F64:  # a literal string that is not a number
        return _bool(False)
    return pl.when(sn.is_nan()).then(None).otherwise(test(n, sn).fill_null(False))


def _eq(a: _Value, b: _Value) -> pl.Expr:
    """functions.eq for non-list values."""
    both = _and
    return _case(
        [
            *_known_non_null(a, b),
            (both(a.is_(BOOL), b.is_(BOOL)), a.b == b.b),
            (both(a.is_(NUM), b.is_(NUM)), a.n == b.n),
            (both(a.is_(STR), b.is_(STR)), a.s == b.s),
            (both(a.is_(MAP), b.is_(MAP)), None),  # map equality: the closure's
            (both(a.is_(BOOL), b.is_(STR)), _bool_str_eq(a, b)),
            (both(a.is_(STR), b.is_(BOOL)), _bool_str_eq(b, a)),
            (both(a.is_(NUM), b.is_(STR)), _num_str(a.n, b.sn, lambda x, y: x == y)),
            (both(a.is_(STR), b.is_(NUM)), _num_str(b.n, a.sn, lambda x, y: x == y)),
        ],
        False,
    )


def _ne(a: _Value, b: _Value) -> pl.Expr:
    """functions.ne: the non-null negation of `=`."""
    return _case([(_or(a.is_(NULL), b.is_(NULL)), False)], ~_eq(a, b))


def _order(op: str, a: _Value, b: _Value) -> pl.Expr:
    """functions.order: numbers and strings each in their own order, a numeric string against a
    number as numbers, a boolean or a map never ordered."""
    test = _ORDER[op]
    both = _and
    return _case(
        [
            *_known_non_null(a, b),
            (both(a.is_(NUM), b.is_(NUM)), test(a.n, b.n)),
            (both(a.is_(STR), b.is_(STR)), test(a.s, b.s)),  # UTF-8 order is code point order
            (both(a.is_(NUM), b.is_(STR)), _num_str(a.n, b.sn, test)),
            (both(a.is_(STR), b.is_(NUM)), _num_str(b.n, a.sn, lambda x, y: test(y, x))),
        ],
        False,
    )


def _member(v: _Value, items: list[Any]) -> pl.Expr:
    """functions.member(v, [literals]): any item equal to v (with eq's coercions)."""
    if len(items) > MAX_LIST_ITEMS:
        raise _Untranslatable("list too long")
    if not items:
        return _case([(v.is_(IRREGULAR), None)], False)
    if all(x.__class__ is str for x in items):  # `country in ["US", "CA"]`, the common shape
        nums = [_exact_num(x) for x in items]
        if any(x is not None and x != x for x in nums):
            raise _Untranslatable("numeric string not exact as a float")
        numeric = sorted({x for x in nums if x is not None})
        lows = {x.lower() for x in items}
        return _case(
            [
                (v.is_(NULL), False),
                (v.is_(IRREGULAR), None),
                (v.is_(STR), v.s.is_in(sorted(set(items)))),
                (v.is_(NUM), v.n.is_in(numeric) if numeric else False),
                (
                    v.is_(BOOL),
                    (v.b & ("true" in lows)) | (~v.b & ("false" in lows)),
                ),
            ],
            False,
        )
    tests = [_eq(v, _literal(x)) for x in items]
    return _balanced(tests, "or")


def _not_member(v: _Value, items: list[Any]) -> pl.Expr:
    return _case([(v.is_(NULL), False)], ~_member(v, items))


def _string_test(name: str, s: _Value, t: _Value, fold: bool) -> pl.Expr:
    """functions.str_test: false unless both sides are strings."""
    other = (NULL, BOOL, NUM, MAP)
    not_strings: Cond = False
    for kind in other:
        not_strings = _or(not_strings, _or(s.is_(kind), t.is_(kind)))
    left = _lower(s.s) if fold else s.s
    if t.kind == STR:
        right: pl.Expr = pl.lit(t.literal.casefold() if fold else t.literal, dtype=pl.String)
    else:
        right = _lower(t.s) if fold else t.s
    return _case(
        [
            (not_strings, False),
            (_or(s.is_(IRREGULAR), t.is_(IRREGULAR)), None),
        ],
        _STRING_TESTS[name](left, right),
    )


def _truthy(v: _Value) -> pl.Expr:
    """functions.truthy: null false, a boolean itself, any other present value true."""
    return _case(
        [(v.is_(NULL), False), (v.is_(BOOL), v.b), (v.is_(IRREGULAR), None)],
        True,
    )


def _balanced(items: list[pl.Expr], op: str) -> pl.Expr:
    """`a & b & c ...` as a balanced tree: long rules must not make a deep expression."""
    while len(items) > 1:
        pairs = [
            items[i] & items[i + 1] if op == "and" else items[i] | items[i + 1]
            for i in range(0, len(items) - 1, 2)
        ]
        if len(items) % 2:
            pairs.append(items[-1])
        items = pairs
    return items[0]


# ---- the syntax tree ---------------------------------------------------------------------

_PREDICATES = frozenset({*F.STRING_METHODS, "isNull", "isNotNull"})


class _Translator:
    """AST -> Polars, mirroring pql/compiler.py's dispatch for the shapes it translates.

    An arithmetic result or a predicate used as a value is read more than once by what uses it,
    and Polars expressions are trees, not graphs: `budget` bounds those nodes so that a deeply
    nested rule cannot make an expression exponential in its size (it is left to the closure).
    """

    def __init__(self) -> None:
        self.budget = MAX_SHARED_NODES

    def spend(self, node: A.Node) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise _Untranslatable("too much arithmetic for one expression")

    def boolean(self, node: A.Node) -> pl.Expr:
        if isinstance(node, A.Logic):
            return self.logic(node)
        if isinstance(node, A.Not):
            return ~self.boolean(node.operand)
        if isinstance(node, A.Cmp):
            return self.cmp(node)
        if isinstance(node, A.Method) and node.name in _PREDICATES:
            return self.predicate_method(node)
        if isinstance(node, A.Call) and node.name == "inSegment":
            return self.in_segment(node)
        if isinstance(node, A.Lit) and isinstance(node.value, bool):
            return _bool(node.value)
        return _truthy(self.value(node))

    def value(self, node: A.Node) -> _Value:
        if isinstance(node, A.Lit):
            return _literal(node.value)
        if isinstance(node, A.Name | A.Field):
            return _path(self.path(node))
        if isinstance(node, A.BinOp):
            return self.arith(node)
        if isinstance(node, A.Neg):
            self.spend(node)
            return _from_number(-self.value(node.operand).num())
        if (
            isinstance(node, A.Logic | A.Not | A.Cmp)
            or isinstance(node, A.Method)
            and node.name in _PREDICATES
            or isinstance(node, A.Call)
            and node.name == "inSegment"
        ):
            self.spend(node)
            return _from_predicate(self.boolean(node))
        raise _Untranslatable(type(node).__name__)

    def path(self, node: A.Node) -> str:
        """A profile path (compile_rule has ruled out offer, context and parameters)."""
        keys: list[str] = []
        while isinstance(node, A.Field):
            keys.append(node.name)
            node = node.obj
        if not isinstance(node, A.Name):
            raise _Untranslatable("field of a computed value")
        keys.reverse()
        if node.name != "profile":
            keys.insert(0, node.name)
        if not keys:
            raise _Untranslatable("the whole profile as a value")
        return ".".join(keys)

    def logic(self, node: A.Logic) -> pl.Expr:
        operands: list[A.Node] = []
        stack: list[A.Node] = [node]
        while stack:  # flatten `a and b and c` iteratively, as the compiler does
            n = stack.pop()
            if isinstance(n, A.Logic) and n.op == node.op:
                stack.append(n.right)
                stack.append(n.left)
            else:
                operands.append(n)
        # Kleene logic is the closures' short circuit: false and undecided is false.
        return _balanced([self.boolean(x) for x in operands], node.op)

    def cmp(self, node: A.Cmp) -> pl.Expr:
        op = node.op
        if op in ("like", "matches"):
            raise _Untranslatable(op)
        left = self.value(node.left)
        if op in ("in", "notIn"):
            right = node.right
            if not isinstance(right, A.ListLit) or not all(
                isinstance(x, A.Lit) for x in right.items
            ):
                raise _Untranslatable("membership in a computed collection")
            items = [x.value for x in right.items if isinstance(x, A.Lit)]
            for x in items:
                _literal(x)  # refuses numbers that are not exact as floats
            return _member(left, items) if op == "in" else _not_member(left, items)
        right_value = self.value(node.right)
        if op == "=":
            return _eq(left, right_value)
        if op == "!=":
            return _ne(left, right_value)
        return _order(op, left, right_value)

    def predicate_method(self, node: A.Method) -> pl.Expr:
        recv = self.value(node.obj)
        if node.name == "isNull":
            return _case([(recv.is_(NULL), True), (recv.is_(IRREGULAR), None)], False)
        if node.name == "isNotNull":
            return _case([(recv.is_(NULL), False), (recv.is_(IRREGULAR), None)], True)
        fold = False
        if len(node.args) == 2:
            flag = node.args[1]
            if not isinstance(flag, A.Lit):
                raise _Untranslatable("computed case flag")
            fold = flag.value is False
        return _string_test(node.name, recv, self.value(node.args[0]), fold)

    def in_segment(self, node: A.Call) -> pl.Expr:
        arg = node.args[0]
        if not isinstance(arg, A.Lit):
            raise _Untranslatable("computed segment id")
        if not isinstance(arg.value, str):
            return _bool(False)
        return pl.col(segment_column(arg.value))

    def arith(self, node: A.BinOp) -> _Value:
        rest: list[tuple[str, A.Node]] = []
        left: A.Node = node
        while isinstance(left, A.BinOp):  # the left spine iteratively, as the compiler does
            rest.append((left.op, left.right))
            left = left.left
        acc = self.value(left)
        for op, right in reversed(rest):
            fn = _ARITH.get(op)
            if fn is None:  # `%` is Java's remainder; Polars' is the floored one
                raise _Untranslatable(op)
            self.spend(node)
            acc = _from_number(fn(acc.num(), self.value(right).num()))
        return acc


def compile_rule(expression: Any) -> pl.Expr | None:
    """A rule as a Boolean Polars expression over `profile_frame` columns, or None.

    True/False are the closure's answer; null rows must be evaluated with the closure
    (`eligible_mask` does). None: the rule has no vectorised form (it reads the offer, the
    context or parameters, or uses a construct not translated here).
    """
    if not isinstance(expression, pql.Expression) or expression.kind != "rule":
        return None
    if expression.reads_offer or expression.reads_context or expression.reads_params:
        return None
    try:
        return _Translator().boolean(parse(expression.source, "rule"))
    except (_Untranslatable, RecursionError):
        return None


# ---- profiles as a frame -----------------------------------------------------------------


def _kind(v: Any) -> int:
    c = v.__class__
    if v is None:
        return NULL
    if c is bool:
        return BOOL
    if c is int:
        return NUM if -EXACT_INT <= v <= EXACT_INT else IRREGULAR
    if c is float:
        return NUM if v == v else IRREGULAR
    if c is str:
        if v.isascii():
            return STR
        try:
            v.encode("utf-8")  # lone surrogates have no Arrow form
        except UnicodeEncodeError:
            return IRREGULAR
        return STR
    if c is dict:
        return MAP
    return IRREGULAR


def _getter(keys: tuple[str, ...]) -> Callable[[Any], Any]:
    """compiler._profile_path's semantics: a map lookup per key, functions.field otherwise."""
    field = F.field

    def get(v: Any) -> Any:
        for k in keys:
            v = v.get(k) if v.__class__ is dict else field(v, k)
        return v

    return get


def _parts_from_values(values: list[Any], parts: set[str]) -> dict[str, pl.Series]:
    kinds = [_kind(v) for v in values]
    out = {"k": pl.Series(kinds, dtype=pl.UInt8)}
    if "b" in parts:
        out["b"] = pl.Series(
            [v if k == BOOL else None for v, k in zip(values, kinds, strict=True)],
            dtype=pl.Boolean,
        )
    if "n" in parts:
        out["n"] = pl.Series(
            [v if k == NUM else None for v, k in zip(values, kinds, strict=True)],
            dtype=pl.Float64,
        )
    if "s" in parts or "sn" in parts:
        out["s"] = pl.Series(
            [v if k == STR else None for v, k in zip(values, kinds, strict=True)],
            dtype=pl.String,
        )
    return out


def _struct_path(frame: pl.DataFrame, keys: tuple[str, ...]) -> pl.Series | None:
    """The column at a dotted path of nested structs; None when the path is absent (null)."""
    if keys[0] not in frame.columns:
        return None
    series = frame.get_column(keys[0])
    for k in keys[1:]:
        dtype = series.dtype
        if isinstance(dtype, pl.Struct):
            if k not in {f.name for f in dtype.fields}:
                return None
            series = series.struct.field(k)
        elif isinstance(dtype, pl.List | pl.Array):  # field() maps over lists: irregular
            return series
        else:  # a field of a scalar is null
            return None
    return series


def _parts_from_series(series: pl.Series | None, height: int) -> dict[str, pl.Series]:
    if series is None or series.dtype == pl.Null:
        return {"k": pl.Series([NULL] * height, dtype=pl.UInt8)}
    dtype = series.dtype
    if isinstance(dtype, pl.Categorical | pl.Enum):
        series = series.cast(pl.String)
        dtype = series.dtype
    present = series.is_not_null()
    s = series.to_frame("v")
    v = pl.col("v")
    none = pl.lit(None)
    if dtype == pl.Boolean:
        kind, cols = pl.when(v.is_null()).then(NULL).otherwise(BOOL), {"b": v}
    elif dtype.is_integer():
        exact = (v >= -EXACT_INT) & (v <= EXACT_INT)
        kind = pl.when(v.is_null()).then(NULL).when(exact).then(NUM).otherwise(IRREGULAR)
        cols = {"n": pl.when(exact).then(v.cast(pl.Float64)).otherwise(none)}
    elif dtype.is_float():
        kind = pl.when(v.is_null()).then(NULL).when(v.is_nan()).then(IRREGULAR).otherwise(NUM)
        cols = {"n": pl.when(v.is_nan()).then(None).otherwise(v.cast(pl.Float64))}
    elif dtype == pl.String:
        kind, cols = pl.when(v.is_null()).then(NULL).otherwise(STR), {"s": v}
    elif isinstance(dtype, pl.Struct):
        kind, cols = pl.when(v.is_null()).then(NULL).otherwise(MAP), {}
    else:
        kind, cols = pl.when(present).then(IRREGULAR).otherwise(NULL), {}
    got = s.select(kind.cast(pl.UInt8).alias("k"), *(e.alias(p) for p, e in cols.items()))
    return {name: got.get_column(name) for name in got.columns}


def _string_numbers(s: pl.Series) -> pl.Series:
    """functions.num of each string, computed once per distinct string."""
    mapping = {u: _exact_num(u) for u in s.drop_nulls().unique().to_list()}
    if not mapping:
        return pl.Series([None] * len(s), dtype=pl.Float64)
    return s.replace_strict(mapping, default=None, return_dtype=pl.Float64)


def _typed(parts: dict[str, pl.Series], part: str, height: int) -> pl.Series:
    if part == "sn":
        s = parts.get("s")
        return pl.Series([None] * height, dtype=pl.Float64) if s is None else _string_numbers(s)
    got = parts.get(part)
    if got is not None:
        return got
    dtype = {"b": pl.Boolean, "n": pl.Float64, "s": pl.String}[part]
    return pl.Series([None] * height, dtype=dtype)


def profile_frame(profiles: Profiles, columns: Iterable[str]) -> pl.DataFrame:
    """The frame `compile_rule`'s expressions read (see the module docstring).

    `profiles`: profile dicts, or a Polars DataFrame / Arrow Table whose rows are profiles
    (nested objects as struct columns, read as `DataFrame.to_dicts()` reads them).
    """
    frame = _as_frame(profiles)
    height = len(profiles) if frame is None else frame.height
    wanted: dict[str, set[str]] = {}
    segments: list[str] = []
    for name in dict.fromkeys(columns):
        if name.startswith("#seg:"):
            segments.append(name[5:])
        else:
            path, _, part = name.rpartition("#")
            wanted.setdefault(path, set()).add(part)
    out: dict[str, pl.Series] = {}
    for path, parts in wanted.items():
        keys = tuple(path.split("."))
        if frame is None:
            get = _getter(keys)
            by_part = _parts_from_values([get(p) for p in _dicts(profiles)], parts)
        else:
            by_part = _parts_from_series(_struct_path(frame, keys), height)
        for part in parts:
            out[column(path, part)] = by_part["k"] if part == "k" else _typed(by_part, part, height)
    for segment_id in segments:
        if frame is None:
            rows: Iterable[Any] = _dicts(profiles)
        else:
            membership = (
                frame.get_column("segmentMembership").to_list()
                if "segmentMembership" in frame.columns
                else [None] * height
            )
            rows = ({"segmentMembership": m} for m in membership)
        out[segment_column(segment_id)] = pl.Series(
            [F.in_segment(p, segment_id) for p in rows], dtype=pl.Boolean
        )
    if not out:  # rules that read nothing: the frame still has one row per profile
        out["#row"] = pl.Series([0] * height, dtype=pl.UInt8)
    return pl.DataFrame(out)


def _dicts(profiles: Profiles) -> Sequence[Mapping[str, Any]]:
    """`profiles` when it is not a frame (checked by the caller with _as_frame)."""
    return cast(Sequence[Mapping[str, Any]], profiles)


def _as_frame(profiles: Profiles) -> pl.DataFrame | None:
    if isinstance(profiles, pl.DataFrame):
        return profiles
    if isinstance(profiles, pa.Table):
        got = pl.from_arrow(profiles)
        assert isinstance(got, pl.DataFrame)
        return got
    return None


# ---- the entry point ---------------------------------------------------------------------


def _closure(expr: Any, profile: Mapping[str, Any], now: datetime | None) -> bool:
    """engine.eligibility.Evaluator.rule for one profile: anything but True is False."""
    try:
        return expr.evaluate(profile, now=now) is True
    except Exception:  # a rule that fails at run time excludes, as in the engine
        return False


def eligible_mask(
    snapshot: Snapshot,
    rule_ids: Iterable[str],
    profiles: Profiles,
    *,
    now: datetime | None = None,
    bodies: Callable[[list[int]], Sequence[Mapping[str, Any]]] | None = None,
) -> dict[str, pl.Series | None]:
    """Per rule id, a Boolean Series over the profiles (True = the rule holds), or None when the
    rule has no vectorised form (the caller evaluates it per row, with the offer or context).

    Exactly the engine's answers: unknown and broken rules are all False; rows the expression
    leaves undecided are evaluated with the rule's closure, on `bodies(positions)` when given
    (the caller's profile dicts of those rows: batch/partition.py reads a null struct field as
    an absent one), else on the rows as `DataFrame.to_dicts()` reads them.
    """
    frame = _as_frame(profiles)
    height = len(profiles) if frame is None else frame.height
    result: dict[str, pl.Series | None] = {}
    exprs: dict[str, tuple[Any, pl.Expr]] = {}
    for rule_id in dict.fromkeys(rule_ids):
        compiled = snapshot.rules.get(rule_id)
        if compiled is None or compiled.expr is None:
            result[rule_id] = pl.Series(rule_id, [False] * height, dtype=pl.Boolean)
            continue
        if compiled.uses_offer or compiled.params:
            result[rule_id] = None
            continue
        expr = compile_rule(compiled.expr)
        if expr is None:
            result[rule_id] = None
            continue
        exprs[rule_id] = (compiled.expr, expr)
    if not exprs:
        return result
    needed = {name for _, e in exprs.values() for name in e.meta.root_names()}
    columns = profile_frame(profiles if frame is None else frame, needed)
    # with_columns, not select: a rule that reads no column (`true`) still gets one row each
    masks = columns.with_columns(
        *(_bool(e).alias(f"r{i}") for i, (_, e) in enumerate(exprs.values()))
    )
    for i, (rule_id, (closure, _)) in enumerate(exprs.items()):
        mask = masks.get_column(f"r{i}")
        undecided = mask.is_null()
        if undecided.any():
            at = undecided.arg_true()
            if bodies is not None:
                values = [_closure(closure, p, now) for p in bodies(at.to_list())]
            elif frame is None:
                dicts = _dicts(profiles)
                values = [_closure(closure, dicts[j], now) for j in at.to_list()]
            else:
                picked = frame[at].to_dicts()
                values = [_closure(closure, p, now) for p in picked]
            mask = mask.scatter(at, values)
        result[rule_id] = mask.alias(rule_id)
    return result
