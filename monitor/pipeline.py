"""What runs after records are stored (by load and ingest): classification, then the flag rules."""

from __future__ import annotations

import duckdb

from monitor.commands.classify import classify_after_store
from monitor.commands.flag import evaluate_rules
from monitor.config import Settings


def after_store(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Classify what changed and evaluate the flags, as ``[pipeline] after_store`` says; closes ``con``.

    The flags run after the connection is closed: they read the database through their own
    read-only sandbox connection.
    """
    try:
        if "classify" in settings.after_store:
            classify_after_store(con)
    finally:
        con.close()
    if "flag" in settings.after_store:
        evaluate_rules(settings)
