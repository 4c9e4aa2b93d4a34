"""Pratt parser for PQL tiers T1 and T2; T3 forms are recognised and refused."""

from __future__ import annotations

from typing import NoReturn

from . import ast as A
from .errors import PqlError
from .lexer import CTX, EOF, FLOAT, INT, NAME, OP, PARAM, STR, UP, Token, offset, tokenize

MAX_DEPTH = 30
MAX_BYTES = {"rule": 15 * 1024, "formula": 8 * 1024}

# Binding powers: or < and < (not) < comparison < + - < * / %.
_OR, _AND, _NOT, _CMP, _ADD, _MUL, _UNARY = 1, 2, 3, 4, 5, 6, 7
_INFIX = {
    "or": _OR,
    "and": _AND,
    "=": _CMP,
    "!=": _CMP,
    "<": _CMP,
    "<=": _CMP,
    ">": _CMP,
    ">=": _CMP,
    "in": _CMP,
    "notin": _CMP,
    "like": _CMP,
    "matches": _CMP,
    "occurs": _CMP,
    "+": _ADD,
    "-": _ADD,
    "*": _MUL,
    "/": _MUL,
    "%": _MUL,
}
_CMP_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
_WORD_OPS = {"in": "in", "notin": "notIn", "like": "like", "matches": "matches"}
_TIME_WORDS = frozenset({"now", "today", "yesterday", "tomorrow"})
_PERIOD_WORDS = frozenset({"this", "last", "next"})
_DIRECTIONS = frozenset({"before", "after", "from"})
# Words that can never start an operand or name a variable.
_RESERVED = frozenset(
    {"and", "or", "not", "in", "notin", "like", "matches", "occurs", "true", "false"}
    | {"select", "let", "where", "from"}
    | _TIME_WORDS
)
_SPECIAL = _RESERVED | {"exists", "forall", "sum", "average", "min", "max", "chain"}
UNITS = {
    "millisecond": "millisecond",
    "milliseconds": "millisecond",
    "second": "second",
    "seconds": "second",
    "minute": "minute",
    "minutes": "minute",
    "hour": "hour",
    "hours": "hour",
    "day": "day",
    "days": "day",
    "week": "week",
    "weeks": "week",
    "month": "month",
    "months": "month",
    "year": "year",
    "years": "year",
    "decade": "decade",
    "decades": "decade",
    "century": "century",
    "centuries": "century",
    "millennium": "millennium",
    "millennia": "millennium",
    "millenium": "millennium",
}
T3 = "is not supported in offer rules"
# Tokens that continue an operand: a call, a field or method, a filter.
_TRAILERS = frozenset({"(", ".", "["})


def _describe(tok: Token) -> str:
    return "end of input" if tok[0] == EOF else repr(tok[1])


class _Parser:
    """Nodes take the index of their first token as `pos`; `self.i` is the current index."""

    __slots__ = ("depth", "i", "no_in", "src", "toks")

    def __init__(self, source: str) -> None:
        self.src = source
        self.toks = tokenize(source)
        self.i = 0
        self.depth = 0
        # Set while parsing the value of `let V = value in body`, where `in` ends the value.
        self.no_in = False

    def fail(self, message: str, index: int) -> NoReturn:
        raise PqlError(message, self.src, offset(self.src, index))

    def enter(self, at: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"expression nested deeper than {MAX_DEPTH} levels", at)

    def expect(self, text: str) -> None:
        tok = self.toks[self.i]
        if tok[2] != text:
            self.fail(f"expected '{text}' but found {_describe(tok)}", self.i)
        self.i += 1

    def parse(self) -> A.Node:
        if self.toks[0][0] == EOF:
            raise PqlError("empty expression", self.src, 0)
        node = self.expr(0)
        tok = self.toks[self.i]
        if tok[0] != EOF:
            self.fail(f"unexpected {_describe(tok)}", self.i)
        return node

    # ---- operators -------------------------------------------------------------------

    def expr(self, min_bp: int) -> A.Node:
        toks = self.toks
        at = self.i
        # Plain names, numbers and strings skip the calls through prefix/word/postfix: one
        # call level less per operand is a few percent of a parse (measured with bench/pql.py).
        tok = toks[at]
        kind = tok[0]
        left: A.Node
        if kind == NAME and tok[2] not in _SPECIAL and toks[at + 1][2] not in _TRAILERS:
            self.i = at + 1
            left = A.Name(at, tok[1])
        elif kind == INT:
            self.i = at + 1
            left = A.Lit(at, int(tok[1]))
        elif kind == STR and toks[at + 1][2] not in _TRAILERS:
            self.i = at + 1
            left = A.Lit(at, tok[1])
        else:
            left = self.prefix()
        compared = False
        while True:
            at = self.i
            key = toks[at][2]
            bp = _INFIX.get(key)
            if bp is None or bp < min_bp or (key == "in" and self.no_in):
                break
            self.i = at + 1
            if bp == _CMP:
                if compared:
                    self.fail("comparisons cannot be chained; use 'and'", at)
                compared = True
                if key == "occurs":
                    left = self.occurs(left)
                else:
                    right = self.expr(_ADD)
                    left = A.Cmp(left.pos, _WORD_OPS.get(key, key), left, right)
            elif bp <= _AND:
                compared = False
                left = A.Logic(left.pos, key, left, self.expr(bp + 1))
            else:
                left = A.BinOp(left.pos, key, left, self.expr(bp + 1))
        return left

    def prefix(self) -> A.Node:
        at = self.i
        tok = self.toks[at]
        kind = tok[0]
        if kind == NAME:
            return self.word(tok)
        if kind == STR:
            self.i += 1
            return self.postfix(A.Lit(at, tok[1]))
        if kind == FLOAT:
            self.i += 1
            return A.Lit(at, float(tok[1]))
        if kind == CTX:
            self.i += 1
            brace = tok[1].index("{")
            return self.postfix(A.Ctx(at, tok[1][brace + 1 : -1].strip()))
        if kind == PARAM:
            self.fail(f"positional parameters ($1) {T3}", at)
        if kind == UP:
            self.fail(f"up-references (^) {T3}", at)
        if kind == EOF:
            self.fail("unexpected end of input", at)
        text = tok[1]
        if text == "(":
            self.i += 1
            return self.postfix(self.group(")"))
        if text == "[":
            self.i += 1
            return self.postfix(A.ListLit(at, self.items("]")))
        if text == "-":
            self.i += 1
            self.enter(at)
            operand = self.expr(_UNARY)
            self.depth -= 1
            if isinstance(operand, A.Lit) and type(operand.value) in (int, float):
                return A.Lit(at, -operand.value)
            return A.Neg(at, operand)
        if text == "!":
            return self.negation()
        if text == "{":
            self.fail(f"object literals {T3}", at)
        self.fail(f"unexpected {_describe(tok)}", at)

    def negation(self) -> A.Node:
        at = self.i
        self.i += 1
        self.enter(at)
        operand = self.expr(_NOT)
        self.depth -= 1
        return A.Not(at, operand)

    def group(self, close: str) -> A.Node:
        """A parenthesised or bracketed sub-expression: `in` is an operator again inside it."""
        self.enter(self.i - 1)
        saved, self.no_in = self.no_in, False
        node = self.expr(0)
        self.expect(close)
        self.no_in = saved
        self.depth -= 1
        return node

    def items(self, close: str) -> tuple[A.Node, ...]:
        self.enter(self.i - 1)
        saved, self.no_in = self.no_in, False
        out: list[A.Node] = []
        if self.toks[self.i][1] != close:
            out.append(self.expr(0))
            while self.toks[self.i][1] == ",":
                self.i += 1
                out.append(self.expr(0))
        self.expect(close)
        self.no_in = saved
        self.depth -= 1
        return tuple(out)

    def postfix(self, node: A.Node) -> A.Node:
        toks = self.toks
        while True:
            at = self.i
            tok = toks[at]
            if tok[0] != OP:
                return node
            if tok[1] == ".":
                name = toks[at + 1]
                if name[0] != NAME:
                    self.fail("expected a field or method name after '.'", at + 1)
                self.i = at + 2
                if toks[at + 2][1] == "(" and toks[at + 2][0] == OP:
                    self.i = at + 3
                    node = A.Method(at + 1, node, name[1], self.items(")"))
                else:
                    node = A.Field(at + 1, node, name[1])
            elif tok[1] == "[":
                self.i += 1
                node = A.Filter(at, node, self.group("]"))
            else:
                return node

    # ---- words -----------------------------------------------------------------------

    def word(self, tok: Token) -> A.Node:
        at = self.i
        low = tok[2]
        nxt = self.toks[at + 1]
        if low not in _SPECIAL:
            self.i = at + 1
            if nxt[2] == "(":
                self.i = at + 2
                return self.postfix(A.Call(at, tok[1], self.items(")")))
            return self.postfix(A.Name(at, tok[1]))
        if low == "not":
            return self.negation()
        if low in ("true", "false"):
            self.i += 1
            return A.Lit(at, low == "true")
        if low == "select":
            return self.select()
        if low == "let":
            return self.let()
        if low in _TIME_WORDS:
            self.i += 1
            return self.postfix(A.TimeWord(at, low))
        if low in _RESERVED:
            self.fail(f"unexpected keyword {tok[1]!r}", at)
        if low in ("exists", "forall") and nxt[0] == NAME and self.toks[at + 2][2] == "from":
            self.fail(f"'{low} ... from' quantifiers {T3}", at)
        if low in ("sum", "average", "min", "max") and nxt[0] in (NAME, CTX):
            if nxt[0] == CTX or nxt[2] not in _INFIX:
                self.fail(f"'{low} ... over' aggregations {T3}", at)
        self.i = at + 1
        if nxt[0] == OP and nxt[1] == "(":
            if low == "chain":
                self.fail(f"chain(...) sequences {T3}", at)
            self.i = at + 2
            return self.postfix(A.Call(at, tok[1], self.items(")")))
        return self.postfix(A.Name(at, tok[1]))

    def variable(self) -> tuple[int, str]:
        """The index and name of a variable being bound."""
        at = self.i
        tok = self.toks[at]
        if tok[0] != NAME or tok[2] in _RESERVED:
            self.fail(f"expected a variable name but found {_describe(tok)}", at)
        self.i = at + 1
        return at, tok[1]

    def select(self) -> A.Node:
        at = self.i
        self.i += 1
        self.enter(at)
        bindings: list[A.Binding] = []
        toks = self.toks
        while True:
            var_at, var = self.variable()
            self.expect("from")
            source = self.expr(_OR)
            cond = None
            if toks[self.i][0] == NAME and toks[self.i][2] == "where":
                self.i += 1
                cond = self.expr(_OR)
            bindings.append(A.Binding(var_at, var, source, cond))
            # A comma continues the select only when `V from` follows; otherwise it
            # belongs to an enclosing argument list.
            if (
                toks[self.i][1] == ","
                and toks[self.i][0] == OP
                and toks[self.i + 1][0] == NAME
                and toks[self.i + 2][0] == NAME
                and toks[self.i + 2][2] == "from"
            ):
                self.i += 1
                continue
            break
        self.depth -= 1
        return A.Select(at, tuple(bindings))

    def let(self) -> A.Node:
        at = self.i
        self.i += 1
        self.enter(at)
        _, var = self.variable()
        self.expect("=")
        saved, self.no_in = self.no_in, True
        value = self.expr(0)
        self.no_in = saved
        self.expect("in")
        body = self.expr(0)
        self.depth -= 1
        return A.Let(at, var, value, body)

    # ---- occurs ----------------------------------------------------------------------

    def occurs(self, subject: A.Node) -> A.Node:
        at = self.i
        tok = self.toks[at]
        pos = subject.pos
        if tok[0] == OP and tok[1] in _CMP_OPS:
            count = self.toks[at + 1]
            if count[0] != INT:
                self.fail("expected a whole number after 'occurs <comparison>'", at + 1)
            self.i = at + 2
            unit = self.unit()
            direction = self.toks[self.i]
            if direction[0] != NAME or direction[2] not in _DIRECTIONS:
                self.fail("expected 'before', 'after' or 'from'", self.i)
            self.i += 1
            ref = self.time_ref()
            return A.Occurs(pos, subject, "A", ref, tok[1], int(count[1]), unit, direction[2])
        if tok[0] == NAME and tok[2] in _DIRECTIONS:
            self.i += 1
            return A.Occurs(pos, subject, "B", self.time_ref(), direction=tok[2])
        if tok[0] == NAME and tok[2] == "between":
            self.i += 1
            first = self.time_ref()
            self.expect("and")
            return A.Occurs(pos, subject, "D", first, ref2=self.time_ref())
        if tok[0] == NAME and tok[2] == "on":
            self.i += 1
        return A.Occurs(pos, subject, "C", self.time_ref())

    def unit(self) -> str:
        tok = self.toks[self.i]
        if tok[0] != NAME or tok[2] not in UNITS:
            self.fail(f"expected a time unit but found {_describe(tok)}", self.i)
        self.i += 1
        return UNITS[tok[2]]

    def time_ref(self) -> A.Node:
        at = self.i
        tok = self.toks[at]
        if tok[0] == NAME and tok[2] in _PERIOD_WORDS:
            self.i += 1
            return A.TimeWord(at, tok[2], self.unit())
        # Arithmetic level, so that `between a and b` keeps its `and`.
        return self.expr(_ADD)


def parse(source: str, kind: str = "rule") -> A.Node:
    """Parse `source`; `kind` ("rule" or "formula") selects the size limit."""
    limit = MAX_BYTES[kind]
    if len(source) * 4 > limit and len(source.encode("utf-8")) > limit:
        raise PqlError(f"{kind} is longer than {limit // 1024} KB of UTF-8 text", source, 0)
    return _Parser(source).parse()
