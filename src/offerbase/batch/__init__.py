"""Batch decisioning: decisions for every profile of an audience (issue 15).

Layer rule: `batch` sits above `engine`, `catalog` and `pql` and is pure like the engine: it may
import those, `regex`, polars and pyarrow, and nothing that does I/O through the server's
frameworks (no `store`, `api` or `cli`; no web or database framework). Files are read and
written by the caller (the CLI, the API's job runner), so a partition function runs unchanged in
a worker process or on a cluster engine. `tests/test_layers.py` checks it.

* `vector`: PQL rules compiled to Polars expressions over a frame of profiles (vectorised
  eligibility), with the engine's closures as the reference and the per-row fallback.
* `partition`: one partition of profiles decided (`decide_partition`: picklable arguments, the
  engine per row, the output columns).
* `run`: a job on files (`run_batch`: streamed input, worker processes, the cap arbitration in
  input order, atomic publish).
* `distributed`: the same partitions and arbitration on a Dask cluster (`run_batch(engine=
  "dask")`, the optional `offerbase[dask]` extra, imported only then); a job as JSON for other
  engines. docs/batch.md describes them.
"""
