"""Open the DuckDB file, apply schema migrations, refuse a file made by a newer version.

Migrations are the numbered SQL files in ``migrations/``; the version of a database is the number
of the last one applied, kept in ``schema_migrations``. Each migration runs in its own transaction,
so a failed upgrade leaves the file at the previous version. A migration that DuckDB cannot run in
one transaction (a NOT NULL constraint on a column filled by an UPDATE) is cut into steps by lines
``-- next step``: each step is a transaction of its own, and each must be safe to run again (``IF
NOT EXISTS``, ``WHERE ... IS NULL``), because a failure between steps leaves the file at the previous
version with the first steps done.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import duckdb
import structlog

from monitor.lock import read_holder
from monitor.reference import install_region_aliases

log = structlog.get_logger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_STEP = re.compile(r"^-- next step$", re.MULTILINE)
_CREATE_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z_][A-Za-z0-9_]*)",
                           re.IGNORECASE | re.MULTILINE)


class StoreError(Exception):
    """The database cannot be opened or used as asked."""


class SchemaTooNewError(StoreError):
    """The database was written by a newer Procurement Monitor."""


class DatabaseBusy(StoreError):
    """Another process has the database open in a way that excludes this one: DuckDB lets one process
    write, or any number read. The command exits with code 3, as when the run lock is taken."""


def _open_error(path: Path, exc: duckdb.Error, read_only: bool) -> StoreError:
    """The error for a database that DuckDB would not open; a file lock held elsewhere names the holder."""
    if "Conflicting lock" not in str(exc):
        return StoreError(f"cannot open database {path}{' read-only' if read_only else ''}: {exc}")
    holder = read_holder(path) if str(path) != ":memory:" else None
    if holder is not None and holder.pid == os.getpid():  # this process took the run lock before opening
        holder = None
    if holder is not None:
        return DatabaseBusy(f"database {path} is being written by a run of this tool ({holder.describe()}); "
                            "try again when it has finished")
    # not a monitor run: an analyst's DuckDB session or notebook, or a `monitor query` still running
    held_in = re.search(r"Conflicting lock is held in (.*?\(PID \d+\))", str(exc))
    who = f"another process ({held_in.group(1) if held_in else exc})"
    if read_only:
        return DatabaseBusy(f"database {path} is being written by {who}; try again when it has finished")
    return DatabaseBusy(f"database {path} is open in {who}, and DuckDB writes a database only when no other "
                        "process has it open; try again when that process has closed it")


def _migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration shipped with the package, in order."""
    found = []
    for entry in resources.files("monitor.store").joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [version for version, _, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise StoreError(f"migrations must be numbered 1..n without gaps, found {versions}")
    return found


@functools.cache
def model_tables() -> frozenset[str]:
    """The names of the tables the migrations create (and ``schema_migrations``): what rules read.

    Read once per process: the migrations are files of the package, and every rule file's check asks."""
    created = {name.lower() for _, _, sql in _migrations() for name in _CREATE_TABLE.findall(sql)}
    return frozenset(created | {"schema_migrations"})


def latest_schema_version() -> int:
    """The schema version this code writes."""
    return len(_migrations())


def current_schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version of an open database (0 for an empty file)."""
    # fetchall, not fetchone: DuckDB keeps a fetchone() result open and then refuses register()
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
    ).fetchall()[0][0]
    if not exists:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()[0][0]


def migrate(con: duckdb.DuckDBPyConnection, target: int | None = None) -> int:
    """Bring the database to ``target`` (default: latest) and return the version reached."""
    migrations = _migrations()
    target = len(migrations) if target is None else target
    version = current_schema_version(con)
    if version > len(migrations):
        raise SchemaTooNewError(
            f"database schema version {version} is newer than this Procurement Monitor "
            f"understands (version {len(migrations)}); upgrade procurement-monitor or use another --db"
        )
    if version == 0:
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
        )
    if version < target:  # a migration may canonicalize stored regions as the normalizer does (0013)
        install_region_aliases(con)
    for number, name, sql in migrations[version:target]:
        *first_steps, last_step = _STEP.split(sql)
        for step in first_steps:
            with transaction(con):
                con.execute(step)
        with transaction(con):
            con.execute(last_step)
            con.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                [number, name, datetime.now(timezone.utc)],
            )
        log.info("schema migrated", version=number, migration=name, from_version=version)
    return max(version, target)


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal (single quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier (double quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN; COMMIT when the block ends, ROLLBACK (and re-raise) when it raises."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _configure(con: duckdb.DuckDBPyConnection, memory_limit: str | None, threads: int | None) -> None:
    con.execute("SET TimeZone = 'UTC'")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")


def connect(
    path: str | Path,
    *,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open (creating when missing) the database at ``path`` and migrate it to the latest schema."""
    path = Path(path)
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error as exc:
        raise _open_error(path, exc, read_only=False) from exc
    try:
        _configure(con, memory_limit, threads)
        migrate(con)
    except Exception:
        con.close()
        raise
    return con


def connect_read_only(path: str | Path, memory_limit: str | None = None,
                      threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """Open an existing database read-only, for queries and reports; refuse newer schemas."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"database {path} does not exist; load or ingest data first (monitor load PATH)")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise _open_error(path, exc, read_only=True) from exc
    _configure(con, memory_limit, threads)
    version = current_schema_version(con)
    latest = latest_schema_version()
    if version > latest:
        con.close()
        raise SchemaTooNewError(
            f"database schema version {version} is newer than this Procurement Monitor "
            f"understands (version {latest}); upgrade procurement-monitor or use another --db"
        )
    if version < latest:
        con.close()
        raise StoreError(
            f"database schema version {version} is older than {latest}; run any writing command "
            f"(e.g. monitor load) once to upgrade it in place"
        )
    return con
