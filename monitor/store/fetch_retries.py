"""The retry queue (``fetch_retries``): listed objects the server failed to give after every attempt.

A feed page whose objects the server (or the network) failed to give is judged by the ingest run:
when the failure may be an outage (no object of the page was fetched, and one of the failures is
new), the failures are noted here and the run fails without committing the page's cursor; otherwise
(other objects came, or the object failed in an earlier run too) the failures are *deferred*: noted
here in the page's own transaction, so the cursor moves past them only together with this note.
Every later run fetches the deferred objects of a feed first. A row goes when its object is stored
or quarantined (a 404, a body that is not the object: bad input, not a passing fault).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

import duckdb


@dataclasses.dataclass
class Failure:
    """One object the server failed to give in this run."""

    id: str
    url: str
    error: str


@dataclasses.dataclass
class Pending:
    """A row of the queue."""

    id: str
    url: str
    failures: int
    deferred: bool


def pending(con: duckdb.DuckDBPyConnection, feed: str) -> dict[str, Pending]:
    """The feed's queue by object id."""
    rows = con.execute(
        "SELECT id, url, failures, deferred FROM fetch_retries WHERE feed = ? ORDER BY first_failed_at, id", [feed]
    ).fetchall()
    return {row[0]: Pending(*row) for row in rows}


def note_failures(con: duckdb.DuckDBPyConnection, feed: str, source: str, kind: str, failures: list[Failure],
                  *, deferred: bool, now: datetime) -> None:
    """Count one more failed run for each object (new ones enter the queue); ``deferred``: the cursor
    moves past them (call inside the transaction that commits that cursor)."""
    if not failures:
        return
    ids = [f.id for f in failures]
    before = {row[0]: row[1:] for row in con.execute(
        "SELECT id, failures, first_failed_at, deferred FROM fetch_retries WHERE feed = ? AND list_contains(?, id)",
        [feed, ids],
    ).fetchall()}
    clear(con, feed, ids)
    rows = []
    for failure in failures:
        count, first, was_deferred = before.get(failure.id, (0, now, False))
        rows.append((feed, source, kind, failure.id, failure.url, count + 1, first, now, failure.error,
                     deferred or was_deferred))
    con.executemany("INSERT INTO fetch_retries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def clear(con: duckdb.DuckDBPyConnection, feed: str, ids: list[str]) -> None:
    """Take objects off the queue (they were stored or quarantined)."""
    if ids:
        con.execute("DELETE FROM fetch_retries WHERE feed = ? AND list_contains(?, id)", [feed, ids])

