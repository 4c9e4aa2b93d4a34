"""Where a batch job's time goes: bench/batch.py's catalog and profiles, then one
`offerbase batch decide --workers 1` under cProfile, and the top functions by own time and by
cumulative time.

    .venv/bin/python bench/batch_profile.py [--profiles 100000] [--top 30] [--dry-run]
"""

from __future__ import annotations

import argparse
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from batch import write_profiles
from load_decide import build_catalog
from serving import auth_headers, free_port, machine, start_server, stop_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="offerbase-batch-profile-"))
    try:
        env = {**os.environ, "OFFERBASE_DATA_DIR": str(work / "data")}
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(env, port, 1)
        try:
            headers = auth_headers(base, env, "BATCH")
            build_catalog(base, {**headers, "Content-Type": "application/json"}, 100, True)
        finally:
            stop_server(server)
        source = work / "profiles.parquet"
        write_profiles(source, args.profiles)
        stats = work / "batch.prof"
        command = [
            sys.executable, "-m", "cProfile", "-o", str(stats), "-m", "offerbase", "batch",
            "decide", "--org", headers["x-gw-ims-org-id"], "--sandbox",
            headers["x-sandbox-name"], "--input", str(source), "--activity", "dec",
            "--placement", "web", "--output", str(work / "out"), "--workers", "1", "--json",
        ]  # fmt: skip
        if args.dry_run:
            command.append("--dry-run")
        started = time.monotonic()
        done = subprocess.run(command, env=env, capture_output=True, check=False)
        seconds = time.monotonic() - started
        if done.returncode != 0:
            sys.exit(done.stderr.decode()[-2000:])
        print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
        print(f"{args.profiles:,} profiles, one process, under cProfile: {seconds:.1f} s")
        print(done.stdout.decode().strip().splitlines()[-1])
        report = pstats.Stats(str(stats))
        report.sort_stats("tottime").print_stats(args.top)
        report.sort_stats("cumulative").print_stats(args.top)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
