"""The change log of contracting processes (``process_changes``, migration 0016).

Whatever writes a process's rows (the normalizer) or its classifications (the classifier) logs the
ocids it wrote, as one numbered batch, in the transaction that wrote them. The flag engine reads the
log to evaluate incremental rules only on the processes changed since their last evaluation
(``flag_watermarks``), and to leave alone rules that read process rows alone while nothing changed; it
prunes the batches every rule with a watermark has seen. Logging more processes than
changed costs time, never correctness; logging fewer would leave their flags stale, so a writer of
process rows must log.
"""

from __future__ import annotations

import duckdb


def log_changed_processes(con: duckdb.DuckDBPyConnection, ocids_sql: str) -> None:
    """Append the distinct non-NULL ``ocid`` values of ``ocids_sql`` (a SELECT with an ``ocid`` column) to the
    change log as the next batch."""
    con.execute(
        f"""
        INSERT INTO process_changes
        SELECT ({_LATEST}) + 1, ocid
        FROM (SELECT DISTINCT ocid FROM ({ocids_sql}) WHERE ocid IS NOT NULL)
        """
    )


# batches are numbered on from the last one logged, or seen by a rule when the log was pruned since
_LATEST = ("SELECT greatest((SELECT coalesce(max(change_seq), 0) FROM process_changes), "
           "(SELECT coalesce(max(change_seq), 0) FROM flag_watermarks))")


def latest_batch(con: duckdb.DuckDBPyConnection) -> int:
    """The number of the last batch logged (0 when none)."""
    return con.execute(_LATEST).fetchall()[0][0]


def prune_seen(con: duckdb.DuckDBPyConnection) -> int:
    """Delete the batches every rule with a watermark has seen (all of them when no rule has one: a rule
    that gets a watermark is evaluated on everything first); return the rows deleted."""
    return con.execute(
        "DELETE FROM process_changes WHERE change_seq <= coalesce((SELECT min(change_seq) FROM flag_watermarks), "
        "(SELECT max(change_seq) FROM process_changes))"
    ).fetchall()[0][0]
