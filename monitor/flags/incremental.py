"""Incremental rules: evaluated again only on the processes that changed since their last evaluation.

A rule file with ``incremental: true`` declares that its flags on a process depend on that process's
own rows and nothing else: no statistics or comparisons across processes, no clock (``$as_of``,
``now()``), no table that is not a process's rows (plans, organizations). After its first evaluation
(and after any change of its definition: query, params, scope, the shared sets it reads) the engine
evaluates it on the processes in the change log (``process_changes``, written by the normalizer and
the classifier) since its watermark (``flag_watermarks``), and replaces only those processes' flags.

How: the sandbox holds a copy of the changed processes' rows of every process table (``PROCESS_TABLES``)
in the schema ``pm_changed``, each row with its ``rowid`` in the database as a column of that name, so a
rule that joins or orders by rowid sees the same numbers. An incremental rule's cursor resolves names
in that schema first; the shared sets it reads are computed again there, from those rows. What was
true of the whole database is then true of each changed process, and of it alone.

When more than ``FULL_SHARE`` of the processes changed (a first load, a re-classification), copying
them costs more than it saves, and every rule runs on the whole database.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path
from typing import Any

import duckdb
import orjson

from monitor.flags.shared import NOT_CODE, SharedSet, mentions
from monitor.store.db import model_tables, sql_ident

# The tables of a process's rows: every row names the process (process_key, or ocid alone for the raw
# records). tests/test_flags_incremental.py checks this list against the schema.
PROCESS_TABLES = ("processes", "lots", "items", "bids", "awards", "complaints", "bid_documents", "contracts",
                  "contract_items", "contract_changes", "classifications", "process_keys", "raw_records")
CHANGED_SCHEMA = "pm_changed"       # the changed processes' rows and the incremental rules' shared sets
SCOPE_SCHEMA = "pm_change_scope"    # the changed ocids and keys (not on any rule's search path)
FULL_SHARE = 0.2                    # beyond this share of the processes changed, rules run on everything
_CLOCK = re.compile(r"\$as_of\b|\b(now|current_date|current_timestamp|current_time|today|get_current_timestamp|"
                    r"get_current_time|transaction_timestamp|localtimestamp|localtime)\b", re.IGNORECASE)


def incremental_problems(subject: str, data: list[str]) -> list[str]:
    """Why a rule with this subject and these ``data_problems`` cannot be incremental (empty when it can)."""
    problems = []
    if subject != "process":
        problems.append(f"only a rule about processes can be evaluated process by process, not one about "
                        f"{subject}s; remove incremental")
    return problems + data


def data_problems(query: str, shared: tuple[SharedSet, ...]) -> list[str]:
    """Why flags of this query and shared sets may change while no process's rows do (empty: they cannot, so
    the rule need not run again while the change log has nothing new, whatever its subject)."""
    problems = []
    for where, text in [("the query", query)] + [(f"the shared set {s.name}", s.query) for s in shared]:
        clock = _CLOCK.search(NOT_CODE.sub(" ", text))
        if clock:
            problems.append(f"{where} reads the clock ({clock.group(0)}): its flags change with time, not only "
                            "with the data; remove incremental")
        other = [t for t in mentions(text, model_tables()) if t not in PROCESS_TABLES]
        if other:
            problems.append(f"{where} reads {', '.join(other)}, not the rows of one process: a flag could change "
                            "when something else changes; remove incremental")
    return problems


@functools.cache
def engine_fingerprint() -> str:
    """The DuckDB version and a digest of the code that turns a rule's rows into flags (this package's
    engine, incremental and shared-set modules): after an upgrade, stored flags may not be what it gives."""
    code = b"".join((Path(__file__).parent / name).read_bytes() for name in ("engine.py", "incremental.py", "shared.py"))
    return f"duckdb {duckdb.__version__}, code {hashlib.sha256(code).hexdigest()[:16]}"


def definition_hash(rule: Any, params: dict[str, Any], schema_version: int) -> str:
    """A hash of everything a rule's flags depend on besides the data: a change means evaluating it on all.

    The schema version is part of it (a migration may rewrite process rows without logging them), and so
    is ``engine_fingerprint()``."""
    definition = {"id": rule.id, "kind": rule.kind, "severity": rule.severity, "subject": rule.subject,
                  "categories": list(rule.categories), "query": rule.query, "params": params,
                  "shared": [each.query for each in rule.shared], "schema_version": schema_version,
                  "engine": engine_fingerprint()}
    return hashlib.sha256(orjson.dumps(definition, default=str, option=orjson.OPT_SORT_KEYS)).hexdigest()


def copy_changed_rows(con: duckdb.DuckDBPyConnection, database: str, since: int, upto: int) -> None:
    """In the sandbox ``con``: the changed ocids and keys (batches ``since`` < n <= ``upto``) and a copy of
    their rows of every process table, in ``pm_changed``."""
    con.execute(f"CREATE SCHEMA memory.{SCOPE_SCHEMA}")
    con.execute(f"CREATE SCHEMA memory.{CHANGED_SCHEMA}")
    con.execute(
        f"CREATE TABLE memory.{SCOPE_SCHEMA}.ocids AS SELECT DISTINCT ocid FROM {database}.main.process_changes "
        f"WHERE change_seq > {int(since)} AND change_seq <= {int(upto)}")
    con.execute(
        f"CREATE TABLE memory.{SCOPE_SCHEMA}.keys AS SELECT process_key FROM {database}.main.process_keys "
        f"WHERE ocid IN (SELECT ocid FROM memory.{SCOPE_SCHEMA}.ocids)")
    keyed = {table for (table,) in con.execute(
        "SELECT table_name FROM duckdb_columns() WHERE database_name = $db AND column_name = 'process_key'",
        {"db": database}).fetchall()}
    for table in PROCESS_TABLES:
        where = (f"process_key IN (SELECT process_key FROM memory.{SCOPE_SCHEMA}.keys)" if table in keyed
                 else f"ocid IN (SELECT ocid FROM memory.{SCOPE_SCHEMA}.ocids)")
        con.execute(f"CREATE TABLE memory.{CHANGED_SCHEMA}.{sql_ident(table)} AS "
                    f"SELECT *, rowid AS rowid FROM {database}.main.{sql_ident(table)} WHERE {where} ORDER BY rowid")


def changed_only(wrapped_sql: str) -> str:
    """The rows of a wrapped rule (RESULT_SCHEMA) on the changed processes only."""
    return f"SELECT * FROM ({wrapped_sql}) WHERE ocid IN (SELECT ocid FROM memory.{SCOPE_SCHEMA}.ocids)"
