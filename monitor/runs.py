"""Record every command run in the ``runs`` table: what ran, when, how it ended, with counts.

An ingest (or nightly) run also notes in its ``counts`` where each feed starts (a ProZorro offset, an OCDS URL)
(``{"sources": {name: {"start": offset}}}``), before its first page commits: the run that wrote a
source's stored cursor tells where that cursor's chain began, which is where a cursor the server
rejects restarts (``cursor_start``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import duckdb
import orjson
import structlog

log = structlog.get_logger(__name__)

# commands that hold the database's lock for as long as their run row is 'running'
LOCKED_COMMANDS = "('ingest', 'nightly')"
ABANDONED = "the process ended without closing its run (killed?)"


def start_run(con: duckdb.DuckDBPyConnection, command: str, arguments: str) -> int:
    """Insert a ``running`` row and return its id."""
    return con.execute(
        "INSERT INTO runs (command, arguments, started_at, status) VALUES (?, ?, ?, 'running') RETURNING run_id",
        [command, arguments, datetime.now(timezone.utc)],
    ).fetchone()[0]


def _parse_counts(text: str | None) -> dict[str, Any]:
    """A run's ``counts`` JSON as a dict ({} when empty or unreadable)."""
    try:
        counts = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return {}
    return counts if isinstance(counts, dict) else {}


def _counts(con: duckdb.DuckDBPyConnection, run_id: int) -> dict[str, Any]:
    rows = con.execute("SELECT counts FROM runs WHERE run_id = ?", [run_id]).fetchall()
    return _parse_counts(rows[0][0] if rows else None)


def _starts(counts: dict[str, Any]) -> dict[str, str]:
    sources = counts.get("sources")
    if not isinstance(sources, dict):
        return {}
    return {name: source["start"] for name, source in sources.items()
            if isinstance(source, dict) and isinstance(source.get("start"), str)}


def record_starts(con: duckdb.DuckDBPyConnection, run_id: int, starts: dict[str, str]) -> None:
    """Note on a running row where each source's feed starts (kept by ``finish_run``)."""
    counts = _counts(con, run_id)
    sources = counts.setdefault("sources", {})
    for name, start in starts.items():
        sources.setdefault(name, {})["start"] = start
    con.execute("UPDATE runs SET counts = ? WHERE run_id = ?", [orjson.dumps(counts).decode(), run_id])


def finish_run(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    status: str,
    counts: dict[str, Any] | None = None,
    *,
    last_cursor: str | None = None,
    error: str | None = None,
) -> None:
    """Close a run as complete, incomplete or failed (the starts noted by ``record_starts`` stay)."""
    counts = dict(counts or {})
    missing = {name: start for name, start in _starts(_counts(con, run_id)).items() if name not in _starts(counts)}
    if missing:  # e.g. a run that failed before its summary: keep where its feeds started
        sources = {name: dict(value) for name, value in (counts.get("sources") or {}).items()}
        for name, start in missing.items():
            sources.setdefault(name, {})["start"] = start
        counts["sources"] = sources
    con.execute(
        "UPDATE runs SET finished_at = ?, status = ?, counts = ?, last_cursor = ?, error = ? WHERE run_id = ?",
        [
            datetime.now(timezone.utc),
            status,
            orjson.dumps(counts).decode(),
            last_cursor,
            error,
            run_id,
        ],
    )


def cursor_start(con: duckdb.DuckDBPyConnection, source: str) -> str | None:
    """The configured start of the run that began ``source``'s stored cursor; None without a cursor.

    That run is the last ingest or nightly run started before the cursor was written (they hold the
    lock, so they never overlap). A cursor written before runs noted their starts gets ``""``: the
    beginning of the feed, the one start that surely misses nothing.
    """
    rows = con.execute("SELECT updated_at FROM cursors WHERE source = ?", [source]).fetchall()
    if not rows:
        return None
    writer = con.execute(
        f"SELECT counts FROM runs WHERE command IN {LOCKED_COMMANDS} AND started_at <= ? "
        "ORDER BY started_at DESC, run_id DESC LIMIT 1",
        [rows[0][0]],
    ).fetchall()
    start = _starts(_parse_counts(writer[0][0] if writer else None)).get(source)
    if start is None:
        log.info("the start of the stored cursor was not recorded; a rejected cursor restarts from the "
                 "beginning of the feed", source=source)
        return ""
    return start


def close_abandoned_runs(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Close the ingest and nightly runs left ``running`` by a process that died (``kill -9``, power loss).

    Call only while holding the database's lock: those commands hold it for as long as their run is
    open, so a ``running`` row found then belongs to a process that is gone. Each becomes
    ``incomplete`` with the cursors stored when it ended as its last cursors (the sources it noted,
    and any written since it started) and, as its end, the last cursor it wrote (else its start).
    """
    rows = con.execute(
        f"SELECT run_id, command, started_at, counts FROM runs WHERE status = 'running' "
        f"AND command IN {LOCKED_COMMANDS} ORDER BY run_id"
    ).fetchall()
    closed = []
    for run_id, command, started_at, counts in rows:
        noted = _starts(_parse_counts(counts))
        cursors = con.execute(
            "SELECT source, cursor, updated_at FROM cursors "
            "WHERE source IN (SELECT unnest(?::VARCHAR[])) OR updated_at >= ? ORDER BY source",
            [list(noted), started_at],
        ).fetchall()
        last_cursor = orjson.dumps({source: cursor for source, cursor, _ in cursors}).decode() if cursors else None
        ended = max([updated for _, _, updated in cursors if updated >= started_at], default=started_at)
        con.execute(
            "UPDATE runs SET finished_at = ?, status = 'incomplete', last_cursor = ?, error = ? WHERE run_id = ?",
            [ended, last_cursor, ABANDONED, run_id],
        )
        log.warning("closed a run its process left open", run=run_id, command=command,
                    started_at=started_at.isoformat(), status="incomplete", error=ABANDONED, last_cursor=last_cursor)
        closed.append(run_id)
    return closed
