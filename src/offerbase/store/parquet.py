"""Events as Parquet (`offerbase events export --format parquet`): the exported records of
decision and interaction events as typed columns, written in row groups as the events are
read, so an export of any size holds one row group in memory, not the whole sandbox.

Lossless: a record's fields that no column names (a field added to the records later) go to
the `extra` column as JSON text, null when there are none; nested values that have no simple
typed form (a decision's identity map and propositions, an interaction's action) are JSON
text too, as the NDJSON export writes them. Times are UTC timestamps with milliseconds, as
stored. docs/operations.md ("Exporting events") lists the columns.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, BinaryIO

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP_SIZE = 10_000
Record = dict[str, Any]
_TIME = pa.timestamp("ms", tz="UTC")


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


# (column, type, how a record gives its value, the record fields it covers)
Column = tuple[str, pa.DataType, Callable[[Record], Any], tuple[str, ...]]


def _field(name: str, type_: pa.DataType, key: str | None = None) -> Column:
    key = key or name
    convert: Callable[[Any], Any] = _time if type_ == _TIME else (lambda value: value)
    return (name, type_, lambda record: convert(record.get(key)), (key,))


def _json_field(name: str, key: str | None = None) -> Column:
    key = key or name
    return (name, pa.string(), lambda record: _json(record.get(key)), (key,))


def _identity(part: str) -> Callable[[Record], Any]:
    def value(record: Record) -> Any:
        identity = record.get("identity")
        return identity.get(part) if isinstance(identity, dict) else None

    return value


INTERACTION_COLUMNS: tuple[Column, ...] = (
    _field("eventId", pa.string()),
    _field("seq", pa.int32()),
    _field("timestamp", _TIME),
    _field("receivedAt", _TIME),
    _field("type", pa.string()),
    _field("eventType", pa.string()),
    _field("propositionId", pa.string()),
    _field("scope", pa.string()),
    _field("activityId", pa.string()),
    _field("placementId", pa.string()),
    _field("itemIds", pa.list_(pa.string())),
    ("identityNamespace", pa.string(), _identity("namespace"), ("identity",)),
    ("identityId", pa.string(), _identity("id"), ()),
    _field("datastreamId", pa.string()),
    _field("requestId", pa.string()),
    _field("eventIndex", pa.int32()),
    _json_field("action"),
)
DECISION_COLUMNS: tuple[Column, ...] = (
    _field("propositionId", pa.string(), "xdm:propositionId"),
    _field("timestamp", _TIME, "xdm:timestamp"),
    _field("decisionRequestId", pa.string(), "xdm:decisionRequestId"),
    _json_field("identityMap", "xdm:identityMap"),
    _json_field("propositions", "xdm:propositions"),
)
COLUMNS = {"decision": DECISION_COLUMNS, "interaction": INTERACTION_COLUMNS}


def schema(kind: str) -> pa.Schema:
    """The Parquet schema of `kind` ("decision" or "interaction") events."""
    fields = [pa.field(name, type_) for name, type_, _, _ in COLUMNS[kind]]
    return pa.schema([*fields, pa.field("extra", pa.string())])


async def write_parquet(
    records: AsyncIterator[Record],
    kind: str,
    sink: str | BinaryIO,
    *,
    row_group_size: int | None = None,
) -> int:
    """Write `kind` records to `sink` (a path or a binary stream, which need not be seekable)
    as Parquet, `row_group_size` (default ROW_GROUP_SIZE) rows per row group. Returns how many
    were written."""
    row_group_size = row_group_size or ROW_GROUP_SIZE
    columns = COLUMNS[kind]
    covered = {key for _, _, _, keys in columns for key in keys}
    target = schema(kind)
    written = 0
    batch: list[list[Any]] = [[] for _ in range(len(columns) + 1)]

    def flush(writer: pq.ParquetWriter) -> None:
        arrays = [
            pa.array(values, type=field.type) for values, field in zip(batch, target, strict=True)
        ]
        writer.write_table(pa.Table.from_arrays(arrays, schema=target))
        for values in batch:
            values.clear()

    with pq.ParquetWriter(sink, target) as writer:
        async for record in records:
            for values, (_, _, value, _) in zip(batch, columns, strict=False):  # the last is extra
                values.append(value(record))
            extra = {key: item for key, item in record.items() if key not in covered}
            batch[-1].append(_json(extra) if extra else None)
            written += 1
            if written % row_group_size == 0:
                flush(writer)
        if batch[0]:
            flush(writer)
    return written
