"""Benchmark flag evaluation: every rule in rules/flags/ over 1M generated processes.

    python bench/flags.py                    # 1,000,000 processes
    python bench/flags.py --processes 200000
    python bench/flags.py --report           # then the weekly report of all those flags
    python bench/flags.py --social-share 0.05  # 5 % of processes social (default: about 56 %)
    python bench/flags.py --memory-limit 8GB   # monitor flag with [store] memory_limit = "8GB" (default 2GB)

Generates processes, lots-free items, bids (0-6 per process), awards, contracts, contract changes,
complaints and bid documents straight into the tables with SQL (deterministic: values derive from
hashes of the row number; every item has a unit, 30 % a unit price). As on ProZorro, a report of a
contract (45 % of the processes) has no tender period and no bids, but an award and a contract.
Times the ``cardinal-*`` rules alone on a copy (to set beside Cardinal), then ``monitor flag`` in its
own process three times (all rules, sandboxed read two at a time, after the shared sets they read, then
the flags merge): the first run, a re-run with nothing changed, and a run after a night's changes (1 %
of the processes changed and logged, as the normalizer logs them: incremental rules evaluate those
alone). Prints the shared sets' and the first run's rules' seconds (from its log and ``rule_runs``; a
rule's seconds include waiting for the core the other rule uses).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from monitor.report.weeks import week_containing  # noqa: E402
from monitor.store import connect  # noqa: E402
from monitor.store.changes import log_changed_processes  # noqa: E402

SOCIAL_CPV = ["85312000-9", "85311000-2"]  # social services (853*): what the classifier output below tags
OTHER_CPV = ["33600000-6", "09130000-9", "45450000-6", "30190000-7"]


def item_cpv(social_share: float | None) -> str:
    """The SQL of an item's ДК021 code. By default one of the six codes alike, so about 5 processes in 9
    (two items each) have a social-service item; or the mix where ``social_share`` of the processes do."""
    if social_share is None:
        return f"({SOCIAL_CPV + OTHER_CPV!r})[1 + (h(n, 10 + k) * 6)::INT % 6]"
    per_item = 1 - (1 - social_share) ** 0.5
    return (f"CASE WHEN h(n, 10 + k) < {per_item!r} THEN ({SOCIAL_CPV!r})[1 + (h(n, 90 + k) * 2)::INT % 2] "
            f"ELSE ({OTHER_CPV!r})[1 + (h(n, 90 + k) * 4)::INT % 4] END")

GENERATE = """
CREATE TEMP MACRO h(n, salt) AS (hash(n * 7919 + salt) % 1000000) / 1000000.0;
-- the k-th bidder of process n (Zipf-like: a few firms bid often); a report's supplier is its bidder 0
CREATE TEMP MACRO tenderer(n, k) AS 'UA-EDR-' || lpad((floor(pow(h(n, 40 + k), 2) * 60000))::INT::VARCHAR, 8, '0');
INSERT INTO processes BY NAME
SELECT * EXCLUDE (n, report, published_day, buyer_no)
FROM (SELECT n, h(n, 2) < 0.45 AS report,  -- a report of a contract (ProZorro's 'reporting'): no tender period, no bids
             (h(n, 4) * 600)::INT AS published_day, floor(pow(h(n, 6), 3) * 20000)::INT AS buyer_no,
             'ocds-be6bcu-UA-2025-B-' || lpad(n::VARCHAR, 7, '0') AS ocid, n + 1 AS process_key, 'bench' AS source,
             'bench:' || n AS raw_key, 'UA-2025-B-' || lpad(n::VARCHAR, 7, '0') AS tender_public_id, 'tid-' || n AS tender_id,
             TIMESTAMPTZ '2025-01-01 08:00:00+00' + to_days(published_day) AS date_published,
             CASE WHEN h(n, 1) < 0.07 THEN 'cancelled' WHEN h(n, 1) < 0.12 THEN 'unsuccessful' ELSE 'complete' END AS status,
             CASE WHEN report THEN 'limited' WHEN h(n, 2) < 0.55 THEN 'selective' ELSE 'open' END AS procurement_method,
             CASE WHEN report THEN 'reporting' WHEN h(n, 2) < 0.55 THEN 'priceQuotation'
                  WHEN h(n, 2) < 0.85 THEN 'belowThreshold' ELSE 'aboveThreshold' END AS procurement_method_type,
             'services' AS main_category,
             round(1000 + exp(h(n, 3) * 12), 2) AS value_amount, 'UAH' AS value_currency,
             CASE WHEN NOT report THEN date_published END AS tender_start,
             CASE WHEN NOT report THEN date_published + to_days(3 + (h(n, 5) * 25)::INT) END AS tender_end,
             date_published + to_days(30) AS date_modified,
             'UA-EDR-' || lpad(buyer_no::VARCHAR, 8, '0') AS buyer_id, 'Замовник ' || buyer_no AS buyer_name,
             'general' AS buyer_kind, buyer_id AS procuring_entity_id,
             (['Київська область', 'Львівська область', 'Сумська область', 'Рівненська область', 'м. Київ',
               'Полтавська область'])[1 + (h(n, 7) * 6)::INT % 6] AS region,
             CASE WHEN NOT report THEN (h(n, 8) * 6)::INT END AS number_of_tenderers,
             CASE WHEN report THEN 0 ELSE (h(n, 8) * 6)::INT END AS bids_count,
             1 AS awards_count, 1 AS contracts_count, 0 AS complaints_count, 0 AS cancellations_count,
             false AS is_test, false AS is_masked
      FROM range($processes) t(n));
INSERT INTO process_keys SELECT ocid, process_key FROM processes;

-- every item has a unit (by its ДК021 code: a social service per person, service or month, fuel per litre...)
-- and 30 % publish a unit price in UAH (lognormal around the unit's usual price): what the unit price
-- outlier rule compares
INSERT INTO items BY NAME
SELECT * EXCLUDE (n, k, units, unit)
FROM (SELECT n, k, 'ocds-be6bcu-UA-2025-B-' || lpad(n::VARCHAR, 7, '0') AS ocid, n + 1 AS process_key, 'bench:' || n AS raw_key,
             'i' || k AS item_id, $item_cpv AS cpv, 'Позиція ' || k AS description, 1 + (h(n, 20 + k) * 100)::INT AS quantity,
             CASE cpv WHEN '85312000-9' THEN [{'code': 'IE', 'name': 'особа', 'price': 640},
                                              {'code': 'E48', 'name': 'послуга', 'price': 250},
                                              {'code': 'MON', 'name': 'місяць', 'price': 3000}]
                      WHEN '85311000-2' THEN [{'code': 'IE', 'name': 'особа', 'price': 9000},
                                              {'code': 'DAY', 'name': 'день', 'price': 450},
                                              {'code': 'MON', 'name': 'місяць', 'price': 12000}]
                      WHEN '33600000-6' THEN [{'code': 'PK', 'name': 'упаковка', 'price': 180}]
                      WHEN '09130000-9' THEN [{'code': 'LTR', 'name': 'літр', 'price': 55}]
                      WHEN '45450000-6' THEN [{'code': 'E48', 'name': 'послуга', 'price': 40000}]
                      ELSE [{'code': 'H87', 'name': 'штука', 'price': 2500}] END AS units,
             units[1 + (h(n, 72 + k) * len(units))::INT % len(units)] AS unit,
             struct_extract(unit, 'code') AS unit_code, struct_extract(unit, 'name') AS unit_name,
             CASE WHEN h(n, 70 + k) < 0.3
                  THEN round(struct_extract(unit, 'price') * exp(0.7 * (h(n, 74 + k) + h(n, 76 + k) + h(n, 78 + k) - 1.5)), 2)
                  END AS unit_value_amount,
             CASE WHEN h(n, 70 + k) < 0.3 THEN 'UAH' END AS unit_value_currency
      FROM range($processes) t(n), range(2) r(k));

INSERT INTO bids BY NAME
SELECT p.ocid, p.process_key, p.raw_key, p.ocid || '-b' || k AS bid_id, CASE WHEN h(n, 30 + k) < 0.1 THEN 'disqualified' ELSE 'valid' END AS status,
       CASE WHEN h(n, 30 + k) < 0.1 THEN 'disqualified' ELSE 'valid' END AS status_ocds,
       p.tender_end - INTERVAL 1 HOUR * k AS date,
       tenderer(n, k) AS tenderer_id, [tenderer_id] AS tenderer_ids,
       round(p.value_amount * (0.7 + h(n, 50 + k) * 0.3), 2) AS value_amount, 'UAH' AS value_currency
FROM (SELECT process_key - 1 AS n, * FROM processes) p, range(6) r(k)
WHERE k < p.bids_count;

-- the lowest bid wins; a report (not cancelled) names its supplier directly, without a bid
INSERT INTO awards BY NAME
SELECT b.ocid, b.process_key, b.raw_key, b.ocid || '-a' AS award_id, b.bid_id, 'active' AS status, b.date + INTERVAL 2 DAY AS date,
       b.value_amount, 'UAH' AS value_currency, b.tenderer_id AS supplier_id, b.tenderer_ids AS supplier_ids,
       0 AS complaints_count
FROM (SELECT *, row_number() OVER (PARTITION BY ocid ORDER BY value_amount) AS rank FROM bids) b WHERE rank = 1
UNION ALL
SELECT p.ocid, p.process_key, p.raw_key, p.ocid || '-a' AS award_id, NULL AS bid_id, 'active' AS status,
       p.date_published + INTERVAL 1 DAY AS date, p.value_amount, 'UAH' AS value_currency,
       tenderer(n, 0) AS supplier_id,
       [supplier_id] AS supplier_ids, 0 AS complaints_count
FROM (SELECT process_key - 1 AS n, * FROM processes) p
WHERE p.procurement_method_type = 'reporting' AND p.status <> 'cancelled';

INSERT INTO contracts BY NAME
SELECT a.ocid, a.process_key, a.raw_key, 'contract' AS origin, a.ocid || '-c' AS contract_id, a.award_id, 'active' AS status,
       a.date + INTERVAL 5 DAY AS date_signed, a.value_amount * CASE WHEN hash(a.ocid) % 10 = 0 THEN 1.15 ELSE 1 END AS value_amount,
       'UAH' AS value_currency, p.buyer_id, a.supplier_id, 0 AS changes_count
FROM awards a JOIN processes p USING (ocid);

-- complaints on 3 % of the processes with a tender period (a third satisfied, decided 10-100 days after the
-- tender end), the complaint period of an award on a bid (4 days: over when the contract is signed, on the
-- 5th, as ProZorro enforces; 10 days on 1 % of them, a contract signed inside it), and 0-3 documents on
-- every winning bid
INSERT INTO complaints BY NAME
SELECT p.ocid, p.process_key, p.raw_key, p.ocid || '-cmp' AS complaint_id, p.tender_public_id || '.c1' AS complaint_public_id,
       CASE WHEN h(n, 60) < 0.5 THEN 'tender' ELSE 'award' END AS parent_type,
       CASE WHEN h(n, 60) < 0.5 THEN NULL ELSE p.ocid || '-a' END AS parent_id,
       CASE WHEN h(n, 61) < 0.8 THEN 'complaint' ELSE 'claim' END AS type,
       CASE WHEN h(n, 62) < 0.33 THEN 'satisfied' WHEN h(n, 62) < 0.66 THEN 'declined' ELSE 'invalid' END AS status,
       p.tender_end - INTERVAL 2 DAY AS date_submitted,
       p.tender_end + to_days((10 + h(n, 63) * 90)::INT) AS date_decision
FROM (SELECT process_key - 1 AS n, * FROM processes) p WHERE h(n, 64) < 0.03 AND p.tender_end IS NOT NULL;

UPDATE awards SET complaint_period_end = date + CASE WHEN hash(ocid || 'standstill') % 100 = 0
                                                    THEN INTERVAL 10 DAY ELSE INTERVAL 4 DAY END
WHERE bid_id IS NOT NULL;

INSERT INTO bid_documents BY NAME
SELECT a.ocid, a.process_key, a.raw_key, a.bid_id, 'documents' AS container, a.bid_id || '-d' || k AS document_id,
       'Документ ' || k AS title, a.date + to_days(k) AS date_published, a.date + to_days(k) AS date_modified
FROM awards a, range(3) r(k)
WHERE a.bid_id IS NOT NULL AND k < hash(a.ocid) % 4;

INSERT INTO contract_changes BY NAME
SELECT ocid, process_key, raw_key, contract_id, contract_id || '-ch' AS change_id, 'active' AS status, date_signed + INTERVAL 60 DAY AS date,
       ['itemPriceVariation'] AS rationale_types
FROM contracts WHERE hash(ocid) % 10 = 0;

-- the classifier's output for the social items (853*): sector, sub-category and, for half, a programme tag
INSERT INTO classifications BY NAME
WITH social AS (SELECT DISTINCT ocid, process_key, cpv FROM items WHERE cpv IN ('85312000-9', '85311000-2'))
SELECT ocid, process_key, category, 2 AS score, 'high' AS confidence, [{'signal': 'code', 'field': 'item', 'value': cpv}] AS evidence,
       now() AS classified_at
FROM (SELECT ocid, process_key, cpv, unnest(['social', CASE WHEN cpv = '85311000-2' THEN 'social.accommodation' ELSE 'social.services' END,
             CASE WHEN hash(ocid) % 2 = 0 THEN (['programme.elderly', 'programme.disability', 'programme.children',
                 'programme.hiv', 'programme.pwid-support', 'programme.ost', 'programme.domestic-violence',
                 'programme.homelessness', 'programme.tb', 'programme.harm-reduction'])[1 + (hash(ocid) % 10)::BIGINT] END]) AS category
      FROM social) WHERE category IS NOT NULL;

-- plans: one per fifth process, 70 % of them linked to their tender
INSERT INTO plans BY NAME
SELECT 'plan-' || p.tender_id AS plan_id, 'bench' AS source, 'bench:plan:' || p.tender_id AS raw_key,
       'UA-P-2025-B-' || p.tender_id AS plan_public_id, 'scheduled' AS status, p.title, p.buyer_id, p.buyer_name,
       p.buyer_kind, p.region, p.value_amount AS budget_amount, 'UAH' AS budget_currency, 2025 AS budget_year,
       coalesce(p.tender_start, p.date_published) - INTERVAL 30 DAY AS planned_start, CASE WHEN hash(p.ocid) % 10 < 7 THEN p.tender_id END AS tender_id,
       p.date_modified
FROM processes p WHERE hash(p.ocid) % 5 = 0;

INSERT INTO plan_classifications BY NAME
SELECT 'plan-' || p.tender_id AS plan_id, c.category, c.score, c.confidence, c.evidence, c.classified_at
FROM classifications c JOIN processes p USING (ocid) WHERE hash(p.ocid) % 5 = 0;
"""


# a night's changes: newer copies of 1 % of the processes (each contract's value 5 % higher), logged in the
# change log as the normalizer logs what it writes, so incremental rules evaluate those processes alone
NIGHT = """
UPDATE processes SET date_modified = date_modified + INTERVAL 1 DAY WHERE hash(ocid || 'night') % 100 = 0;
UPDATE contracts SET value_amount = round(value_amount * 1.05, 2) WHERE hash(ocid || 'night') % 100 = 0;
"""


CHILD_ENV = dict(os.environ)  # the monitor runs' environment: MONITOR_CONFIG is set by --memory-limit


def _monitor(db: Path, *command: str) -> tuple[float, float, int, str, list[dict], float]:
    """``monitor --db DB COMMAND`` in its own process: wall seconds, peak RSS (GiB), exit status, its
    stdout, the events of its JSON log and the CPU seconds it used (user and system, all threads)."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as log:
        child = subprocess.Popen([sys.executable, "-m", "monitor", "--log-format", "json", "--db", str(db), *command],
                                 stdout=subprocess.PIPE, stderr=log, text=True, env=CHILD_ENV)
        stdout = child.stdout.read().strip()
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.monotonic() - started
        log.seek(0)
        events = [json.loads(line) for line in log if line.startswith("{")]
    return seconds, usage.ru_maxrss / 2**20, status >> 8, stdout, events, usage.ru_utime + usage.ru_stime


def _timed_flag(db: Path) -> tuple[float, float, int, str, list[tuple[str, int, float]], dict, float]:
    """``monitor flag``: wall seconds, peak RSS (GiB), exit status, summary line, (name, rows, seconds) of
    each shared set, the ``flags evaluated`` event and the CPU seconds."""
    seconds, rss, status, summary, events, cpu = _monitor(db, "flag")
    shared = [(e["shared_set"] + (" of the changed processes" if e.get("changed_only") else ""), e["rows"], e["seconds"])
              for e in events if e.get("event") == "shared set computed"]
    evaluated = next((e for e in events if e.get("event") == "flags evaluated"), {})
    return seconds, rss, status, summary, shared, evaluated, cpu


def _timed_report(db: Path, out: Path) -> tuple[float, float, int, str, int, int]:
    """``monitor report`` for the week the flags were raised in: wall seconds, peak RSS (GiB), exit status,
    week, rows of flags.csv (from the report's log) and its bytes."""
    week = week_containing(datetime.now(timezone.utc)).label
    seconds, rss, status, _, events, _ = _monitor(db, "report", "--week", week, "--out", str(out))
    written = next((e for e in events if e.get("event") == "report written"), {})
    return seconds, rss, status, week, written.get("csv_rows", 0), (out / "flags.csv").stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=1_000_000)
    parser.add_argument("--social-share", type=float, metavar="SHARE",
                        help="share of processes with a social-service item (default: the standard mix, about 0.56); "
                             "the opportunity rules' work grows with it")
    parser.add_argument("--report", action="store_true",
                        help="then time monitor report for this week (every flag is new in it)")
    parser.add_argument("--memory-limit", metavar="LIMIT",
                        help="DuckDB memory limit of the monitor runs, as [store] memory_limit in a config file of "
                             "their own (e.g. 8GB; default: the monitor's default, 2GB, or what MONITOR_CONFIG says)")
    args = parser.parse_args()
    if args.social_share is not None and not 0 <= args.social_share <= 1:
        parser.error(f"--social-share is a share of the processes, from 0 to 1, not {args.social_share}")
    print(f"# {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.memory_limit:
            config = Path(tmp) / "monitor.toml"
            config.write_text(f"[store]\nmemory_limit = {json.dumps(args.memory_limit)}\n", encoding="utf-8")
            CHILD_ENV["MONITOR_CONFIG"] = str(config)
            print(f"# monitor runs with [store] memory_limit = {json.dumps(args.memory_limit)}")
        db = Path(tmp) / "bench.duckdb"
        con = connect(db)
        started = time.monotonic()
        con.execute(GENERATE.replace("$processes", str(args.processes)).replace("$item_cpv", item_cpv(args.social_share)))
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                  for t in ("processes", "items", "bids", "awards", "contracts", "contract_changes", "complaints",
                            "bid_documents", "classifications", "plans")}
        social = con.execute("SELECT count(DISTINCT process_key) FROM classifications").fetchall()[0][0]
        con.close()
        print(f"generated in {time.monotonic() - started:.1f} s: " + ", ".join(f"{k} {v:,}" for k, v in counts.items())
              + f"; processes with a social-service item {social / counts['processes']:.0%}")
        # for scale with Cardinal (its 11 indicators, ~32 s from JSON lines): the cardinal-* rules alone, first run
        cardinal_db = Path(tmp) / "cardinal.duckdb"
        shutil.copyfile(db, cardinal_db)
        cardinal_rules = sorted(path.stem for path in (HERE.parent / "rules" / "flags").glob("cardinal-*.yaml"))
        cardinal = _monitor(cardinal_db, "flag", *(arg for rule in cardinal_rules for arg in ("--rule", rule)))
        cardinal_db.unlink()
        first = _timed_flag(db)
        second = _timed_flag(db)  # nothing changed
        con = connect(db)
        con.execute(NIGHT)
        log_changed_processes(con, "SELECT ocid FROM processes WHERE hash(ocid || 'night') % 100 = 0")
        night_changed = con.execute("SELECT count(DISTINCT ocid) FROM process_changes").fetchall()[0][0]
        con.close()
        night = _timed_flag(db)  # the nightly steady state: a night's changes
        con = connect(db)
        per_rule = con.execute("SELECT rule_id, status, rows, seconds FROM rule_runs WHERE evaluated_at = "
                               "(SELECT min(evaluated_at) FROM rule_runs) ORDER BY seconds DESC").fetchall()
        rules_seconds = [total for (total,) in con.execute(
            "SELECT sum(seconds) FROM rule_runs GROUP BY evaluated_at ORDER BY evaluated_at").fetchall()]
        con.close()
        report = _timed_report(db, Path(tmp) / "report") if args.report else None
    labels = ("first run", "re-run, nothing changed", f"after a night's changes ({night_changed:,} processes)")
    for label, (seconds, rss, status, summary, shared, evaluated, cpu), in_rules in zip(labels, (first, second, night),
                                                                                        rules_seconds):
        print(f"monitor flag, {label}: {seconds:.1f} s wall (process start, shared sets and merge into flags "
              f"included; the rules' own seconds add up to {in_rules:.1f} s, two at a time), peak RSS {rss:.2f} GiB, "
              f"exit {status}; {summary}")
        print("  shared sets, once before the rules: " + ", ".join(
            f"{name} {rows:,} rows {set_seconds:.2f} s" for name, rows, set_seconds in shared))
        sandbox, merge = evaluated.get("sandbox_seconds", 0.0), evaluated.get("merge_seconds", 0.0)
        print(f"  sandbox (shared sets and rules) {sandbox:.1f} s, merge into flags {merge:.1f} s, the rest "
              f"(Python start, reading the rule files, opening the database) {seconds - sandbox - merge:.1f} s; "
              f"CPU {cpu:.1f} s in all (user and system, {cpu / seconds:.2f} cores busy on average)")
    seconds, rss, status, summary, _, _ = cardinal
    print(f"monitor flag of the {len(cardinal_rules)} cardinal-* rules alone (Cardinal's 11 indicators, every subject "
          f"it reports), first run: {seconds:.1f} s wall, peak RSS {rss:.2f} GiB, exit {status}; {summary}")
    for rule_id, rule_status, rows, rule_seconds in per_rule:
        print(f"  {rule_seconds:7.3f} s  {rows if rows is not None else '-':>9} rows  {rule_status:<7} {rule_id}")
    if report:
        seconds, rss, status, week, csv_rows, csv_bytes = report
        print(f"monitor report --week {week}: {seconds:.1f} s wall, peak RSS {rss:.2f} GiB, exit {status}; "
              f"flags.csv {csv_rows:,} rows, {csv_bytes / 2**20:,.0f} MiB")


if __name__ == "__main__":
    main()
