"""Benchmark ``monitor export``: 100,000 flags with the rows behind them, in each format.

    python bench/export.py                      # 100k flags over 100k generated processes
    python bench/export.py --formats xlsx --keep /tmp/export-bench

Generates processes, items, bids, awards, contracts and contract changes with the SQL of
bench/flags.py (deterministic), adds titles, plans (two thirds linked to a tender), organizations
and classifications, then synthesises exactly 100,000 flags: 70,000 about 60,000 processes (four
rules, anomalies and opportunities), 10,000 about plans, 12,000 about tenderers, 5,000 about
buyers, 2,976 about buyer-supplier pairs and 24 about regions; a fifth are resolved. Then times
``monitor export --format F`` (no filter: every flag and all its rows, the worst case) in its own
process for each format, and prints the files, rows and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from flags import GENERATE

from monitor.store import connect

EXTRA = r"""
CREATE TEMP MACRO h2(n, salt) AS (hash(n * 104729 + salt) % 1000000) / 1000000.0;
CREATE TEMP TABLE nums AS
SELECT ocid, process_key, row_number() OVER (ORDER BY ocid) - 1 AS n FROM processes;

UPDATE processes p SET
    tender_id = md5(p.ocid),
    title = (['Послуги з догляду вдома для людей похилого віку', 'Соціальний супровід людей, які вживають ін''єкційні наркотики',
              'Закупівля лікарських засобів (антиретровірусні препарати)', 'Харчування для закладу соціального захисту',
              'Поточний ремонт приміщення центру соціальних служб', 'Тестові системи для діагностики туберкульозу'])[1 + (h2(s.n, 1) * 6)::INT % 6]
            || ' № ' || s.n,
    description = 'Опис предмета закупівлі: ' || s.n || '; умови поставки згідно з договором',
    date_published = p.tender_start - INTERVAL 1 DAY,
    value_vat_included = true
FROM nums s WHERE s.ocid = p.ocid;

INSERT INTO plans BY NAME
SELECT 'plan-' || n AS plan_id, 'bench' AS source, 'bench:plan:' || n AS raw_key,
       'UA-P-2025-B-' || lpad(n::VARCHAR, 6, '0') AS plan_public_id, 'scheduled' AS status,
       'План: соціальні послуги № ' || n AS title,
       'UA-EDR-' || lpad((floor(pow(h2(n, 2), 3) * 20000))::INT::VARCHAR, 8, '0') AS buyer_id,
       'Замовник ' || (floor(pow(h2(n, 2), 3) * 20000))::INT AS buyer_name,
       (['Київська область', 'Львівська область', 'Сумська область', 'Рівненська область', 'м. Київ',
         'Полтавська область'])[1 + (h2(n, 3) * 6)::INT % 6] AS region,
       round(10000 + h2(n, 4) * 900000, 2) AS budget_amount, 'UAH' AS budget_currency, 2025 AS budget_year,
       ['local'] AS budget_sources, [{'source': 'local', 'amount': 1000.0, 'currency': 'UAH', 'scheme': 'КЕКВ',
                                      'code': '2240', 'description': 'Оплата послуг'}] AS budget_breakdown,
       '85310000-5' AS cpv, 'Послуги у сфері соціального захисту' AS cpv_description, ['2240'] AS kekv,
       TIMESTAMPTZ '2025-01-01 08:00:00+00' + to_days((h2(n, 5) * 300)::INT) AS planned_start,
       CASE WHEN n % 3 < 2 THEN (SELECT md5(ocid) FROM nums WHERE nums.n = (plans_n.n * 3) % $processes) END AS tender_id,
       1 AS items_count,
       TIMESTAMPTZ '2025-01-01 08:00:00+00' + to_days((h2(n, 5) * 300)::INT) - INTERVAL 30 DAY AS date_published,
       TIMESTAMPTZ '2025-01-01 08:00:00+00' + to_days((h2(n, 5) * 300)::INT) AS date_modified,
       false AS is_test
FROM range($plans) plans_n(n);

INSERT INTO organizations BY NAME
SELECT org_id, 'UA-EDR' AS scheme, substr(org_id, 8) AS identifier, 'Організація ' || substr(org_id, 8) AS name,
       'general' AS kind, (['Київська область', 'Львівська область', 'Сумська область', 'м. Київ'])[1 + (hash(org_id) % 4)::INT] AS region,
       TIMESTAMPTZ '2025-06-01 00:00:00+00' AS seen_at
FROM (SELECT buyer_id AS org_id FROM processes UNION SELECT tenderer_id FROM bids UNION SELECT buyer_id FROM plans)
WHERE org_id IS NOT NULL;

INSERT INTO classifications BY NAME
SELECT ocid, process_key, (['health', 'health.medicines', 'social', 'social.services', 'programme.pwid-support'])[1 + (h2(n, 6) * 5)::INT % 5] AS category,
       2 AS score, 'high' AS confidence,
       [{'signal': 'code', 'field': 'items', 'value': '85311000-2'}] AS evidence, TIMESTAMPTZ '2025-06-01 00:00:00+00' AS classified_at
FROM nums WHERE h2(n, 7) < 0.6;

INSERT INTO flags BY NAME
WITH process_flags AS (
    SELECT i, (['cardinal-r018-single-bid', 'cardinal-r003-short-submission-period', 'anomaly-winner-not-lowest-bid',
                'opportunity-open-social-tender'])[1 + i % 4] AS rule_id, (i * 7) % 60000 AS n
    FROM range(70000) t(i)
)
SELECT f.rule_id, CASE WHEN f.rule_id LIKE 'opportunity-%' THEN 'opportunity' ELSE 'anomaly' END AS kind,
       (['low', 'medium', 'high'])[1 + f.i % 3] AS severity, 'process' AS subject_type, p.ocid AS subject_id, p.ocid,
       p.value_amount AS value,
       to_json({'tender_public_id': p.tender_public_id, 'title': p.title, 'buyer_id': p.buyer_id, 'buyer_name': p.buyer_name,
                'region': p.region, 'value_amount': p.value_amount, 'value_currency': p.value_currency,
                'bids': p.bids_count})::VARCHAR AS evidence,
       TIMESTAMPTZ '2026-01-05 03:00:00+00' + to_days((f.i % 300)) AS first_seen,
       TIMESTAMPTZ '2026-01-05 03:00:00+00' + to_days((f.i % 300)) AS last_seen,
       CASE WHEN f.i % 5 = 0 THEN TIMESTAMPTZ '2026-11-01 03:00:00+00' END AS resolved_at
FROM process_flags f JOIN nums s ON s.n = f.n JOIN processes p ON p.ocid = s.ocid
UNION ALL
SELECT 'opportunity-planned-not-procured', 'opportunity', 'medium', 'plan', plan_id, NULL, budget_amount,
       to_json({'plan_public_id': plan_public_id, 'title': title, 'buyer_id': buyer_id, 'region': region,
                'amount': budget_amount, 'currency': 'UAH', 'categories': ['social.services']})::VARCHAR,
       TIMESTAMPTZ '2026-02-02 03:00:00+00', TIMESTAMPTZ '2026-02-02 03:00:00+00', NULL
FROM plans WHERE plan_id IN (SELECT 'plan-' || n FROM range(10000) t(n))
UNION ALL
SELECT 'cardinal-r058-heavily-discounted-bid-tenderer', 'anomaly', 'medium', 'tenderer', tenderer_id, NULL, 0.35,
       to_json({'processes': 3, 'share': 0.35})::VARCHAR, TIMESTAMPTZ '2026-03-02 03:00:00+00',
       TIMESTAMPTZ '2026-03-02 03:00:00+00', NULL
FROM (SELECT DISTINCT tenderer_id FROM bids ORDER BY tenderer_id LIMIT 12000)
UNION ALL
SELECT 'cardinal-r038-excessive-disqualified-bids-buyer', 'anomaly', 'medium', 'buyer', buyer_id, NULL, 0.5,
       to_json({'buyer_id': buyer_id, 'submitted_bids': 10, 'disqualified_bids': 5})::VARCHAR,
       TIMESTAMPTZ '2026-03-02 03:00:00+00', TIMESTAMPTZ '2026-03-02 03:00:00+00', NULL
FROM (SELECT DISTINCT buyer_id FROM processes ORDER BY buyer_id LIMIT 5000)
UNION ALL
SELECT 'anomaly-supplier-dominates-buyer-spend', 'anomaly', 'high', 'buyer-tenderer', buyer_id || '/' || supplier_id, NULL, 80.0,
       to_json({'buyer_id': buyer_id, 'supplier_id': supplier_id, 'share_pct': 80.0})::VARCHAR,
       TIMESTAMPTZ '2026-03-02 03:00:00+00', TIMESTAMPTZ '2026-03-02 03:00:00+00', NULL
FROM (SELECT DISTINCT buyer_id, supplier_id FROM contracts WHERE supplier_id IS NOT NULL ORDER BY ALL LIMIT 2976)
UNION ALL
SELECT 'opportunity-coverage-gap', 'opportunity', 'medium', 'region', region || ' #' || k, NULL, k,
       to_json({'region': region, 'categories': ['programme.pwid-support']})::VARCHAR,
       TIMESTAMPTZ '2026-04-06 03:00:00+00', TIMESTAMPTZ '2026-04-06 03:00:00+00', NULL
FROM (SELECT DISTINCT region FROM processes) r, range(4) t(k);
"""


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{platform.machine()}, {os.cpu_count()} cores (nproc), {model}, Python {platform.python_version()}, "
            f"{platform.platform()}")


def build(db: Path, processes: int, plans: int) -> dict[str, int]:
    con = connect(db)
    con.execute(GENERATE.replace("$processes", str(processes)))
    con.execute(EXTRA.replace("$processes", str(processes)).replace("$plans", str(plans)))
    tables = ("flags", "processes", "items", "bids", "awards", "contracts", "contract_changes", "plans",
              "organizations", "classifications")
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in tables}
    con.execute("CHECKPOINT")
    con.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=100_000)
    parser.add_argument("--plans", type=int, default=30_000)
    parser.add_argument("--formats", nargs="+", default=["parquet", "csv", "xlsx"])
    parser.add_argument("--filter", nargs=argparse.REMAINDER, default=[],
                        help="extra export options, e.g. --filter --region 'м. Київ'")
    parser.add_argument("--repeat", type=int, default=1, help="run each export this many times")
    parser.add_argument("--keep", type=Path, help="keep the database and exports in this folder (and reuse it)")
    args = parser.parse_args()
    print(f"# {machine()}")
    work = args.keep or Path(tempfile.mkdtemp(prefix="export-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        db = work / "bench.duckdb"
        if not db.exists():
            started = time.monotonic()
            counts = build(db, args.processes, args.plans)
            print(f"generated in {time.monotonic() - started:.1f} s: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        for fmt in args.formats:
            times = []
            for _ in range(args.repeat):
                out = work / f"out-{fmt}"
                shutil.rmtree(out, ignore_errors=True)
                load = os.getloadavg()[0]
                seconds, rss, code, summary = _timed(db, out, fmt, args.filter)
                manifest = json.loads((out / "manifest.json").read_text()) if code == 0 else {}
                size = sum(f["bytes"] for f in manifest.get("files", []))
                rows = sum(t["rows"] for t in manifest.get("tables", []))
                times.append(seconds)
                print(f"{fmt:8} {seconds:6.1f} s wall (process start included), exit {code}, {rows:,} rows, "
                      f"{size / 2**20:,.0f} MiB, peak RSS {rss / 2**30:.2f} GiB, load average before "
                      f"{load:.1f}; {summary}")
            if len(times) > 1:
                print(f"{fmt:8} best {min(times):.1f} s, median {statistics.median(times):.1f} s of {len(times)}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _timed(db: Path, out: Path, fmt: str, extra: list[str]) -> tuple[float, int, int, str]:
    """The export in its own process: wall seconds, peak RSS (bytes), exit code, summary (or the end of stderr)."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as errors:
        child = subprocess.Popen([sys.executable, "-m", "monitor", "--log-format", "json", "--db", str(db), "export",
                                  "--format", fmt, "--out", str(out), *extra],
                                 stdout=subprocess.PIPE, stderr=errors, text=True)
        stdout = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.monotonic() - started
        errors.seek(0)
        stderr = errors.read()
    code = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss * 1024, code, stdout.strip() or stderr.strip()[-500:]


if __name__ == "__main__":
    main()
