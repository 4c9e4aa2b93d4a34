"""AST -> Python closures. Evaluation is then plain calls: no tree walking, no eval of user text.

Every closure has the signature `f(profile, env)`. `env` is None when the expression needs
nothing but the profile (the common attribute rule), which saves building an Env per call.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from offerbase.regex import RegexError, compile_like, compile_regex, fullmatch

from . import ast as A
from . import functions as F
from .errors import PqlError
from .lexer import offset
from .parser import T3

Fn = Callable[[Any, Any], Any]
Origin = str | None  # "profile path" or "@{type}.path" that a variable or item came from

MAX_COMPILE_DEPTH = 200
MAX_PROFILE_PATHS = 25
MAX_CONTEXT_PATHS = 30
STATIC_PARAMS = frozenset({"profile", "offer"})
DEFAULT_PARAMS = frozenset({"boosted", "xEvent"})

_PREDICATE_METHODS = F.STRING_METHODS | {
    "isNull",
    "isNotNull",
    "matches",
    "includes",
    "intersects",
    "subsetOf",
    "supersetOf",
    "exists",
}
_T3_METHODS = frozenset({"topN", "bottomN", "groupBy", "map"})
_T3_FUNCTIONS = frozenset({"mapEntry", "stringCompare", "topN", "bottomN", "groupBy", "map"})
_FAST_CMP = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_AGGREGATES = frozenset({"sum", "average", "min", "max"})
_DATE_PARTS = {"getMonth": "month", "getYear": "year", "getDayOfMonth": "day"}
_CURRENT = {"currentMonth": "month", "currentYear": "year", "currentDayOfMonth": "day"}
# Arity ranges of methods: (min, max).
_METHOD_ARITY = {
    **dict.fromkeys(F.STRING_METHODS, (1, 2)),
    **dict.fromkeys(_AGGREGATES, (0, 1)),
    **dict.fromkeys(_DATE_PARTS, (0, 0)),
    "isNull": (0, 0),
    "isNotNull": (0, 0),
    "matches": (1, 1),
    "regexGroup": (1, 2),
    "get": (1, 1),
    "keys": (0, 0),
    "values": (0, 0),
    "includes": (1, 1),
    "intersects": (1, 1),
    "intersection": (1, 1),
    "subsetOf": (1, 1),
    "supersetOf": (1, 1),
    "distinct": (0, 0),
    "head": (0, 0),
    "count": (0, 0),
    "filter": (1, 1),
    "exists": (1, 1),
}
_FUNCTION_ARITY = {
    "if": 3,
    "date": 3,
    "inSegment": 1,
    "currentMonth": 0,
    "currentYear": 0,
    "currentDayOfMonth": 0,
}


def _strip_xdm(v: Any) -> Any:
    """Decisioning API context data keys carry an `xdm:` prefix that PQL paths leave out."""
    if isinstance(v, Mapping):
        return {
            (k[4:] if isinstance(k, str) and k.startswith("xdm:") else k): _strip_xdm(x)
            for k, x in v.items()
        }
    if isinstance(v, list):
        return [_strip_xdm(x) for x in v]
    return v


class Env:
    """Per-evaluation state: the other inputs, the clock, and slots for bound variables."""

    __slots__ = ("_contexts", "_now", "context", "offer", "params", "slots")

    def __init__(
        self,
        offer: Any,
        context: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
        now: datetime | None,
        nslots: int,
    ) -> None:
        self.offer = offer
        self.context = context
        self.params = params
        self._now = now
        self.slots: list[Any] = [None] * nslots
        self._contexts: dict[str, Any] = {}

    def now(self) -> datetime:
        if self._now is None:
            self._now = datetime.now(UTC)
        elif self._now.tzinfo is None:
            self._now = self._now.replace(tzinfo=UTC)
        return self._now

    def param(self, name: str) -> Any:
        return None if self.params is None else self.params.get(name)

    def ctx(self, ctype: str) -> Any:
        """`@{T}` is the list of data objects of that context type."""
        if ctype in self._contexts:
            return self._contexts[ctype]
        data = None if self.context is None else self.context.get(ctype)
        if isinstance(data, Mapping):
            data = [data]
        value = _strip_xdm(data) if isinstance(data, list) else None
        self._contexts[ctype] = value
        return value


def _const(v: Any) -> Fn:
    return lambda p, e: v


def _path_getter(keys: tuple[str, ...]) -> Callable[[Any], Any]:
    field = F.field

    def get(v: Any) -> Any:
        for k in keys:
            v = v.get(k) if v.__class__ is dict else field(v, k)
        return v

    return get


def _profile_path(keys: tuple[str, ...]) -> Fn:
    """Specialised getters for short profile paths: the hot path of attribute rules."""
    field = F.field
    k0 = keys[0]
    if len(keys) == 1:
        return lambda p, e: p.get(k0)
    k1 = keys[1]
    if len(keys) == 2:

        def get2(p: Any, e: Any) -> Any:
            v = p.get(k0)
            return v.get(k1) if v.__class__ is dict else field(v, k1)

        return get2
    if len(keys) == 3:
        k2 = keys[2]

        def get3(p: Any, e: Any) -> Any:
            v = p.get(k0)
            v = v.get(k1) if v.__class__ is dict else field(v, k1)
            return v.get(k2) if v.__class__ is dict else field(v, k2)

        return get3
    rest = _path_getter(keys[1:])
    return lambda p, e: rest(p.get(k0))


def _then(root: Fn, keys: tuple[str, ...]) -> Fn:
    """`root` followed by field accesses; one closure, specialised for the usual short tails."""
    field = F.field
    if not keys:
        return root
    k0 = keys[0]
    if len(keys) == 1:

        def then1(p: Any, e: Any) -> Any:
            v = root(p, e)
            return v.get(k0) if v.__class__ is dict else field(v, k0)

        return then1
    if len(keys) == 2:
        k1 = keys[1]

        def then2(p: Any, e: Any) -> Any:
            v = root(p, e)
            v = v.get(k0) if v.__class__ is dict else field(v, k0)
            return v.get(k1) if v.__class__ is dict else field(v, k1)

        return then2
    get = _path_getter(keys)
    return lambda p, e: get(root(p, e))


def _offer_path(keys: tuple[str, ...]) -> Fn:
    """`offer.a.b` reads the offer straight from the env: ranking formulas are full of it."""
    field = F.field
    if len(keys) == 1:
        k0 = keys[0]

        def offer1(p: Any, e: Any) -> Any:
            v = e.offer
            return v.get(k0) if v.__class__ is dict else field(v, k0)

        return offer1
    if len(keys) == 2:
        k0, k1 = keys

        def offer2(p: Any, e: Any) -> Any:
            v = e.offer
            v = v.get(k0) if v.__class__ is dict else field(v, k0)
            return v.get(k1) if v.__class__ is dict else field(v, k1)

        return offer2
    return _then(lambda p, e: e.offer, keys)


class Compiler:
    def __init__(self, source: str, params: frozenset[str]) -> None:
        self.source = source
        self.params = params
        self.nslots = 0
        self.needs_env = False
        self.depth = 0
        self.vars: dict[str, tuple[int, Origin]] = {}
        self.item: tuple[int, Origin] | None = None
        self.recording = True
        self.profile_paths: dict[str, int] = {}
        self.context_paths: dict[str, int] = {}
        # Which inputs besides the profile the expression reads (Expression.reads_*). Kept
        # even where paths are not recorded: a fallback that may read an input still reads it.
        self.reads_offer = False
        self.reads_context = False
        self.reads_params: set[str] = set()

    def fail(self, message: str, pos: int) -> PqlError:
        """`pos` is a node's token index (see lexer.py)."""
        return PqlError(message, self.source, offset(self.source, pos))

    def slot(self) -> int:
        self.needs_env = True
        self.nslots += 1
        return self.nslots - 1

    def record(self, origin: Origin, keys: tuple[str, ...], pos: int) -> None:
        if origin is None or not self.recording:
            return
        path = ".".join((origin, *keys)) if origin else ".".join(keys)
        if not path:
            return
        table = self.context_paths if path.startswith("@") else self.profile_paths
        table.setdefault(path, pos)

    # ---- dispatch ----------------------------------------------------------------------

    def value(self, node: A.Node) -> Fn:
        self.depth += 1
        if self.depth > MAX_COMPILE_DEPTH:
            raise self.fail("expression too complex", node.pos)
        fn = getattr(self, "c_" + type(node).__name__)(node)
        self.depth -= 1
        return fn  # type: ignore[no-any-return]

    def boolean(self, node: A.Node) -> Fn:
        """A closure that returns a real bool: predicates already do; others go through truthy."""
        fn = self.value(node)
        if (
            isinstance(node, A.Cmp | A.Logic | A.Not | A.Occurs)
            or isinstance(node, A.Lit)
            and isinstance(node.value, bool)
            or isinstance(node, A.Method)
            and node.name in _PREDICATE_METHODS
            or isinstance(node, A.Call)
            and node.name == "inSegment"
        ):
            return fn
        truthy = F.truthy
        return lambda p, e: truthy(fn(p, e))

    # ---- leaves ------------------------------------------------------------------------

    def c_Lit(self, node: A.Lit) -> Fn:
        return _const(node.value)

    def c_ListLit(self, node: A.ListLit) -> Fn:
        if all(isinstance(x, A.Lit) for x in node.items):
            return _const([x.value for x in node.items])  # type: ignore[attr-defined]
        fns = [self.value(x) for x in node.items]
        return lambda p, e: [f(p, e) for f in fns]

    def c_Ctx(self, node: A.Ctx) -> Fn:
        return self.path(node, ())

    def c_Name(self, node: A.Name) -> Fn:
        return self.path(node, ())

    def c_Field(self, node: A.Field) -> Fn:
        keys: list[str] = []
        root: A.Node = node
        while isinstance(root, A.Field):
            keys.append(root.name)
            root = root.obj
        return self.path(root, tuple(reversed(keys)))

    def path(self, root: A.Node, keys: tuple[str, ...]) -> Fn:
        if isinstance(root, A.Ctx):
            self.needs_env = True
            self.reads_context = True
            ctype = root.ctype
            self.record("@{" + ctype + "}", keys, root.pos)
            return _then(lambda p, e: e.ctx(ctype), keys)
        if not isinstance(root, A.Name):
            return _then(self.value(root), keys)
        name = root.name
        bound = self.vars.get(name)
        if bound is not None:
            slot, origin = bound
            self.record(origin, keys, root.pos)
            return _then(lambda p, e: e.slots[slot], keys)
        if self.item is not None:
            return self.item_path(name, keys, root.pos)
        return self.outer_path(name, keys, root.pos)

    def outer_path(self, name: str, keys: tuple[str, ...], pos: int) -> Fn:
        """Names after variables and the current item: params, xEvent, then the profile."""
        if name == "profile":
            self.record("", keys, pos)
            return _profile_path(keys) if keys else (lambda p, e: p)
        if name == "offer":
            self.needs_env = True
            self.reads_offer = True
            return _offer_path(keys) if keys else (lambda p, e: e.offer)
        if name in self.params or name == "xEvent":
            self.needs_env = True
            self.reads_params.add(name)
            return _then(lambda p, e: e.param(name), keys)
        self.record("", (name, *keys), pos)
        return _profile_path((name, *keys))

    def item_path(self, name: str, keys: tuple[str, ...], pos: int) -> Fn:
        """Inside a filter or aggregate, a bare name is a field of the current item first."""
        assert self.item is not None
        slot, origin = self.item
        self.record(origin, (name, *keys), pos)
        # The fallback to the outer scope is not reported: the name is the item's field.
        saved, self.item, self.recording = self.item, None, False
        outer = self.outer_path(name, (), pos)
        self.item, self.recording = saved, True
        get = _path_getter(keys)

        def item_field(p: Any, e: Any) -> Any:
            it = e.slots[slot]
            if isinstance(it, Mapping) and name in it:
                return get(it[name])
            return get(outer(p, e))

        return item_field

    def origin_of(self, node: A.Node) -> Origin:
        """The static path a collection comes from, so paths through its items can be reported."""
        keys: list[str] = []
        while isinstance(node, A.Field):
            keys.append(node.name)
            node = node.obj
        keys.reverse()
        if isinstance(node, A.Ctx):
            return ".".join(["@{" + node.ctype + "}", *keys])
        if not isinstance(node, A.Name) or self.item is not None:
            return None
        bound = self.vars.get(node.name)
        if bound is not None:
            return None if bound[1] is None else ".".join([bound[1], *keys]).strip(".")
        if node.name == "profile":
            return ".".join(keys)
        if node.name in STATIC_PARAMS or node.name in self.params or node.name == "xEvent":
            return None
        return ".".join([node.name, *keys])

    # ---- operators ---------------------------------------------------------------------

    def c_Neg(self, node: A.Neg) -> Fn:
        f = self.value(node.operand)
        negate = F.negate
        return lambda p, e: negate(f(p, e))

    def c_Not(self, node: A.Not) -> Fn:
        f = self.boolean(node.operand)
        return lambda p, e: not f(p, e)

    def c_BinOp(self, node: A.BinOp) -> Fn:
        # Walk the left spine iteratively: a long `a + b + c ...` must not recurse per term.
        rest: list[tuple[str, A.Node]] = []
        left: A.Node = node
        while isinstance(left, A.BinOp):
            rest.append((left.op, left.right))
            left = left.left
        first = self.value(left)
        steps = [(F.ARITH[op], self.value(r)) for op, r in reversed(rest)]
        if len(steps) == 1:
            fn, second = steps[0]
            return lambda p, e: fn(first(p, e), second(p, e))

        def chain(p: Any, e: Any) -> Any:
            v = first(p, e)
            for fn, f in steps:
                v = fn(v, f(p, e))
            return v

        return chain

    def c_Logic(self, node: A.Logic) -> Fn:
        operands: list[A.Node] = []
        stack: list[A.Node] = [node]
        while stack:  # flatten `a and b and c` without recursion, keeping source order
            n = stack.pop()
            if isinstance(n, A.Logic) and n.op == node.op:
                stack.append(n.right)
                stack.append(n.left)
            else:
                operands.append(n)
        fns = [self.boolean(x) for x in operands]
        if len(fns) == 2:
            a, b = fns
            if node.op == "and":
                return lambda p, e: a(p, e) and b(p, e)
            return lambda p, e: a(p, e) or b(p, e)
        if node.op == "and":

            def all_of(p: Any, e: Any) -> bool:
                for f in fns:
                    if not f(p, e):
                        return False
                return True

            return all_of

        def any_of(p: Any, e: Any) -> bool:
            for f in fns:
                if f(p, e):
                    return True
            return False

        return any_of

    def c_Cmp(self, node: A.Cmp) -> Fn:
        op = node.op
        left = self.value(node.left)
        right = node.right
        if op in ("like", "matches") and isinstance(right, A.Lit):
            return self.regex_test(op, left, right)
        if isinstance(right, A.Lit) and right.value.__class__ in (str, int, float):
            return self.cmp_literal(op, left, right.value, self.top_field(node.left))
        if op == "in" and isinstance(right, A.ListLit):
            values = [x.value for x in right.items if isinstance(x, A.Lit)]
            if len(values) == len(right.items) and all(v.__class__ is str for v in values):
                return self.in_strings(left, values)
        rf = self.value(right)
        fn: Callable[[Any, Any], bool] = {
            "=": F.eq,
            "!=": F.ne,
            "in": F.member,
            "notIn": F.not_member,
            "like": F.like,
            "matches": F.matches,
        }.get(op) or (lambda a, b: F.order(op, a, b))
        return lambda p, e: fn(left(p, e), rf(p, e))

    def in_strings(self, left: Fn, values: list[Any]) -> Fn:
        member = F.member
        table = frozenset(values)

        def in_set(p: Any, e: Any) -> bool:
            v = left(p, e)
            if v.__class__ is str:
                return v in table
            return member(v, values)

        return in_set

    def cmp_literal(self, op: str, left: Fn, lit: Any, key: str | None) -> Fn:
        """`path <op> literal`, the commonest shape: compare directly when the types agree.

        `key` is set when the left side is a top-level profile field, which is then read
        inline: one call less per predicate on the hot path.
        """
        if op in ("in", "notIn", "like", "matches"):
            fn = {"in": F.member, "notIn": F.not_member, "like": F.like, "matches": F.matches}[op]
            return lambda p, e: fn(left(p, e), lit)
        fast = _FAST_CMP[op]
        slow: Callable[[Any, Any], bool] = {"=": F.eq, "!=": F.ne}.get(op) or partial(F.order, op)
        if lit.__class__ is str:
            if key is not None:

                def str_field(p: Any, e: Any) -> bool:
                    v = p.get(key)
                    if v.__class__ is str:
                        return fast(v, lit)  # type: ignore[no-any-return]
                    return slow(v, lit)

                return str_field

            def str_value(p: Any, e: Any) -> bool:
                v = left(p, e)
                if v.__class__ is str:
                    return fast(v, lit)  # type: ignore[no-any-return]
                return slow(v, lit)

            return str_value
        if key is not None:

            def num_field(p: Any, e: Any) -> bool:
                v = p.get(key)
                c = v.__class__
                if c is int or c is float:
                    return fast(v, lit)  # type: ignore[no-any-return]
                return slow(v, lit)

            return num_field

        def num_value(p: Any, e: Any) -> bool:
            v = left(p, e)
            c = v.__class__
            if c is int or c is float:
                return fast(v, lit)  # type: ignore[no-any-return]
            return slow(v, lit)

        return num_value

    def top_field(self, node: A.Node) -> str | None:
        """The field name when `node` is a bare name that resolves to a top-level profile field."""
        if not isinstance(node, A.Name) or self.item is not None or node.name in self.vars:
            return None
        name = node.name
        if name in STATIC_PARAMS or name in self.params or name == "xEvent":
            return None
        return name

    def regex_test(self, op: str, left: Fn, pattern: A.Lit) -> Fn:
        if not isinstance(pattern.value, str):
            return _const(False)
        if op == "like":
            try:
                rx = compile_like(pattern.value)
            except RegexError as exc:
                raise self.fail(f"invalid like pattern: {exc}", pattern.pos) from None
            scalar = F.scalar

            def like(p: Any, e: Any) -> bool:
                s = scalar(left(p, e))
                return s.__class__ is str and fullmatch(rx, s) is not None

            return like
        found = self.pattern(pattern)
        return lambda p, e: F.matches(left(p, e), found)

    def pattern(self, node: A.Lit) -> str:
        """A literal regular expression, refused now if RE2 would not run it."""
        if not isinstance(node.value, str):
            raise self.fail("a regular expression must be a string", node.pos)
        try:
            compile_regex(node.value)
        except RegexError as exc:
            raise self.fail(f"invalid regular expression: {exc}", node.pos) from None
        return str(node.value)

    # ---- functions ---------------------------------------------------------------------

    def c_Call(self, node: A.Call) -> Fn:
        name = node.name
        if name in _T3_FUNCTIONS:
            raise self.fail(f"function {name}() {T3}", node.pos)
        arity = _FUNCTION_ARITY.get(name)
        if arity is None:
            raise self.fail(f"unknown function {name}()", node.pos)
        if len(node.args) != arity:
            raise self.fail(f"{name}() takes {arity} argument(s)", node.pos)
        if name == "if":
            test = self.boolean(node.args[0])
            a = self.value(node.args[1])
            b = self.value(node.args[2])
            return lambda p, e: a(p, e) if test(p, e) else b(p, e)
        if name == "inSegment":
            seg = self.value(node.args[0])
            self.record("", ("segmentMembership",), node.pos)
            in_segment = F.in_segment
            return lambda p, e: in_segment(p, seg(p, e))
        if name == "date":
            y, m, d = (self.value(a) for a in node.args)
            return lambda p, e: F.make_date(y(p, e), m(p, e), d(p, e))
        self.needs_env = True
        part = _CURRENT[name]
        return lambda p, e: F.date_part(e.now(), part)

    def c_Method(self, node: A.Method) -> Fn:
        name = node.name
        if name in _T3_METHODS:
            raise self.fail(f"method {name}() {T3}", node.pos)
        arity = _METHOD_ARITY.get(name)
        if arity is None:
            raise self.fail(f"unknown method {name}()", node.pos)
        lo, hi = arity
        if not lo <= len(node.args) <= hi:
            count = str(lo) if lo == hi else f"{lo} to {hi}"
            raise self.fail(f"{name}() takes {count} argument(s)", node.pos)
        recv = self.value(node.obj)
        if name in ("filter", "exists") or name in _AGGREGATES and node.args:
            return self.item_method(node, recv)
        args = [self.value(a) for a in node.args]
        if name in F.STRING_METHODS:
            return self.string_method(name, recv, args)
        if name == "isNull":
            return lambda p, e: recv(p, e) is None
        if name == "isNotNull":
            return lambda p, e: recv(p, e) is not None
        if name == "matches":
            found = self.pattern(node.args[0]) if isinstance(node.args[0], A.Lit) else None
            if found is not None:
                return lambda p, e: F.matches(recv(p, e), found)
            a0 = args[0]
            return lambda p, e: F.matches(recv(p, e), a0(p, e))
        if name == "regexGroup":
            if isinstance(node.args[0], A.Lit):
                self.pattern(node.args[0])
            index = args[1] if len(args) == 2 else _const(0)
            a0 = args[0]
            return lambda p, e: F.regex_group(recv(p, e), a0(p, e), index(p, e))
        if name == "supersetOf":
            a0 = args[0]
            return lambda p, e: F.subset_of(a0(p, e), recv(p, e))
        if name in _DATE_PARTS:
            part = _DATE_PARTS[name]
            return lambda p, e: F.date_part(recv(p, e), part)
        if name in _AGGREGATES:
            agg = F.aggregate
            as_list = F.as_list
            return lambda p, e: agg(name, as_list(recv(p, e)) or [])
        unary: dict[str, Callable[[Any], Any]] = {
            "keys": F.keys,
            "values": F.values,
            "distinct": F.distinct,
            "head": F.head,
            "count": F.count,
        }
        if name in unary:
            f1 = unary[name]
            return lambda p, e: f1(recv(p, e))
        binary: dict[str, Callable[[Any, Any], Any]] = {
            "get": F.get,
            "includes": F.includes,
            "intersects": F.intersects,
            "intersection": F.intersection,
            "subsetOf": F.subset_of,
        }
        f2 = binary[name]
        a0 = args[0]
        return lambda p, e: f2(recv(p, e), a0(p, e))

    def string_method(self, name: str, recv: Fn, args: list[Fn]) -> Fn:
        test = F.str_test
        a0 = args[0]
        if len(args) == 1:
            return lambda p, e: test(name, recv(p, e), a0(p, e))
        a1 = args[1]
        return lambda p, e: test(name, recv(p, e), a0(p, e), a1(p, e))

    def item_method(self, node: A.Method, recv: Fn) -> Fn:
        """filter / exists / sum(expr) ...: the argument is evaluated once per item."""
        slot = self.slot()
        saved, self.item = self.item, (slot, self.origin_of(node.obj))
        arg = self.boolean(node.args[0]) if node.name in ("filter", "exists") else None
        expr = self.value(node.args[0]) if arg is None else None
        self.item = saved
        as_list = F.as_list
        name = node.name

        def run(p: Any, e: Any) -> Any:
            items = as_list(recv(p, e)) or []
            slots = e.slots
            if expr is not None:
                out = []
                for it in items:
                    slots[slot] = it
                    out.append(expr(p, e))
                return F.aggregate(name, out)
            assert arg is not None
            kept = []
            for it in items:
                slots[slot] = it
                if arg(p, e):
                    if name == "exists":
                        return True
                    kept.append(it)
            return False if name == "exists" else kept

        return run

    def c_Filter(self, node: A.Filter) -> Fn:
        return self.item_method(
            A.Method(node.pos, node.obj, "filter", (node.cond,)), self.value(node.obj)
        )

    # ---- time --------------------------------------------------------------------------

    def c_TimeWord(self, node: A.TimeWord) -> Fn:
        self.needs_env = True
        word = node.word
        if word == "now":
            return lambda p, e: e.now()
        offset = {"today": 0, "this": 0, "yesterday": -1, "last": -1}.get(word, 1)
        unit = node.unit or "day"

        def period(p: Any, e: Any) -> Any:
            try:
                return F.period_of(e.now(), unit, offset)
            except (ValueError, OverflowError):
                return None

        return period

    def c_Occurs(self, node: A.Occurs) -> Fn:
        t = self.value(node.subject)
        ref = self.value(node.ref)
        if node.form == "A":
            op, n, unit, direction = node.cmp, node.count, node.unit, node.direction
            return lambda p, e: F.occurs_distance(t(p, e), ref(p, e), op, n, unit, direction)
        if node.form == "B":
            direction = node.direction
            return lambda p, e: F.occurs_side(t(p, e), ref(p, e), direction)
        if node.form == "C":
            return lambda p, e: F.occurs_on(t(p, e), ref(p, e))
        assert node.ref2 is not None
        ref2 = self.value(node.ref2)
        return lambda p, e: F.occurs_between(t(p, e), ref(p, e), ref2(p, e))

    # ---- select / let ------------------------------------------------------------------

    def c_Select(self, node: A.Select) -> Fn:
        saved = dict(self.vars)
        compiled: list[tuple[int, Fn, Fn | None]] = []
        for b in node.bindings:
            source = self.value(b.source)
            slot = self.slot()
            self.vars[b.var] = (slot, self.origin_of(b.source))
            cond = None if b.cond is None else self.boolean(b.cond)
            compiled.append((slot, source, cond))
        self.vars = saved
        as_list = F.as_list
        slots_of = [c[0] for c in compiled]
        single = len(compiled) == 1

        def bind(p: Any, e: Any, level: int, out: list[Any]) -> None:
            slot, source, cond = compiled[level]
            slots = e.slots
            for it in as_list(source(p, e)) or []:
                slots[slot] = it
                if cond is None or cond(p, e):
                    if level + 1 < len(compiled):
                        bind(p, e, level + 1, out)
                    else:
                        out.append(it if single else [slots[s] for s in slots_of])

        def select(p: Any, e: Any) -> list[Any]:
            out: list[Any] = []
            bind(p, e, 0, out)
            return out

        return select

    def c_Let(self, node: A.Let) -> Fn:
        value = self.value(node.value)
        slot = self.slot()
        saved = dict(self.vars)
        self.vars[node.var] = (slot, self.origin_of(node.value))
        body = self.value(node.body)
        self.vars = saved

        def let(p: Any, e: Any) -> Any:
            e.slots[slot] = value(p, e)
            return body(p, e)

        return let


def compile_ast(
    node: A.Node, source: str, kind: str, params: frozenset[str]
) -> tuple[Fn, Compiler]:
    c = Compiler(source, params)
    if kind == "rule":
        fn = c.boolean(node)
    else:
        inner = c.value(node)
        num = F.num

        def fn(p: Any, e: Any) -> Any:
            v = num(inner(p, e))
            return None if v != v else v  # NaN (inf - inf) would poison sorting: null instead

    for table, limit, what in (
        (c.profile_paths, MAX_PROFILE_PATHS, "profile"),
        (c.context_paths, MAX_CONTEXT_PATHS, "context"),
    ):
        if len(table) > limit:
            pos = list(table.values())[limit]
            raise c.fail(f"more than {limit} {what} attributes are referenced", pos)
    return fn, c
