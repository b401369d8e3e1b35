"""Classify the processes that changed since the last run (or all of them) and store the result.

Processes and items move from DuckDB to Polars through Arrow; the result moves back the same way.
A process is re-classified when its normalized rows were replaced (new raw_key or date_modified) or
when the category files changed (their hash differs from the one stored with the last run).
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import polars as pl
import structlog

from monitor.classify.categories import load_categories, rules_hash
from monitor.classify.engine import classify
from monitor.store.changes import log_changed_processes
from monitor.store.db import transaction

log = structlog.get_logger(__name__)


@dataclasses.dataclass
class ClassifyResult:
    processes: int
    classifications: int
    full: bool
    seconds: float
    plans: int = 0
    plan_classifications: int = 0


def _todo_sql(todo: str, table: str, key: str, done: str) -> str:
    """The rows of ``table`` to (re)classify: new, replaced since, or classified with other rule files."""
    return f"""
CREATE OR REPLACE TEMP TABLE {todo} AS
SELECT p.{key}, p.raw_key, p.date_modified
FROM {table} p
LEFT JOIN {done} c ON c.{key} = p.{key}
WHERE $full OR c.{key} IS NULL OR c.raw_key <> p.raw_key
   OR c.date_modified IS DISTINCT FROM p.date_modified OR c.rules_hash <> $hash
"""


_TODO = _todo_sql("classify_todo", "processes", "ocid", "classified_processes")
_PLAN_TODO = _todo_sql("classify_plan_todo", "plans", "plan_id", "classified_plans")


def _classify_chunk(con: duckdb.DuckDBPyConnection, categories: list, start: int, size: int,
                    now: datetime) -> int:
    """Classify the processes at positions [start, start + size) of classify_todo; return rows written."""
    con.execute("CREATE OR REPLACE TEMP TABLE classify_chunk AS SELECT ocid FROM classify_todo "
                "ORDER BY ocid LIMIT ? OFFSET ?", [size, start])
    processes = con.sql(
        "SELECT p.ocid, p.title, p.description, p.buyer_kind FROM processes p JOIN classify_chunk USING (ocid)"
    ).pl()
    items = con.sql(
        """
        SELECT i.ocid, i.cpv, i.description, i.inn, i.atc FROM items i JOIN classify_chunk USING (ocid)
        UNION ALL
        SELECT c.ocid, c.cpv, c.description, NULL, NULL FROM contract_items c JOIN classify_chunk USING (ocid)
        """
    ).pl()
    result = classify(processes, items, categories)
    if result.height:
        con.register("classify_result", result.with_columns(classified_at=pl.lit(now)).to_arrow())
        con.execute("INSERT INTO classifications BY NAME SELECT r.*, k.process_key FROM classify_result r "
                    "JOIN process_keys k USING (ocid)")  # one key per ocid
        con.unregister("classify_result")
    return result.height


def _classify_plans(con: duckdb.DuckDBPyConnection, categories: list, full: bool, current_hash: str,
                    now: datetime) -> tuple[int, int]:
    """Classify changed plans like processes: budget description as title, plan and item codes and texts,
    and the budget programme codes of the budget breakdown (ТПКВКМБ, КПК-<year>), which only plans carry.

    Plans are few next to processes (one per planned purchase), so they are done in one frame.
    """
    con.execute(_PLAN_TODO, {"full": full, "hash": current_hash})
    todo = con.execute("SELECT count(*) FROM classify_plan_todo").fetchall()[0][0]
    plans = con.sql(
        "SELECT p.plan_id AS ocid, p.title, NULL::VARCHAR AS description, p.buyer_kind "
        "FROM plans p JOIN classify_plan_todo USING (plan_id)").pl()
    items = con.sql(
        """
        SELECT p.plan_id AS ocid, p.cpv, NULL::VARCHAR AS description, NULL::VARCHAR AS inn, NULL::VARCHAR AS atc
        FROM plans p JOIN classify_plan_todo USING (plan_id)
        UNION ALL
        SELECT plan_id, unnest(item_cpvs), unnest(item_descriptions), NULL, NULL
        FROM plans p JOIN classify_plan_todo USING (plan_id)
        """).pl()
    budget = con.sql(
        """
        SELECT ocid, b.scheme AS scheme, b.code AS code
        FROM (SELECT p.plan_id AS ocid, unnest(p.budget_breakdown) AS b
              FROM plans p JOIN classify_plan_todo USING (plan_id))
        WHERE b.code IS NOT NULL
        """).pl()
    result = classify(plans, items, categories, budget).rename(
        {"ocid": "plan_id"})
    con.execute("DELETE FROM plan_classifications WHERE plan_id IN (SELECT plan_id FROM classify_plan_todo) "
                "OR plan_id NOT IN (SELECT plan_id FROM plans)")
    if result.height:
        con.register("classify_plan_result", result.with_columns(classified_at=pl.lit(now)).to_arrow())
        con.execute("INSERT INTO plan_classifications BY NAME SELECT * FROM classify_plan_result")
        con.unregister("classify_plan_result")
    con.execute("DELETE FROM classified_plans WHERE plan_id IN (SELECT plan_id FROM classify_plan_todo) "
                "OR plan_id NOT IN (SELECT plan_id FROM plans)")
    con.execute("INSERT INTO classified_plans SELECT plan_id, raw_key, date_modified, ? FROM classify_plan_todo",
                [current_hash])
    return todo, result.height


def classify_changed(con: duckdb.DuckDBPyConnection, *, full: bool = False, rules_dir: Path | None = None,
                     chunk_size: int = 250_000) -> ClassifyResult:
    """Classify what changed (everything with ``full`` or after a category-file change)."""
    started = time.monotonic()
    categories = load_categories(rules_dir)
    current_hash = rules_hash(rules_dir)
    stored = con.execute("SELECT DISTINCT rules_hash FROM classified_processes "
                         "UNION SELECT DISTINCT rules_hash FROM classified_plans").fetchall()
    if stored and any(h != current_hash for (h,) in stored) and not full:
        log.info("category files changed since the last run; re-classifying everything")
        full = True
    con.execute(_TODO, {"full": full, "hash": current_hash})
    todo = con.execute("SELECT count(*) FROM classify_todo").fetchone()[0]
    now = datetime.now(timezone.utc)
    assigned = 0
    with transaction(con):
        con.execute("DELETE FROM classifications WHERE ocid IN (SELECT ocid FROM classify_todo) "
                    "OR ocid NOT IN (SELECT ocid FROM processes)")
        # chunks of processes keep memory bounded (frames of 1M processes and 3M items would not be)
        for start in range(0, todo, chunk_size):
            assigned += _classify_chunk(con, categories, start, chunk_size, now)
        con.execute("DELETE FROM classified_processes WHERE ocid IN (SELECT ocid FROM classify_todo) "
                    "OR ocid NOT IN (SELECT ocid FROM processes)")
        con.execute("INSERT INTO classified_processes SELECT ocid, raw_key, date_modified, ? FROM classify_todo",
                    [current_hash])
        log_changed_processes(con, "SELECT ocid FROM classify_todo")  # the flag rules that read categories
        plans, plan_assigned = _classify_plans(con, categories, full, current_hash, now)
    outcome = ClassifyResult(todo, assigned, full, round(time.monotonic() - started, 2), plans, plan_assigned)
    log.info("classified", processes=outcome.processes, classifications=outcome.classifications, full=full,
             plans=plans, plan_classifications=plan_assigned, seconds=outcome.seconds)
    return outcome
