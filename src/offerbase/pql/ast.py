"""Syntax tree. Every node keeps `pos`, the index of its first token, for error messages
(`lexer.offset` turns it into a character offset)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Node:
    pos: int


@dataclass(slots=True)
class Lit(Node):
    value: Any


@dataclass(slots=True)
class ListLit(Node):
    items: tuple[Node, ...]


@dataclass(slots=True)
class Name(Node):
    name: str


@dataclass(slots=True)
class Field(Node):
    obj: Node
    name: str


@dataclass(slots=True)
class Method(Node):
    obj: Node
    name: str
    args: tuple[Node, ...]


@dataclass(slots=True)
class Call(Node):
    name: str
    args: tuple[Node, ...]


@dataclass(slots=True)
class Filter(Node):
    obj: Node
    cond: Node


@dataclass(slots=True)
class Ctx(Node):
    ctype: str


@dataclass(slots=True)
class Neg(Node):
    operand: Node


@dataclass(slots=True)
class Not(Node):
    operand: Node


@dataclass(slots=True)
class BinOp(Node):
    """Arithmetic `+ - * / %`."""

    op: str
    left: Node
    right: Node


@dataclass(slots=True)
class Logic(Node):
    """`and` / `or`, kept binary here; the compiler flattens chains."""

    op: str
    left: Node
    right: Node


@dataclass(slots=True)
class Cmp(Node):
    """`= != < <= > >= in notIn like matches`."""

    op: str
    left: Node
    right: Node


@dataclass(slots=True)
class TimeWord(Node):
    """`now`, `today`, `yesterday`, `tomorrow`, or `this|last|next <unit>`."""

    word: str
    unit: str = ""


@dataclass(slots=True)
class Occurs(Node):
    """`subject occurs ...`; form "A" distance, "B" before/after, "C" on, "D" between."""

    subject: Node
    form: str
    ref: Node
    cmp: str = ""
    count: int = 0
    unit: str = ""
    direction: str = ""
    ref2: Node | None = None


@dataclass(slots=True)
class Binding(Node):
    var: str
    source: Node
    cond: Node | None


@dataclass(slots=True)
class Select(Node):
    bindings: tuple[Binding, ...]


@dataclass(slots=True)
class Let(Node):
    var: str
    value: Node
    body: Node
