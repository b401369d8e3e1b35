"""Benchmark ``monitor load``: records/s, MB/s and peak RSS for generated OCDS and ProZorro files.

    python bench/load.py                       # 100k OCDS compiled releases and 100k ProZorro tenders
    python bench/load.py --counts 100000 1000000 --kinds ocds
    python bench/load.py --keep                # keep generated files in bench/out for re-runs
    python bench/load.py --counts 250000 --kinds ocds-package   # one 1.3 GB release package (.json)

Data comes from bench/generate.py (deterministic, seed 42) and is generated once per size into
bench/out/. Each load runs in a fresh process on an empty database, so peak RSS is the loader's.
Prints one line per run; copy the lines into bench/README.md with the machine they ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def generate(kind: str, count: int, seed: int) -> Path:
    path = OUT / f"{kind}-{count}-seed{seed}.jsonl"
    if not path.exists():
        OUT.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp")
        subprocess.run(
            [sys.executable, str(HERE / "generate.py"), "--kind", kind, "--count", str(count),
             "--seed", str(seed), "--out", str(tmp)],
            check=True,
        )
        tmp.rename(path)
    return path


def package_of(lines: Path) -> Path:
    """The same compiled releases as one OCDS release package (.json), which the loader streams."""
    path = lines.with_name(f"{lines.stem}-package.json")
    if not path.exists():
        with lines.open("rb") as source, path.open("wb") as out:
            out.write(b'{"uri":"https://example.org/bench/package.json","version":"1.1",'
                      b'"publishedDate":"2026-11-01T00:00:00Z","publisher":{"name":"bench"},"releases":[')
            for index, line in enumerate(source):
                out.write(b"," + line.rstrip(b"\n") if index else line.rstrip(b"\n"))
            out.write(b"]}")
    return path


def load(path: Path) -> tuple[float, int, str]:
    """Seconds, peak RSS (bytes) and the summary line of one ``monitor load`` into a fresh database."""
    db = OUT / "bench.duckdb"
    for leftover in (db, db.with_suffix(".duckdb.wal")):
        leftover.unlink(missing_ok=True)
    started = time.monotonic()
    # the target is loading and normalizing; classification and flags have their own benchmarks
    completed = subprocess.run(
        [sys.executable, "-m", "monitor", "--log-format", "json", "--db", str(db), "load", str(path)],
        check=True, capture_output=True, text=True, env={**os.environ, "MONITOR_AFTER_STORE": "none"},
    )
    seconds = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    db.unlink(missing_ok=True)
    return seconds, peak, completed.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, nargs="+", default=[100_000])
    parser.add_argument("--kinds", nargs="+", default=["ocds", "prozorro"],
                        choices=["ocds", "prozorro", "ocds-package"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    print(f"# {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.platform()}")
    for kind in args.kinds:
        for count in args.counts:
            lines = generate(kind.removesuffix("-package"), count, args.seed)
            path = package_of(lines) if kind.endswith("-package") else lines
            size = path.stat().st_size
            seconds, peak, summary = load(path)
            print(f"{kind:12} {count:>9,} records {size / 1e6:8.0f} MB  {seconds:7.1f} s  "
                  f"{count / seconds:9,.0f} records/s  {size / 1e6 / seconds:6.1f} MB/s  "
                  f"peak RSS {peak / 2**30:4.2f} GiB   [{summary}]", flush=True)
            if not args.keep:
                lines.unlink()
                path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
