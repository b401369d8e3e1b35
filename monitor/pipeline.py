"""What runs after records are stored: classification, then the flag rules.

``load`` and ``ingest`` call ``after_store`` (the steps ``[pipeline] after_store`` names); ``monitor
nightly`` calls the two steps itself, between its stop checks. A step that fails neither undoes what
is stored nor stops the next step: the flags are evaluated even when the classification failed, and
a rule that fails leaves the others to run and store their flags. Each step logs its failure (an
error line naming the step or rule and the reason) and returns it, with the exit code it deserves:
1 a step or rule failed, 2 category or rule files are invalid, 3 another process opened the
database before the flags could be written. The run's row in ``runs`` of a load or ingest stays
about the data; each rule's failure is in ``rule_runs``.
"""

from __future__ import annotations

import dataclasses

import click
import duckdb
import structlog

from monitor.classify.categories import CategoryError
from monitor.classify.run import ClassifyResult, classify_changed
from monitor.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_LOCKED, EXIT_OK
from monitor.commands.flag import evaluate_rules
from monitor.config import Settings
from monitor.flags.engine import Evaluation
from monitor.store import DatabaseBusy, StoreError

log = structlog.get_logger(__name__)


@dataclasses.dataclass
class StepFailure:
    """A step after the store that failed: ``what`` for a summary ("rule X failed"), the exit code it
    deserves and the reason."""

    what: str
    exit_code: int
    reason: str


def classify_step(con: duckdb.DuckDBPyConnection) -> tuple[ClassifyResult | None, StepFailure | None]:
    """Classify what changed; the result, or what failed."""
    try:
        return classify_changed(con), None
    except CategoryError as exc:
        failure = StepFailure("the classification failed (category files are invalid)", EXIT_BAD_INPUT,
                              f"category files are invalid: {exc}")
        log.error("classification failed; the data is stored", error=failure.reason)
    except Exception as exc:
        failure = StepFailure("the classification failed", EXIT_FAILED, str(exc) or type(exc).__name__)
        log.exception("classification failed; the data is stored", error=failure.reason)
    return None, failure


def flag_step(settings: Settings) -> tuple[Evaluation | None, StepFailure | None]:
    """Evaluate every rule (the database must not be open here: the rules read it through their own
    connections); the evaluation, when there was one, and what failed."""
    try:
        evaluation = evaluate_rules(settings)
    except click.ClickException as exc:  # invalid rule files (BadInput)
        failure = StepFailure("the flag rules were not evaluated (rule files are invalid)", exc.exit_code,
                              exc.format_message())
    except StoreError as exc:  # another process opened the database meanwhile (3), or it cannot be used (2)
        failure = StepFailure(f"the flag rules were not evaluated ({exc})",
                              EXIT_LOCKED if isinstance(exc, DatabaseBusy) else EXIT_BAD_INPUT, str(exc))
    except Exception as exc:
        log.exception("flag rules not evaluated; the data is stored", error=str(exc) or type(exc).__name__)
        return None, StepFailure("the flag rules were not evaluated", EXIT_FAILED, str(exc) or type(exc).__name__)
    else:
        if not evaluation.failed:
            return evaluation, None
        failed = [o.rule_id for o in evaluation.failed]
        log.error("flag rules failed; the data and the other rules' flags are stored",
                  failed_rules=failed, errors={o.rule_id: o.error for o in evaluation.failed})
        return evaluation, StepFailure(f"{'rule' if len(failed) == 1 else 'rules'} {', '.join(failed)} failed",
                                       EXIT_FAILED, "; ".join(f"rule {o.rule_id}: {o.error}" for o in evaluation.failed))
    log.error("flag rules not evaluated; the data is stored", error=failure.reason)
    return None, failure


@dataclasses.dataclass
class AfterStore:
    """What failed after the data was stored, and the exit code it deserves (the highest of its steps')."""

    failures: list[StepFailure] = dataclasses.field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        return [f.what for f in self.failures]

    @property
    def exit_code(self) -> int:
        return max((f.exit_code for f in self.failures), default=EXIT_OK)  # busy (3) over bad input (2) over 1

    def note(self) -> str:
        """``the data is stored, but rule X failed`` for the command's summary; empty when all went well."""
        return f"the data is stored, but {'; '.join(self.failed)}" if self.failed else ""


def after_store(con: duckdb.DuckDBPyConnection, settings: Settings) -> AfterStore:
    """Classify what changed and evaluate the flags, as ``[pipeline] after_store`` says; closes ``con``.

    The flags run after the connection is closed. Failures are logged and returned, never raised: the
    data and the flags of the rules that worked are committed.
    """
    result = AfterStore()
    try:
        if "classify" in settings.after_store:
            _, failure = classify_step(con)
            result.failures += [failure] if failure else []
    finally:
        con.close()
    if "flag" in settings.after_store:
        _, failure = flag_step(settings)
        result.failures += [failure] if failure else []
    return result
