"""Benchmark classification: 1M processes with ~3M items, end to end through DuckDB and Polars.

    python bench/classify.py                     # 1,000,000 processes
    python bench/classify.py --processes 200000

Builds the processes and items tables directly (deterministic, seed 42): titles and item
descriptions are ДК021 names with realistic additions (programme phrases in ~3 % of titles, apostrophe
variants, capitals), CPV codes skewed towards health and social codes in ~20 % of items, INN/ATC on
medicines. Then times ``monitor classify --full`` in its own process (read through Arrow, classify,
write back) and reports that process's peak RSS.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from monitor.store import connect  # noqa: E402

PHRASES = [
    "Соціальний супровід осіб, які вживають ін'єкційні наркотики",
    "Послуги з догляду вдома за особами похилого віку",
    "Профілактика ВІЛ серед груп підвищеного ризику",
    "Послуги притулку для постраждалих від домашнього насильства",
    "Закупівля сніданків для учнів",
    "Супровід програмного забезпечення",
    "Реабілітаційні послуги для дітей з інвалідністю",
    "Скринінг на туберкульоз",
    "Социальное сопровождение пациентов ЗПТ",
    "Послуги з тимчасового розміщення бездомних осіб",
]
MEDICINES = [("methadone", "N07BC02"), ("dolutegravir", "J05AX12"), ("isoniazid", "J04AC01"), ("ibuprofen", "M01AE01"),
             ("paracetamol", "N02BE01"), ("naloxone", "V03AB15")]


def build(processes: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    with (HERE.parent / "data/reference/derived/cpv_dk021_uk_en_ru.csv").open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["level"] in ("category", "subcategory", "class")]
    codes = np.array([r["code"] for r in rows])
    names = np.array([r["name_uk"] for r in rows])
    focus = np.flatnonzero(np.char.startswith(codes, "33") | np.char.startswith(codes, "85")
                           | np.char.startswith(codes, "75"))
    ocids = np.array([f"ocds-be6bcu-UA-2025-01-01-{i:06d}-a" for i in range(processes)])
    items_per = rng.integers(1, 6, processes)  # 1-5, mean 3
    item_ocids = np.repeat(ocids, items_per)
    n_items = len(item_ocids)
    pick = np.where(rng.random(n_items) < 0.2, rng.choice(focus, n_items), rng.integers(0, len(codes), n_items))
    medicine = rng.integers(0, len(MEDICINES), n_items)
    is_medicine = np.char.startswith(codes[pick], "336")
    title_pick = rng.integers(0, len(codes), processes)
    phrase = rng.integers(0, len(PHRASES), processes)
    with_phrase = rng.random(processes) < 0.03
    titles = np.where(with_phrase, np.array(PHRASES)[phrase], names[title_pick])
    process_frame = pl.DataFrame({
        "ocid": ocids, "title": titles, "description": None,
        "buyer_kind": rng.choice(["general", "social", "authority"], processes, p=[0.85, 0.05, 0.10]),
    }, schema_overrides={"description": pl.String})
    item_frame = pl.DataFrame({
        "ocid": item_ocids, "cpv": codes[pick], "description": names[pick],
        "inn": np.where(is_medicine, np.array([m[0] for m in MEDICINES])[medicine], None),
        "atc": np.where(is_medicine, np.array([m[1] for m in MEDICINES])[medicine], None),
    })
    return process_frame, item_frame


def build_database(path: Path, processes: int, seed: int) -> None:
    """Write the generated processes and items into a fresh database at ``path``."""
    process_frame, item_frame = build(processes, seed)
    con = connect(path)
    con.register("process_rows", process_frame.with_columns(raw_key=pl.col("ocid"), source=pl.lit("bench")).to_arrow())
    con.register("item_rows", item_frame.with_columns(raw_key=pl.col("ocid")).to_arrow())
    con.execute("INSERT INTO process_keys SELECT ocid, row_number() OVER (ORDER BY ocid) FROM process_rows")
    con.execute("INSERT INTO processes BY NAME SELECT r.*, k.process_key FROM process_rows r JOIN process_keys k USING (ocid)")
    con.execute("INSERT INTO items BY NAME SELECT r.*, k.process_key FROM item_rows r JOIN process_keys k USING (ocid)")
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--build-only", type=Path, metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        build_database(args.build_only, args.processes, args.seed)
        return
    print(f"# {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        # both steps run in their own processes: a child forked from a big parent inherits its RSS peak
        subprocess.run([sys.executable, __file__, "--build-only", str(db), "--processes", str(args.processes),
                        "--seed", str(args.seed)], check=True, capture_output=True)
        started = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--log-format", "json", "--db", str(db), "classify", "--full"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        summary = child.stdout.read().strip()
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage
        seconds = time.monotonic() - started
        if status != 0:
            raise SystemExit(f"monitor classify failed with status {status}")
        peak = usage.ru_maxrss / 2**20
        con = connect(db)
        n_items = con.execute("SELECT count(*) FROM items").fetchone()[0]
        counts = con.execute("SELECT category, count(*) FROM classifications GROUP BY 1 ORDER BY 1").fetchall()
        con.close()
    print(f"monitor classify --full: {args.processes:,} processes / {n_items:,} items in {seconds:.1f} s "
          f"(process start included), peak RSS {peak:.2f} GiB; {summary}")
    for category, count in counts:
        print(f"  {category:<30}{count:>10,}")


if __name__ == "__main__":
    main()
