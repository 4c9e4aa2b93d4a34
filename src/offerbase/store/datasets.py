"""Datasets: where batch decisioning jobs (store/workloads.py) write their results. A dataset
is a directory on the server's filesystem; each workload writes its Parquet files into a
directory of its own under it (api/workloads.py).

The id is what `xdm:dataSetId` names; unique across the deployment (like a datastream's), but
found only inside the caller's sandbox: everything here is scoped through store/scope.py.
The path is the operator's to choose (`offerbase datasets create --path`); over HTTP a dataset
always lives under the data directory, so an API client cannot make the server write anywhere.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from offerbase.store.clock import now_iso
from offerbase.store.errors import InvalidField, Unprocessable, check_name
from offerbase.store.scope import Scope
from offerbase.store.tables import datasets
from offerbase.store.tenants import Sandbox

MAX_PATH_CHARS = 4096
MAX_PER_SANDBOX = 1000  # a sandbox's list is one bounded answer, without paging
# Adobe's dataset ids are 24 hexadecimal digits; Offerbase generates the same shape.
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
_ID = re.compile(ID_PATTERN)


def valid_id(dataset_id: str) -> bool:
    return _ID.fullmatch(dataset_id) is not None


def new_id() -> str:
    return uuid.uuid4().hex[:24]


def default_path(data_dir: Path, dataset_id: str) -> Path:
    """Where a dataset lives when nobody chose: `<data dir>/datasets/<id>`."""
    return (data_dir / "datasets" / dataset_id).resolve()


def check_path(path: Path, pointer: str = "/path") -> Path:
    """An absolute directory path (made absolute against the working directory)."""
    text = str(path)
    if not text or len(text) > MAX_PATH_CHARS or "\x00" in text:
        message = f"The path is 1 to {MAX_PATH_CHARS} characters (no U+0000)."
        raise Unprocessable(message, [InvalidField(pointer, message)])
    resolved = path.expanduser().resolve()
    if resolved.exists() and not resolved.is_dir():
        message = f"{str(resolved)[:200]} exists and is not a directory."
        raise Unprocessable(message, [InvalidField(pointer, message)])
    return resolved


@dataclass(frozen=True)
class Dataset:
    id: str
    sandbox: Sandbox
    name: str
    path: str  # absolute
    created: str

    def workload_dir(self, workload_id: str) -> Path:
        """Where a finished workload's files are: one directory per workload."""
        return Path(self.path) / workload_id

    def staging_dir(self, workload_id: str) -> Path:
        """Where a running workload writes; renamed to `workload_dir` once complete. A dot
        directory: whoever reads the dataset's workload directories never mistakes it for one."""
        return Path(self.path) / ".staging" / workload_id

    def shown(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "org": self.sandbox.org_id,
            "sandbox": self.sandbox.name,
            "name": self.name,
            "path": self.path,
            "created": self.created,
        }


_COLUMNS = [datasets.c.id, datasets.c.name, datasets.c.path, datasets.c.created]


def _dataset(row: Any, sandbox: Sandbox) -> Dataset:
    return Dataset(row.id, sandbox, row.name, row.path, row.created)


async def create_dataset(
    conn: AsyncConnection,
    sandbox: Sandbox,
    *,
    data_dir: Path,
    name: str = "",
    path: Path | None = None,
) -> Dataset:
    """A new dataset in `sandbox` with a generated id, at `path` (default under `data_dir`).
    The directory is created when the first workload writes to it. Unprocessable for a bad
    name or path, or a sandbox that has MAX_PER_SANDBOX already."""
    checked_name = check_name(name)
    dataset_id = new_id()
    checked_path = check_path(path) if path is not None else default_path(data_dir, dataset_id)
    scope = Scope.of(sandbox)
    count = sa.select(sa.func.count()).select_from(datasets)
    if int(await conn.scalar(scope.apply(count)) or 0) >= MAX_PER_SANDBOX:
        message = f"The sandbox has {MAX_PER_SANDBOX} datasets, the most it may have."
        raise Unprocessable(message, [InvalidField("", message)])
    created = now_iso()
    insert = datasets.insert().values(
        id=dataset_id, name=checked_name, path=str(checked_path), created=created
    )
    await conn.execute(scope.apply(insert))
    return Dataset(dataset_id, sandbox, checked_name, str(checked_path), created)


async def list_datasets(conn: AsyncConnection, sandbox: Sandbox) -> list[Dataset]:
    """The sandbox's datasets, oldest first (at most MAX_PER_SANDBOX)."""
    query = sa.select(*_COLUMNS).order_by(datasets.c.created, datasets.c.id)
    rows = (await conn.execute(Scope.of(sandbox).apply(query))).all()
    return [_dataset(row, sandbox) for row in rows]


async def get_dataset(conn: AsyncConnection, sandbox: Sandbox, dataset_id: str) -> Dataset | None:
    """The sandbox's dataset with this id; None when it has none (another tenant's is None)."""
    if not valid_id(dataset_id):
        return None
    query = sa.select(*_COLUMNS).where(datasets.c.id == dataset_id)
    row = (await conn.execute(Scope.of(sandbox).apply(query))).first()
    return None if row is None else _dataset(row, sandbox)
