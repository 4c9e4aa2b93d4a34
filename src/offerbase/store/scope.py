"""Tenancy in one place: every statement that reaches a tenant's rows is scoped here.

A tenant is one sandbox, identified by its pk; a sandbox belongs to exactly one organization,
which `tenants.get_sandbox(org, name)` checks when it resolves the sandbox of a request. Every
table that holds tenant rows declares its scoping column once, where it is defined
(`info={"tenant": <column>}` in tables.py).

`Scope(pk).apply(statement)` adds `<scoping column> = pk` for every tenant table the statement
reads (its FROM, joins included) or writes (its target; an INSERT gets the column's value), and
refuses a table that declares no scoping column. Repositories build every statement with it and
never write the filter themselves. Statements built once and run many times (`template`) and the
raw SQL of the hot path (`raw_sql`, for `Database.point_read`) get the same filter with the pk
as the `:tenant` parameter, which `Scope.params()` supplies.

Each scoped statement carries a mark naming the tables it was scoped for. `check()` refuses a
statement that reaches a tenant table without that mark; tests/store/test_tenancy.py runs every
repository function with `check()` on every statement. The few statements that must span
tenants (resolving a tenant in tenants.py, housekeeping) say so with `across_tenants()`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import util as sql_util

from offerbase.store.tables import metadata

# The bound parameter that carries the sandbox pk in templates and raw SQL.
TENANT = "tenant"
_MARK = "offerbase_tenant_tables"
# Raw SQL keeps sqlite3's `:name` parameters; Database.point_read numbers them for asyncpg.
_RAW_DIALECT = sqlite.dialect(paramstyle="named")

# Any select (of any row shape), insert, update or delete.
_Select = sa.Select[*tuple[Any, ...]]
_Statement = TypeVar("_Statement", _Select, sa.Insert, sa.Update, sa.Delete)


class UnscopedTable(LookupError):
    """A statement reaches a table (or a tenant's rows) that tenancy does not cover."""


class HasPk(Protocol):
    """A resolved sandbox (tenants.Sandbox), without importing the directory here."""

    @property
    def pk(self) -> int: ...


def tenant_column(table: sa.TableClause) -> sa.ColumnClause[Any]:
    """The column that says which sandbox a row of `table` belongs to."""
    name = table.info.get("tenant") if isinstance(table, sa.Table) else None
    if name is None:
        raise UnscopedTable(f"Table '{table.name}' declares no tenant column (tables.py).")
    return table.c[name]


def tenant_tables() -> list[sa.Table]:
    """Every table that holds tenant rows, as declared in tables.py."""
    return [table for table in metadata.sorted_tables if "tenant" in table.info]


def _targets(stmt: _Select | sa.Insert | sa.Update | sa.Delete) -> set[sa.Table]:
    """The tables a statement reads or writes: FROM, joins, columns, DML target. A subquery or
    an alias is refused: its rows would need their own filter, which this cannot place."""
    # With these options the list also holds selects, aliases and None (a column of no table).
    found: list[object] = list(
        sql_util.find_tables(
            stmt, check_columns=True, include_aliases=True, include_selects=True, include_crud=True
        )
    )
    tables = set()
    for item in found:
        if isinstance(item, sa.Table):
            tables.add(item)
        elif item is None or item is stmt or _is_excluded(stmt, item):
            continue
        else:
            raise UnscopedTable(f"Cannot scope a statement that reads from {item!r}.")
    return tables


def _is_excluded(stmt: object, item: object) -> bool:
    """ON CONFLICT's `excluded`: the row being inserted, which the INSERT itself scopes."""
    return (
        isinstance(stmt, sa.Insert)
        and isinstance(item, sa.Alias)
        and item.element is stmt.table
        and item.name == "excluded"
    )


def _scoped(
    stmt: _Statement, value: int | sa.BindParameter[int], *, sqlite_likely: bool = False
) -> _Statement:
    tables = sorted(_targets(stmt), key=lambda table: table.name)  # stable SQL text
    columns = [tenant_column(table) for table in tables]
    if isinstance(stmt, sa.Insert):
        scoped: _Statement = stmt.values({column.name: value for column in columns})
    else:
        where = [column == value for column in columns]
        if sqlite_likely:
            where = [sa.func.likely(term) for term in where]
        scoped = stmt.where(*where)
    return scoped.execution_options(**{_MARK: frozenset(tables)})


@dataclass(frozen=True, slots=True)
class Scope:
    """One tenant's rows: the sandbox with primary key `sandbox_pk`."""

    sandbox_pk: int

    @classmethod
    def of(cls, sandbox: HasPk) -> Scope:
        return cls(sandbox.pk)

    def apply(self, stmt: _Statement, *, sqlite_likely: bool = False) -> _Statement:
        """`stmt` limited to this sandbox's rows (an INSERT writes them into this sandbox).

        `sqlite_likely` (SQLite-only statements) wraps the filter in SQLite's `likely()`: when
        the rest of the WHERE picks rows by primary key, the planner then keeps those lookups
        instead of scanning the sandbox's index, which it prefers for lists of 10 keys or more.
        """
        return _scoped(stmt, self.sandbox_pk, sqlite_likely=sqlite_likely)

    def params(self, **params: Any) -> dict[str, Any]:
        """Parameters for a `template` or `raw_sql` statement, with this sandbox's pk."""
        params[TENANT] = self.sandbox_pk
        return params


def template(stmt: _Statement) -> _Statement:
    """`Scope.apply` with the pk left as the `:tenant` parameter, for a statement built once
    and run with `Scope.params(...)` (the capping upsert on the decision path)."""
    return _scoped(stmt, sa.bindparam(TENANT, type_=sa.Integer))


def raw_sql(stmt: _Select) -> str:
    """A scoped `template` as SQL text with `:name` parameters, for Database.point_read (the
    hot path runs plain SQL to skip SQLAlchemy's per-execution cost). Callers compile once."""
    return str(template(stmt).compile(dialect=_RAW_DIALECT))


def across_tenants(stmt: _Statement) -> _Statement:
    """Mark a statement that is meant to span tenants: the tenant directory (tenants.py), which
    finds the tenant of a request, and housekeeping over every sandbox. Only those use it."""
    return stmt.execution_options(**{_MARK: frozenset(_reached(stmt))})


def _reached(statement: sa.ClauseElement) -> set[sa.Table]:
    """Every tenant table a statement names anywhere (columns, joins, subqueries, targets)."""
    found = sql_util.find_tables(statement, check_columns=True, include_crud=True)
    return {table for table in found if isinstance(table, sa.Table) and "tenant" in table.info}


def _named_in(sql: str) -> set[sa.Table]:
    """The tenant tables that SQL text names."""
    by_name = {table.name: table for table in tenant_tables()}
    pattern = "|".join(re.escape(name) for name in by_name)
    return {by_name[name.lower()] for name in re.findall(rf"\b({pattern})\b", sql, re.I)}


def check(statement: object) -> None:
    """Raise UnscopedTable when `statement` reaches tenant rows without this module's scoping.

    SQL text cannot be checked for its filter, so text that names a tenant table is refused:
    raw SQL comes from `raw_sql` and goes through Database.point_read, not through here.
    """
    if isinstance(statement, str | sa.TextClause):
        named = _named_in(statement if isinstance(statement, str) else statement.text)
        if named:
            names = sorted(table.name for table in named)
            raise UnscopedTable(f"SQL text reaches tenant tables {names}: {statement}")
        return
    if not isinstance(statement, sa.ClauseElement):
        return
    marked: frozenset[sa.Table] = (
        statement.get_execution_options().get(_MARK, frozenset())
        if isinstance(statement, sa.Executable)
        else frozenset()
    )
    missing = _reached(statement) - marked
    if missing:
        names = sorted(table.name for table in missing)
        raise UnscopedTable(f"Statement reaches tenant tables {names} unscoped: {statement}")


def check_raw(sql: str, params: Mapping[str, Any]) -> None:
    """`check` for the raw SQL of Database.point_read: every tenant table it names is filtered
    on the `:tenant` parameter, as `raw_sql` writes it, and the parameter is a sandbox pk."""
    for table in _named_in(sql):
        fragment = f"{table.name}.{tenant_column(table).name} = :{TENANT}"
        if fragment not in sql or not isinstance(params.get(TENANT), int):
            raise UnscopedTable(f"Raw SQL reaches '{table.name}' unscoped: {sql}")
