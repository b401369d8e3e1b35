"""Benchmark ``monitor ingest`` end to end against the loopback replay server.

    python bench/ingest.py                    # 20k tenders: no latency, 50 ms latency, incremental run
    python bench/ingest.py --tenders 5000     # smaller world

The server (monitor.testing.replay_server) runs in this process, in threads; each ingest runs as a
separate ``python -m monitor ingest prozorro-tenders`` process on an empty database, so the
figures include process start, HTTP, JSON, the raw store and normalization. Prints one line per
scenario; copy them into bench/README.md with the machine they ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from monitor.testing.replay_server import Faults, ReplayServer, World  # noqa: E402

CONFIG = """
[http]
rate_limit = {rate}
concurrency = {concurrency}
[prozorro]
page_limit = {page_limit}
"""


def run_ingest(db: Path, config: Path, url: str, *args: str) -> float:
    env = {**os.environ, "MONITOR_PROZORRO_API_URL": url}
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "monitor", "--log-format", "json", "--config", str(config), "--db", str(db),
         "ingest", "prozorro-tenders", *args],
        check=True, env=env, capture_output=True,
    )
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenders", type=int, default=20_000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request in the latency scenario")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight in the latency scenario")
    parser.add_argument("--page-limit", type=int, default=500, help="ids per feed page (the API allows 1000)")
    parser.add_argument("--changed", type=float, default=0.05, help="share of tenders changed for the incremental run")
    args = parser.parse_args()
    print(f"# {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}")
    world = World.generated(tenders=args.tenders, seed=42)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        fast = tmp_path / "fast.toml"
        fast.write_text(CONFIG.format(rate=100_000, concurrency=16, page_limit=args.page_limit))
        slow = tmp_path / "slow.toml"
        slow.write_text(CONFIG.format(rate=100_000, concurrency=args.concurrency, page_limit=args.page_limit))

        with ReplayServer(world) as server:
            seconds = run_ingest(tmp_path / "a.duckdb", fast, server.url, "--full")
            print(f"full ingest, no added latency, concurrency 16: {args.tenders:,} tenders in {seconds:.1f} s = "
                  f"{args.tenders / seconds:,.0f} tenders/s ({server.count():,} requests)", flush=True)

            changed = sorted(world.objects("tenders"))[:: max(1, int(1 / args.changed))]
            for object_id in changed:
                world.mutate("tenders", object_id)
            server.reset_log()
            seconds = run_ingest(tmp_path / "a.duckdb", fast, server.url)
            objects = server.count("object")
            print(f"incremental ingest after {len(changed):,} changes: {seconds:.1f} s, {objects:,} object requests "
                  f"= {objects / len(changed):.2f} per changed object, {server.count():,} requests in all "
                  f"({server.count('feed'):,} feed pages)", flush=True)

        with ReplayServer(world, Faults(latency=args.latency)) as server:
            seconds = run_ingest(tmp_path / "b.duckdb", slow, server.url, "--full")
            print(f"full ingest, {args.latency * 1000:.0f} ms per request, concurrency {args.concurrency}: "
                  f"{args.tenders:,} tenders in {seconds:.1f} s = {args.tenders / seconds:,.0f} tenders/s", flush=True)


if __name__ == "__main__":
    main()
