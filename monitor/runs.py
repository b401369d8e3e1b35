"""Record every command run in the ``runs`` table: what ran, when, how it ended, with counts."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import duckdb
import orjson


def start_run(con: duckdb.DuckDBPyConnection, command: str, arguments: str) -> int:
    """Insert a ``running`` row and return its id."""
    return con.execute(
        "INSERT INTO runs (command, arguments, started_at, status) VALUES (?, ?, ?, 'running') RETURNING run_id",
        [command, arguments, datetime.now(timezone.utc)],
    ).fetchone()[0]


def finish_run(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    status: str,
    counts: dict[str, Any] | None = None,
    *,
    last_cursor: str | None = None,
    error: str | None = None,
) -> None:
    """Close a run as complete, incomplete or failed."""
    con.execute(
        "UPDATE runs SET finished_at = ?, status = ?, counts = ?, last_cursor = ?, error = ? WHERE run_id = ?",
        [
            datetime.now(timezone.utc),
            status,
            orjson.dumps(counts or {}).decode(),
            last_cursor,
            error,
            run_id,
        ],
    )
