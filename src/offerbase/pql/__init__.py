"""PQL, the Adobe Profile Query Language subset used by offer rules and ranking formulas.

    from offerbase.pql import compile, PqlError
    rule = compile('person.name.firstName.equals("Joe", false)')
    rule.evaluate({"person": {"name": {"firstName": "joe"}}})  # True

Pure: stdlib only, no I/O. See docs/pql.md for the language and its null rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from .compiler import DEFAULT_PARAMS, Env, Fn, compile_ast
from .errors import PqlError
from .parser import parse

__all__ = ["Expression", "PqlError", "check", "compile"]

Kind = Literal["rule", "formula"]
_MAX_VARIANTS = 16


class Expression:
    """A compiled rule (returns bool) or ranking formula (returns a number or None)."""

    __slots__ = (
        "_declared",
        "_fn",
        "_needs_env",
        "_node",
        "_nslots",
        "_variants",
        "context_paths",
        "kind",
        "profile_paths",
        "reads_context",
        "reads_offer",
        "reads_params",
        "source",
    )

    def __init__(self, source: str, kind: Kind, declared: frozenset[str]) -> None:
        if kind not in ("rule", "formula"):
            raise ValueError(f"kind must be 'rule' or 'formula', not {kind!r}")
        self.source = source
        self.kind: Kind = kind
        self._declared = declared
        self._node = parse(source, kind)
        fn, c = compile_ast(self._node, source, kind, declared)
        self._fn: Fn = fn
        self._needs_env = c.needs_env
        self._nslots = c.nslots
        self._variants: dict[frozenset[str], Expression] = {}
        self.profile_paths = frozenset(c.profile_paths)
        self.context_paths = frozenset(c.context_paths)
        # What the expression reads besides the profile, so callers can tell e.g. whether a
        # rule's answer depends on the candidate offer (evaluate once per request, or per offer).
        self.reads_offer: bool = c.reads_offer
        self.reads_context: bool = c.reads_context
        self.reads_params: frozenset[str] = frozenset(c.reads_params)

    def __repr__(self) -> str:
        return f"<pql {self.kind} {self.source!r}>"

    def evaluate(
        self,
        profile: Mapping[str, Any],
        *,
        offer: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> Any:
        """Evaluate against plain dicts. `now` defaults to the current UTC time."""
        try:
            if params and not self._declared.issuperset(params):
                return self._variant(params).evaluate(
                    profile, offer=offer, context=context, params=params, now=now
                )
            if self._needs_env:
                return self._fn(profile, Env(offer, context, params, now, self._nslots))
            return self._fn(profile, None)
        except PqlError:
            raise
        except Exception as exc:  # a safety net: the library is written not to raise
            raise PqlError(f"evaluation failed: {exc!r}", self.source, 0) from exc

    def _variant(self, params: Mapping[str, Any]) -> Expression:
        """Names are bound to parameters at compile time; a caller passing a parameter the
        expression was not compiled for gets a (cached) recompilation that knows it."""
        names = self._declared | frozenset(params)
        variant = self._variants.get(names)
        if variant is None:
            variant = Expression(self.source, self.kind, names)
            if len(self._variants) < _MAX_VARIANTS:  # callers use a few fixed sets of names
                self._variants[names] = variant
        return variant


def compile(source: str, kind: Kind = "rule", *, params: Iterable[str] = ()) -> Expression:
    """Parse and check `source`; raises PqlError with line and column on any problem.

    `params` names extra inputs (the keys of `definedOn` besides profile and offer) so that
    a bare `boosted.tags` reads the parameter rather than a profile field.
    """
    if not isinstance(source, str):
        raise PqlError("a PQL expression must be a string")
    return Expression(source, kind, DEFAULT_PARAMS | frozenset(params))


def check(source: str, kind: Kind = "rule") -> None:
    """Raise PqlError if `source` is not a valid rule or formula."""
    compile(source, kind)
