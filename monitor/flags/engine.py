"""Evaluate rules in a sandbox and keep the flags table's history.

Rules run in a sandbox: a separate in-memory DuckDB that attaches the database file read-only and then
disables external access and locks its configuration, so a rule can read the monitor's tables and
nothing else, and cannot write them. The shared sets the rules read are computed once into its
in-memory catalog, before the rules (``monitor.flags.shared``). A rule that fails (bad SQL, a file
read refused by the sandbox, a missing column) is recorded in ``rule_runs`` with its error; the
other rules still run, and the failed rule's open flags are left as they were.

History: a flag is keyed by (rule, subject type, subject id, ocid). A new one is inserted with
first_seen = last_seen = now; one still firing is updated only when its value or evidence changed
(compared by a hash of the evidence, so the open flags' evidence is never copied); one that stopped
firing gets resolved_at = now. Re-running on unchanged data changes nothing.

Incremental rules (``monitor.flags.incremental``) are evaluated, after their first run, on the processes
logged as changed since their watermark, and only those processes' flags are merged; the watermarks
move in the transaction that writes the flags. Any rule whose flags depend on process rows alone (no
clock, no plans or organizations: ``Rule.data_bound``) keeps a watermark too, and is not evaluated again
while the change log has nothing past it: its flags stand as they are.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import structlog

from monitor.config import parse_datetime
from monitor.flags.incremental import (CHANGED_SCHEMA, FULL_SHARE, changed_only, copy_changed_rows,
                                       definition_hash)
from monitor.flags.rules import BUILTIN_AS_OF, Rule
from monitor.flags.shared import SharedSet
from monitor.store import connect
from monitor.store.changes import latest_batch, prune_seen
from monitor.store.db import current_schema_version, sql_ident, sql_literal, transaction

log = structlog.get_logger(__name__)

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_SANDBOX_DB = "monitored"  # the database file, as the sandbox attaches it
RESULT_SCHEMA = pa.schema([
    ("rule_id", pa.string()), ("kind", pa.string()), ("severity", pa.string()), ("subject_type", pa.string()),
    ("subject_id", pa.string()), ("ocid", pa.string()), ("value", pa.float64()), ("evidence", pa.string()),
])


@dataclasses.dataclass
class RuleOutcome:
    rule_id: str
    rows: int = 0
    seconds: float = 0.0
    error: str | None = None
    changed_only: bool = False   # evaluated on the changed processes alone (an incremental rule)
    unchanged: bool = False      # not evaluated: nothing it reads changed since its last evaluation


@dataclasses.dataclass(frozen=True)
class ChangeScope:
    """The change-log batches ``since`` < n <= ``upto`` and the incremental rules evaluated on their processes;
    the rules not evaluated at all (``unchanged``: no batch since their last evaluation)."""
    since: int
    upto: int
    rule_ids: frozenset[str]
    unchanged: frozenset[str] = frozenset()


@dataclasses.dataclass
class Evaluation:
    outcomes: list[RuleOutcome]
    new: int = 0
    changed: int = 0
    resolved: int = 0
    open: int = 0
    changed_processes: int | None = None   # processes the incremental rules were evaluated on (None: all)

    @property
    def failed(self) -> list[RuleOutcome]:
        return [o for o in self.outcomes if o.error]

    @property
    def unchanged(self) -> list[RuleOutcome]:
        return [o for o in self.outcomes if o.unchanged]


def _rounded(expression: str, kind: Any, depth: int = 0) -> str:
    """``expression`` with every DOUBLE/FLOAT inside it (in structs and lists too) rounded to 6 decimals.

    A parallel sum adds in a varying order; its last bits must not make an unchanged flag look changed.
    """
    name = str(getattr(kind, "id", ""))
    if name in ("double", "float"):
        return f"round({expression}, 6)"
    children = _children(kind)
    if name == "struct" and any(_has_float(child) for _, child in children):
        return "struct_pack(" + ", ".join(
            f"{sql_ident(field)} := {_rounded(f'struct_extract({expression}, {sql_literal(field)})', child, depth)}"
            for field, child in children) + ")"
    if name == "list" and children and _has_float(children[0][1]):
        item = f"x{depth}"
        return f"list_transform({expression}, lambda {item}: {_rounded(item, children[0][1], depth + 1)})"
    return expression


def _children(kind: Any) -> list:
    """(name, type) of a struct's fields or a list's element; nothing for other types."""
    return list(kind.children) if str(getattr(kind, "id", "")) in ("struct", "list") else []


def _has_float(kind: Any) -> bool:
    return str(getattr(kind, "id", "")) in ("double", "float") or any(_has_float(c) for _, c in _children(kind))


def _wrapped(rule: Rule, columns: list[str], types: dict[str, Any] | None = None) -> str:
    """The rule's query turned into rows of RESULT_SCHEMA (the extra columns become JSON evidence).

    Floating-point values, also inside structs and lists, are rounded to 6 decimals (``_rounded``).
    """
    types = types or {}

    def column(name: str) -> str:
        return _rounded(f"r.{sql_ident(name)}", types[name]) if name in types else f"r.{sql_ident(name)}"

    evidence = [c for c in columns if c not in ("subject_id", "ocid", "value")]
    evidence_sql = ("to_json(struct_pack(" + ", ".join(f"{sql_ident(c)} := {column(c)}" for c in evidence) + "))"
                    if evidence else "NULL")
    ocid_sql = "r.ocid::VARCHAR" if "ocid" in columns else "NULL::VARCHAR"
    value_sql = "round(TRY_CAST(r.value AS DOUBLE), 6)" if "value" in columns else "1.0"
    scope = ""
    if rule.categories:
        scope = ("WHERE r.ocid IN (SELECT ocid FROM classifications WHERE category IN ("
                 + ", ".join(sql_literal(c) for c in rule.categories) + "))")
    return (
        f"SELECT {sql_literal(rule.id)} AS rule_id, {sql_literal(rule.kind)} AS kind, "
        f"{sql_literal(rule.severity)} AS severity, {sql_literal(rule.subject)} AS subject_type, "
        f"r.subject_id::VARCHAR AS subject_id, {ocid_sql} AS ocid, "
        f"{value_sql} AS value, {evidence_sql}::VARCHAR AS evidence "
        f"FROM ({rule.query}) r {scope}"
    )


def _run_rule(con: duckdb.DuckDBPyConnection, rule: Rule, params: dict[str, Any],
              changed: bool = False) -> pa.Table:
    used = {name: params[name] for name in set(_PARAM.findall(rule.query))}
    probe = con.sql(f"SELECT * FROM ({rule.query}) LIMIT 0", params=used)
    columns = probe.columns
    types = dict(zip(columns, probe.types))
    if "subject_id" not in columns:
        raise ValueError(f"the query returns no subject_id column (it returns {', '.join(columns)})")
    if rule.subject == "process" and "ocid" not in columns:
        raise ValueError("a rule about processes must return an ocid column")
    wrapped = _wrapped(rule, columns, types)
    relation = con.sql(changed_only(wrapped) if changed else wrapped, params=used)
    # DuckDB 2 names it to_arrow_table; 1.x had arrow() return a Table
    table = relation.to_arrow_table() if hasattr(relation, "to_arrow_table") else relation.arrow()
    return table.cast(RESULT_SCHEMA)


def _open_sandbox(db_path: Path, memory_limit: str | None = None, spill_dir: Path | None = None,
                  threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """The sandbox: an in-memory DuckDB with the database file attached read-only as ``monitored``, then
    external access switched off and the configuration locked. A rule reads the monitor's tables and
    nothing else on the machine, and cannot write them. The in-memory catalog holds the shared sets:
    tables every cursor of the sandbox sees, kept within the memory limit (``[store] memory_limit``)
    like any table, and run on the store's threads (``[store] threads``). Beyond the limit DuckDB spills
    sorts, joins and windows to ``spill_dir`` (an in-memory DuckDB would otherwise spill into ``.tmp`` in
    the current directory)."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH {sql_literal(str(db_path))} AS {_SANDBOX_DB} (READ_ONLY)")
        con.execute("SET GLOBAL TimeZone = 'UTC'")
        if memory_limit:
            con.execute(f"SET memory_limit = {sql_literal(memory_limit)}")
        if spill_dir:
            con.execute(f"SET temp_directory = {sql_literal(str(spill_dir))}")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        _point_at_the_database(con)
    except BaseException:
        con.close()
        raise
    return con


def _spill_dir(db_path: Path) -> tempfile.TemporaryDirectory:
    """A fresh folder for the sandbox's spill files beside the database (where DuckDB keeps the store's
    own), or in the system's temporary folder when that folder is read-only. Fresh, because two DuckDB
    instances must not share one (the store's connection may be open beside the sandbox)."""
    try:
        return tempfile.TemporaryDirectory(prefix=f"{db_path.name}.flags-", dir=db_path.resolve().parent)
    except OSError:
        return tempfile.TemporaryDirectory(prefix=f"{db_path.name}.flags-")


def _rule_error(exc: Exception, memory_limit: str | None) -> str:
    """The message of a rule or shared set that failed, on one line; out of memory says what the operator can
    change (DuckDB's own advice, SET memory_limit, is refused in the locked sandbox)."""
    message = " ".join(str(exc).split())
    if isinstance(exc, duckdb.OutOfMemoryException):
        first = message.split(" Possible solutions:")[0]
        return (f"{first[:300]} - it needs more memory than DuckDB's limit ({memory_limit or 'its default'}): "
                f"raise [store] memory_limit in monitor.toml, or run the rule alone (monitor flag --rule ID)")
    return message[:500]


def _point_at_the_database(con: duckdb.DuckDBPyConnection, changed: bool = False) -> None:
    """Names resolve to the database's tables first, then to the shared sets; with ``changed``, to the
    changed processes' rows and the shared sets computed from them before those."""
    con.execute(f"USE {_SANDBOX_DB}")
    first = f"memory.{CHANGED_SCHEMA}," if changed else ""
    con.execute(f"SET search_path = '{first}{_SANDBOX_DB}.main,memory.main'")


def _compute_shared(con: duckdb.DuckDBPyConnection, rules: list[Rule],
                    memory_limit: str | None = None, schema: str = "main") -> dict[str, str]:
    """Every shared set the rules read, computed once into a table of the sandbox's in-memory catalog
    (schema ``schema``: the changed processes' own sets go beside their rows); returns the errors by set name.

    A set that fails, or that reads a failed set, or whose name is a table of the database (it would
    hide the table from the rules), has an error instead; the rules reading it fail with that error.
    """
    needed: dict[str, SharedSet] = {}
    for rule in rules:
        for each in rule.shared:  # each rule lists a set after the sets it reads, so this order holds too
            needed.setdefault(each.name, each)
    existing = {name for (name,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = $db UNION "
        "SELECT view_name FROM duckdb_views() WHERE database_name = $db AND NOT internal", {"db": _SANDBOX_DB}
    ).fetchall()}
    errors: dict[str, str] = {}
    for name, each in needed.items():
        started = time.monotonic()
        failed_reads = [read for read in each.reads if read in errors]
        if failed_reads:
            errors[name] = f"it reads the shared set {failed_reads[0]}, which failed"
        elif name in existing:
            errors[name] = (f"its name is a table of the database, which it would hide from the rules; "
                            f"rename {each.path}")
        else:
            try:
                rows = con.execute(f"CREATE TABLE memory.{schema}.{sql_ident(name)} AS {each.query}").fetchone()[0]
            except duckdb.Error as exc:
                errors[name] = _rule_error(exc, memory_limit)
        if name in errors:
            log.error("shared set failed", shared_set=name, file=str(each.path), error=errors[name])
        else:
            log.info("shared set computed", shared_set=name, rows=rows, seconds=round(time.monotonic() - started, 3),
                     changed_only=schema == CHANGED_SCHEMA)
    return errors


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return parse_datetime(str(value))


def run_sandboxed(db_path: Path, rules: list[Rule], overrides: dict[str, dict[str, Any]] | None = None,
                  as_of: datetime | None = None,
                  on_rule: Callable[[RuleOutcome], None] | None = None,
                  workers: int = 2, memory_limit: str | None = None,
                  threads: int | None = None,
                  changes: ChangeScope | None = None) -> tuple[pa.Table, list[RuleOutcome]]:
    """Evaluate ``rules`` on a read-only, no-external-access connection; return their rows and outcomes.

    Every rule may read ``$as_of`` (the evaluation clock, default now) without declaring it; an
    example or override may set it. ``workers`` rules run at a time, each on its own cursor of the
    one sandboxed database: much of a rule's plan (window functions, small joins, the JSON of its
    evidence) runs on one thread, so two rules at once keep two cores busy. Rows and outcomes come
    back in the rules' order whatever the order they finished in.

    The rules in ``changes.rule_ids`` read only the rows of the processes changed in its batches (and shared
    sets computed from those) and return flags of those processes alone (``monitor.flags.incremental``).
    """
    as_of = as_of or datetime.now(timezone.utc)
    spill = _spill_dir(db_path)
    try:
        con = _open_sandbox(db_path, memory_limit, Path(spill.name), threads)
    except BaseException:
        spill.cleanup()
        raise
    tables: list[pa.Table | None] = [None] * len(rules)
    outcomes: list[RuleOutcome | None] = [None] * len(rules)
    local = threading.local()
    cursors: list[duckdb.DuckDBPyConnection] = []
    lock = threading.Lock()

    def cursor(changed: bool) -> duckdb.DuckDBPyConnection:
        if not hasattr(local, "cursor"):
            local.cursor = con.cursor()
            with lock:
                cursors.append(local.cursor)
        _point_at_the_database(local.cursor, changed)
        return local.cursor

    def run(index: int) -> int:
        rule = rules[index]
        params = {BUILTIN_AS_OF: as_of, **rule.params, **(overrides or {}).get(rule.id, {})}
        params[BUILTIN_AS_OF] = _as_datetime(params[BUILTIN_AS_OF])
        started = time.monotonic()
        changed = rule.id in incremental
        outcome = RuleOutcome(rule.id, changed_only=changed)
        errors = changed_errors if changed else shared_errors
        try:
            broken = [each for each in rule.shared if each.name in errors]
            if broken:
                raise ValueError(f"the shared set {broken[0].name} ({broken[0].path}) failed: "
                                 f"{errors[broken[0].name]}")
            table = _run_rule(cursor(changed), rule, params, changed)
            tables[index] = table
            outcome.rows = table.num_rows
        except (duckdb.Error, ValueError) as exc:
            outcome.error = _rule_error(exc, memory_limit)
            log.error("rule failed", rule=rule.id, file=str(rule.path), error=outcome.error)
        outcome.seconds = round(time.monotonic() - started, 3)
        log.debug("rule evaluated", rule=rule.id, rows=outcome.rows, seconds=outcome.seconds)
        outcomes[index] = outcome
        return index

    incremental = changes.rule_ids if changes else frozenset()
    try:
        shared_errors = _compute_shared(con, [r for r in rules if r.id not in incremental], memory_limit)
        changed_errors: dict[str, str] = {}
        if incremental:
            copy_changed_rows(con, _SANDBOX_DB, changes.since, changes.upto)
            _point_at_the_database(con, changed=True)
            changed_errors = _compute_shared(con, [r for r in rules if r.id in incremental], memory_limit,
                                             CHANGED_SCHEMA)
            _point_at_the_database(con)
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="rule") as pool:
            for done in as_completed([pool.submit(run, i) for i in range(len(rules))]):
                if on_rule:
                    on_rule(outcomes[done.result()])
    finally:
        for each in cursors:
            each.close()
        con.close()
        spill.cleanup()
    kept = [t for t in tables if t is not None]
    rows = pa.concat_tables(kept) if kept else RESULT_SCHEMA.empty_table()
    return rows, [o for o in outcomes if o is not None]


_MERGE = """
-- keys a rule returned more than once (records sharing a tenderID): rare, so they are found on the
-- narrow key columns and only their rows go through the merge below
CREATE OR REPLACE TEMP TABLE flag_dup_keys AS
SELECT rule_id, subject_type, subject_id, ocid FROM flag_rows
GROUP BY rule_id, subject_type, subject_id, ocid HAVING count(*) > 1;

CREATE OR REPLACE TEMP TABLE flag_now AS
WITH dups AS (
    SELECT r.* FROM flag_rows r
    SEMI JOIN flag_dup_keys d ON d.rule_id = r.rule_id AND d.subject_type = r.subject_type
                             AND d.subject_id = r.subject_id AND d.ocid IS NOT DISTINCT FROM r.ocid
),
merged AS (  -- of one key's rows: the largest value, and of those the largest evidence, so that the
             -- pick is the same every run
    SELECT rule_id, any_value(kind) AS kind, any_value(severity) AS severity, subject_type, subject_id, ocid,
           max(value) AS value,
           max(evidence) FILTER (WHERE value IS NOT DISTINCT FROM top_value) AS evidence
    FROM (SELECT *, max(value) OVER (PARTITION BY rule_id, subject_type, subject_id, ocid) AS top_value FROM dups)
    GROUP BY rule_id, subject_type, subject_id, ocid
)
SELECT r.*, hash(r.evidence) AS evidence_hash FROM flag_rows r
ANTI JOIN flag_dup_keys d ON d.rule_id = r.rule_id AND d.subject_type = r.subject_type
                         AND d.subject_id = r.subject_id AND d.ocid IS NOT DISTINCT FROM r.ocid
UNION ALL
SELECT rule_id, kind, severity, subject_type, subject_id, ocid, value, evidence, hash(evidence) FROM merged;

-- the open flags of the evaluated rules: keys, value and a hash of the evidence (not the evidence itself);
-- of a rule evaluated on the changed processes alone, only their flags
CREATE OR REPLACE TEMP TABLE flag_open AS
SELECT rowid AS row_id, rule_id, subject_type, subject_id, ocid, value, hash(evidence::VARCHAR) AS evidence_hash
FROM flags
WHERE resolved_at IS NULL
  AND (rule_id IN (SELECT rule_id FROM evaluated_rules WHERE NOT changed_only)
       OR (rule_id IN (SELECT rule_id FROM evaluated_rules WHERE changed_only)
           AND ocid IN (SELECT ocid FROM flag_changed_ocids)));
"""


def write_flags(con: duckdb.DuckDBPyConnection, rows: pa.Table, evaluated: list[RuleOutcome],
                now: datetime, changes: ChangeScope | None = None,
                watermarks: dict[str, str] | None = None,
                known_rules: Collection[str] | None = None) -> tuple[int, int, int]:
    """Merge the rows of the rules ``evaluated`` into ``flags``; return (new, changed, resolved).

    A rule evaluated on the changed processes alone (``changed_only``) replaces only those processes'
    flags. In the same transaction the rules in ``watermarks`` (id: definition hash) are marked as having
    seen the change log up to ``changes.upto``; with ``known_rules`` (every rule there is) the watermarks
    of other rules (a rule file deleted) are dropped; and the batches every remaining watermark saw are pruned.
    """
    con.register("flag_rows", rows)
    con.register("evaluated_rules", pa.table({
        "rule_id": pa.array([o.rule_id for o in evaluated], pa.string()),
        "changed_only": pa.array([o.changed_only for o in evaluated], pa.bool_())}))
    try:
        with transaction(con):
            since, upto = (changes.since, changes.upto) if changes else (0, 0)
            con.execute("CREATE OR REPLACE TEMP TABLE flag_changed_ocids AS SELECT DISTINCT ocid FROM process_changes "
                        "WHERE change_seq > $since AND change_seq <= $upto", {"since": since, "upto": upto})
            con.execute(_MERGE)
            key = ("o.rule_id = n.rule_id AND o.subject_type = n.subject_type AND o.subject_id = n.subject_id "
                   "AND o.ocid IS NOT DISTINCT FROM n.ocid")
            resolved = con.execute(
                f"UPDATE flags SET resolved_at = $now WHERE rowid IN (SELECT o.row_id FROM flag_open o "
                f"WHERE NOT EXISTS (SELECT 1 FROM flag_now n WHERE {key}))", {"now": now}).fetchone()[0]
            changed = con.execute(
                f"""UPDATE flags SET value = n.value, evidence = n.evidence, last_seen = $now
                    FROM flag_open o JOIN flag_now n ON {key}
                    WHERE flags.rowid = o.row_id
                      AND (o.value IS DISTINCT FROM n.value OR o.evidence_hash IS DISTINCT FROM n.evidence_hash)""",
                {"now": now}).fetchone()[0]
            new = con.execute(
                f"""INSERT INTO flags SELECT n.rule_id, n.kind, n.severity, n.subject_type, n.subject_id, n.ocid, n.value,
                           n.evidence, $now, $now, NULL
                    FROM flag_now n WHERE NOT EXISTS (SELECT 1 FROM flag_open o WHERE {key})""",
                {"now": now}).fetchone()[0]
            if watermarks:
                con.executemany(
                    "INSERT INTO flag_watermarks VALUES (?, ?, ?, ?) ON CONFLICT (rule_id) DO UPDATE SET "
                    "definition_hash = excluded.definition_hash, change_seq = excluded.change_seq, "
                    "evaluated_at = excluded.evaluated_at",
                    [(rule_id, digest, changes.upto if changes else 0, now) for rule_id, digest in watermarks.items()])
            if known_rules is not None:
                con.execute("DELETE FROM flag_watermarks WHERE NOT list_contains($ids, rule_id)",
                            {"ids": sorted(known_rules)})
            if watermarks or known_rules is not None:
                prune_seen(con)
    finally:
        con.unregister("flag_rows")
        con.unregister("evaluated_rules")
    return new, changed, resolved


def _plan_changes(con: duckdb.DuckDBPyConnection, rules: list[Rule], hashes: dict[str, str],
                  full: bool) -> tuple[ChangeScope, int | None]:
    """Which rules need not run, which incremental rules can be evaluated on the changed processes alone,
    and on how many processes.

    ``hashes`` holds the definition hashes of the rules whose flags depend on process rows alone. Such a
    rule with a watermark of its current hash need not run when no batch was logged since: its flags
    stand. An incremental one with changes since runs on them, from the oldest of those watermarks
    (evaluating a process again is harmless). Neither with ``full``; and no rule runs on the changes alone
    when more than FULL_SHARE of the processes changed (copying them would cost more than running on everything).
    """
    upto = latest_batch(con)
    marks = {rule_id: (digest, seq) for rule_id, digest, seq in
             con.execute("SELECT rule_id, definition_hash, change_seq FROM flag_watermarks").fetchall()}
    seen = {} if full else {rule_id: marks[rule_id][1] for rule_id, digest in hashes.items()
                            if marks.get(rule_id, (None,))[0] == digest}
    unchanged = frozenset(rule_id for rule_id, seq in seen.items() if seq >= upto)
    ready = frozenset(r.id for r in rules if r.incremental and r.id in seen and r.id not in unchanged)
    if not ready:
        return ChangeScope(upto, upto, frozenset(), unchanged), None
    since = min(seen[rule_id] for rule_id in ready)
    changed, processes = con.execute(
        "SELECT (SELECT count(DISTINCT ocid) FROM process_changes WHERE change_seq > $since AND change_seq <= $upto), "
        "(SELECT count(*) FROM processes)", {"since": since, "upto": upto}).fetchall()[0]
    if changed > FULL_SHARE * max(processes, 1):
        log.info("many processes changed: every rule evaluated on the whole database", changed_processes=changed,
                 processes=processes)
        return ChangeScope(upto, upto, frozenset(), unchanged), None
    return ChangeScope(since, upto, ready, unchanged), changed


def evaluate(db_path: Path, rules: list[Rule], *, overrides: dict[str, dict[str, Any]] | None = None,
             now: datetime | None = None, memory_limit: str | None = None, threads: int | None = None,
             as_of: datetime | None = None, on_rule: Callable[[RuleOutcome], None] | None = None,
             full: bool = False, all_rules: bool = False) -> Evaluation:
    """Evaluate ``rules`` against the database at ``db_path`` and update ``flags``; the path must not be open.

    ``as_of`` is the clock the rules read (``$as_of``); ``now`` stamps the flags' history. A pinned
    ``as_of`` (replaying old data week by week, the demo's snapshot) stamps the history too, so the
    weekly report sees the flags in the week they would have been raised. Unless ``full``: a rule whose
    flags depend on process rows alone is not evaluated again while no process changed (``unchanged``),
    and incremental rules are evaluated on the processes changed since their last evaluation
    (``monitor.flags.incremental``). ``all_rules`` says ``rules`` are every rule there is: the watermarks
    of any other (a deleted rule file) are dropped.
    """
    now = now or as_of or datetime.now(timezone.utc)
    con = connect(db_path, memory_limit=memory_limit, threads=threads)  # migrate first: the sandbox cannot
    try:
        version = current_schema_version(con)
        hashes = {r.id: definition_hash(r, {**r.params, **(overrides or {}).get(r.id, {})}, version)
                  for r in rules if r.data_bound}
        changes, changed_processes = _plan_changes(con, rules, hashes, full)
    finally:
        con.close()
    skipped = [RuleOutcome(r.id, unchanged=True) for r in rules if r.id in changes.unchanged]
    for outcome in skipped:
        if on_rule:
            on_rule(outcome)
    started = time.monotonic()
    rows, ran = RESULT_SCHEMA.empty_table(), []
    if len(skipped) < len(rules):
        rows, ran = run_sandboxed(db_path, [r for r in rules if r.id not in changes.unchanged], overrides, as_of,
                                  on_rule, memory_limit=memory_limit, threads=threads, changes=changes)
    sandbox_seconds = time.monotonic() - started
    by_id = {o.rule_id: o for o in ran + skipped}
    outcomes = [by_id[r.id] for r in rules]
    evaluated = [o for o in ran if not o.error]
    watermarks = {o.rule_id: hashes[o.rule_id] for o in evaluated if o.rule_id in hashes}
    con = connect(db_path, memory_limit=memory_limit, threads=threads)
    try:
        started = time.monotonic()
        new, changed, resolved = write_flags(con, rows, evaluated, now, changes, watermarks,
                                             [r.id for r in rules] if all_rules else None)
        merge_seconds = time.monotonic() - started
        con.executemany("INSERT INTO rule_runs VALUES (?, ?, ?, ?, ?, ?)",
                        [(o.rule_id, now, "failed" if o.error else "unchanged" if o.unchanged else "ok",
                          None if o.unchanged else o.rows, o.seconds, o.error) for o in outcomes])
        open_flags = con.execute("SELECT count(*) FROM flags WHERE resolved_at IS NULL").fetchone()[0]
    finally:
        con.close()
    result = Evaluation(outcomes, new, changed, resolved, open_flags, changed_processes)
    log.info("flags evaluated", rules=len(rules), failed=len(result.failed), new=new, changed=changed,
             resolved=resolved, open=open_flags, sandbox_seconds=round(sandbox_seconds, 2),
             merge_seconds=round(merge_seconds, 2), changed_only=len(changes.rule_ids),
             changed_processes=changed_processes, unchanged=len(skipped))
    return result
