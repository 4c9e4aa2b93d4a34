"""Pratt parser for PQL tiers T1 and T2 (pql.md §6); T3 forms are recognised and refused."""

from __future__ import annotations

from typing import NoReturn

from . import ast as A
from .errors import PqlError
from .lexer import CTX, EOF, FLOAT, INT, NAME, OP, PARAM, STR, UP, Token, tokenize

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


def _describe(tok: Token) -> str:
    return "end of input" if tok[0] == EOF else repr(tok[1])


class _Parser:
    __slots__ = ("depth", "i", "no_in", "src", "toks")

    def __init__(self, source: str) -> None:
        self.src = source
        self.toks = tokenize(source)
        self.i = 0
        self.depth = 0
        # Set while parsing the value of `let V = value in body`, where `in` ends the value.
        self.no_in = False

    def fail(self, message: str, pos: int) -> NoReturn:
        raise PqlError(message, self.src, pos)

    def enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"expression nested deeper than {MAX_DEPTH} levels", pos)

    def expect(self, text: str) -> Token:
        tok = self.toks[self.i]
        if tok[3] == text:
            self.i += 1
            return tok
        self.fail(f"expected '{text}' but found {_describe(tok)}", tok[2])

    def parse(self) -> A.Node:
        if self.toks[0][0] == EOF:
            self.fail("empty expression", 0)
        node = self.expr(0)
        tok = self.toks[self.i]
        if tok[0] != EOF:
            self.fail(f"unexpected {_describe(tok)}", tok[2])
        return node

    # ---- operators -------------------------------------------------------------------

    def expr(self, min_bp: int) -> A.Node:
        left = self.prefix()
        toks = self.toks
        compared = False
        while True:
            tok = toks[self.i]
            key = tok[3]
            bp = _INFIX.get(key)
            if bp is None or bp < min_bp or (key == "in" and self.no_in):
                break
            self.i += 1
            if bp == _CMP:
                if compared:
                    self.fail("comparisons cannot be chained; use 'and'", tok[2])
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
        tok = self.toks[self.i]
        kind = tok[0]
        node: A.Node
        if kind == NAME:
            return self.word(tok)
        if kind == STR:
            self.i += 1
            return self.postfix(A.Lit(tok[2], tok[1]))
        if kind == INT:
            self.i += 1
            return A.Lit(tok[2], int(tok[1]))
        if kind == FLOAT:
            self.i += 1
            return A.Lit(tok[2], float(tok[1]))
        if kind == CTX:
            self.i += 1
            brace = tok[1].index("{")
            return self.postfix(A.Ctx(tok[2], tok[1][brace + 1 : -1].strip()))
        if kind == PARAM:
            self.fail(f"positional parameters ($1) {T3}", tok[2])
        if kind == UP:
            self.fail(f"up-references (^) {T3}", tok[2])
        if kind == EOF:
            self.fail("unexpected end of input", tok[2])
        text = tok[1]
        if text == "(":
            self.i += 1
            node = self.group(")")
            return self.postfix(node)
        if text == "[":
            self.i += 1
            return self.postfix(A.ListLit(tok[2], self.items("]")))
        if text == "-":
            self.i += 1
            self.enter(tok[2])
            operand = self.expr(_UNARY)
            self.depth -= 1
            if isinstance(operand, A.Lit) and type(operand.value) in (int, float):
                return A.Lit(tok[2], -operand.value)
            return A.Neg(tok[2], operand)
        if text == "!":
            return self.negation(tok)
        if text == "{":
            self.fail(f"object literals {T3}", tok[2])
        self.fail(f"unexpected {_describe(tok)}", tok[2])

    def negation(self, tok: Token) -> A.Node:
        self.i += 1
        self.enter(tok[2])
        operand = self.expr(_NOT)
        self.depth -= 1
        return A.Not(tok[2], operand)

    def group(self, close: str) -> A.Node:
        """A parenthesised or bracketed sub-expression: `in` is an operator again inside it."""
        pos = self.toks[self.i - 1][2]
        self.enter(pos)
        saved, self.no_in = self.no_in, False
        node = self.expr(0)
        self.expect(close)
        self.no_in = saved
        self.depth -= 1
        return node

    def items(self, close: str) -> tuple[A.Node, ...]:
        pos = self.toks[self.i - 1][2]
        self.enter(pos)
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
            tok = toks[self.i]
            if tok[0] != OP:
                return node
            if tok[1] == ".":
                name = toks[self.i + 1]
                if name[0] != NAME:
                    self.fail("expected a field or method name after '.'", name[2])
                self.i += 2
                if toks[self.i][1] == "(" and toks[self.i][0] == OP:
                    self.i += 1
                    node = A.Method(name[2], node, name[1], self.items(")"))
                else:
                    node = A.Field(name[2], node, name[1])
            elif tok[1] == "[":
                self.i += 1
                node = A.Filter(tok[2], node, self.group("]"))
            else:
                return node

    # ---- words -----------------------------------------------------------------------

    def word(self, tok: Token) -> A.Node:
        low = tok[3]
        nxt = self.toks[self.i + 1]
        if low not in _SPECIAL:
            self.i += 1
            if nxt[3] == "(":
                self.i += 1
                return self.postfix(A.Call(tok[2], tok[1], self.items(")")))
            return self.postfix(A.Name(tok[2], tok[1]))
        if low == "not":
            return self.negation(tok)
        if low in ("true", "false"):
            self.i += 1
            return A.Lit(tok[2], low == "true")
        if low == "select":
            return self.select(tok)
        if low == "let":
            return self.let(tok)
        if low in _TIME_WORDS:
            self.i += 1
            return self.postfix(A.TimeWord(tok[2], low))
        if low in _RESERVED:
            self.fail(f"unexpected keyword {tok[1]!r}", tok[2])
        if low in ("exists", "forall") and nxt[0] == NAME and self.toks[self.i + 2][3] == "from":
            self.fail(f"'{low} ... from' quantifiers {T3}", tok[2])
        if low in ("sum", "average", "min", "max") and nxt[0] in (NAME, CTX):
            if nxt[0] == CTX or nxt[3] not in _INFIX:
                self.fail(f"'{low} ... over' aggregations {T3}", tok[2])
        self.i += 1
        if nxt[0] == OP and nxt[1] == "(":
            if low == "chain":
                self.fail(f"chain(...) sequences {T3}", tok[2])
            self.i += 1
            return self.postfix(A.Call(tok[2], tok[1], self.items(")")))
        return self.postfix(A.Name(tok[2], tok[1]))

    def variable(self) -> Token:
        tok = self.toks[self.i]
        if tok[0] != NAME or tok[3] in _RESERVED:
            self.fail(f"expected a variable name but found {_describe(tok)}", tok[2])
        self.i += 1
        return tok

    def select(self, tok: Token) -> A.Node:
        self.i += 1
        self.enter(tok[2])
        bindings: list[A.Binding] = []
        toks = self.toks
        while True:
            var = self.variable()
            self.expect("from")
            source = self.expr(_OR)
            cond = None
            if toks[self.i][0] == NAME and toks[self.i][3] == "where":
                self.i += 1
                cond = self.expr(_OR)
            bindings.append(A.Binding(var[2], var[1], source, cond))
            # A comma continues the select only when `V from` follows; otherwise it
            # belongs to an enclosing argument list.
            if (
                toks[self.i][1] == ","
                and toks[self.i][0] == OP
                and toks[self.i + 1][0] == NAME
                and toks[self.i + 2][0] == NAME
                and toks[self.i + 2][3] == "from"
            ):
                self.i += 1
                continue
            break
        self.depth -= 1
        return A.Select(tok[2], tuple(bindings))

    def let(self, tok: Token) -> A.Node:
        self.i += 1
        self.enter(tok[2])
        var = self.variable()
        self.expect("=")
        saved, self.no_in = self.no_in, True
        value = self.expr(0)
        self.no_in = saved
        self.expect("in")
        body = self.expr(0)
        self.depth -= 1
        return A.Let(tok[2], var[1], value, body)

    # ---- occurs ----------------------------------------------------------------------

    def occurs(self, subject: A.Node) -> A.Node:
        tok = self.toks[self.i]
        pos = subject.pos
        if tok[0] == OP and tok[1] in _CMP_OPS:
            count = self.toks[self.i + 1]
            if count[0] != INT:
                self.fail("expected a whole number after 'occurs <comparison>'", count[2])
            self.i += 2
            unit = self.unit()
            direction = self.toks[self.i]
            if direction[0] != NAME or direction[3] not in _DIRECTIONS:
                self.fail("expected 'before', 'after' or 'from'", direction[2])
            self.i += 1
            ref = self.time_ref()
            return A.Occurs(pos, subject, "A", ref, tok[1], int(count[1]), unit, direction[3])
        if tok[0] == NAME and tok[3] in _DIRECTIONS:
            self.i += 1
            return A.Occurs(pos, subject, "B", self.time_ref(), direction=tok[3])
        if tok[0] == NAME and tok[3] == "between":
            self.i += 1
            first = self.time_ref()
            self.expect("and")
            return A.Occurs(pos, subject, "D", first, ref2=self.time_ref())
        if tok[0] == NAME and tok[3] == "on":
            self.i += 1
        return A.Occurs(pos, subject, "C", self.time_ref())

    def unit(self) -> str:
        tok = self.toks[self.i]
        if tok[0] != NAME or tok[3] not in UNITS:
            self.fail(f"expected a time unit but found {_describe(tok)}", tok[2])
        self.i += 1
        return UNITS[tok[3]]

    def time_ref(self) -> A.Node:
        tok = self.toks[self.i]
        if tok[0] == NAME and tok[3] in _PERIOD_WORDS:
            self.i += 1
            return A.TimeWord(tok[2], tok[3], self.unit())
        # Arithmetic level, so that `between a and b` keeps its `and`.
        return self.expr(_ADD)


def parse(source: str, kind: str = "rule") -> A.Node:
    """Parse `source`; `kind` ("rule" or "formula") selects the size limit."""
    limit = MAX_BYTES[kind]
    if len(source) * 4 > limit and len(source.encode("utf-8")) > limit:
        raise PqlError(f"{kind} is longer than {limit // 1024} KB of UTF-8 text", source, 0)
    return _Parser(source).parse()
