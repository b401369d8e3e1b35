"""What runs after records are stored (by load and ingest): classification, then the flag rules.

A step that fails neither undoes what is stored nor stops the next step (as in ``monitor nightly``):
the flags are evaluated even when the classification failed, and a rule that fails leaves the others
to run and store their flags. ``after_store`` returns what failed; the command prints its summary,
says that the data is stored but which step or rule failed, and exits 1 (2 when category or rule
files are invalid). The run's row in ``runs`` stays about the data; each rule's failure is in
``rule_runs``.
"""

from __future__ import annotations

import dataclasses

import click
import duckdb
import structlog

from monitor.commands.classify import classify_after_store
from monitor.commands.flag import evaluate_rules
from monitor.config import Settings
from monitor.store import DatabaseBusy, StoreError

log = structlog.get_logger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_LOCKED = 0, 1, 2, 3


@dataclasses.dataclass
class AfterStore:
    """What failed after the data was stored: ``failed`` ("rule X", "the classification", ...) and the
    exit code it deserves (0 nothing failed, 1 a step or rule failed, 2 invalid category or rule files,
    3 the database opened by another process before the flags could be written)."""

    failed: list[str] = dataclasses.field(default_factory=list)
    exit_code: int = EXIT_OK

    def fail(self, what: str, code: int) -> None:
        self.failed.append(what)
        self.exit_code = max(self.exit_code, code)  # busy (3) over bad input (2) over failed (1)

    def note(self) -> str:
        """``the data is stored, but rule X failed`` for the command's summary; empty when all went well."""
        return f"the data is stored, but {'; '.join(self.failed)}" if self.failed else ""


def after_store(con: duckdb.DuckDBPyConnection, settings: Settings) -> AfterStore:
    """Classify what changed and evaluate the flags, as ``[pipeline] after_store`` says; closes ``con``.

    The flags run after the connection is closed: they read the database through their own
    read-only sandbox connection. Failures are logged (error lines naming the step or rule and the
    reason) and returned, never raised: the data and the flags of the rules that worked are committed.
    """
    result = AfterStore()
    try:
        if "classify" in settings.after_store:
            try:
                classify_after_store(con)
            except click.ClickException as exc:  # invalid category files (BadInput)
                log.error("classification failed; the data is stored", error=exc.format_message())
                result.fail("the classification failed (category files are invalid)", exc.exit_code)
            except Exception as exc:
                log.exception("classification failed; the data is stored", error=str(exc) or type(exc).__name__)
                result.fail("the classification failed", EXIT_FAILED)
    finally:
        con.close()
    if "flag" in settings.after_store:
        try:
            evaluation = evaluate_rules(settings)
        except click.ClickException as exc:  # invalid rule files (BadInput)
            log.error("flag rules not evaluated; the data is stored", error=exc.format_message())
            result.fail("the flag rules were not evaluated (rule files are invalid)", exc.exit_code)
        except StoreError as exc:  # another process opened the database meanwhile (3), or it cannot be used (2)
            log.error("flag rules not evaluated; the data is stored", error=str(exc))
            result.fail(f"the flag rules were not evaluated ({exc})",
                        EXIT_LOCKED if isinstance(exc, DatabaseBusy) else EXIT_BAD_INPUT)
        except Exception as exc:
            log.exception("flag rules not evaluated; the data is stored", error=str(exc) or type(exc).__name__)
            result.fail("the flag rules were not evaluated", EXIT_FAILED)
        else:
            if evaluation.failed:
                failed = [o.rule_id for o in evaluation.failed]
                log.error("flag rules failed; the data and the other rules' flags are stored",
                          failed_rules=failed, errors={o.rule_id: o.error for o in evaluation.failed})
                result.fail(f"{'rule' if len(failed) == 1 else 'rules'} {', '.join(failed)} failed", EXIT_FAILED)
    return result
