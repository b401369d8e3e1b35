"""The nightly run: ingest every enabled source, classify, flag: one run under the database's lock.

``monitor nightly`` (for cron) calls ``run_nightly``; the scheduler's nightly job, which holds the lock
already, calls ``run_nightly_locked``. A step that fails does not stop the next ones (a source that
fails leaves the others to run; the flags are evaluated even when the ingest failed); the run and its
exit code say it failed. A stop request
(SIGINT/SIGTERM, or ``stop`` set by the scheduler) ends the ingest after the page in flight and skips
the steps not yet started (the next run classifies and flags what this one stored); the run is
``incomplete``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import structlog

from monitor.config import ConfigError, Settings
from monitor.lock import hold_lock
from monitor.runs import close_abandoned_runs, finish_run, start_run
from monitor.sources import SourceConfig, source_config
from monitor.store import connect

log = structlog.get_logger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


@dataclasses.dataclass
class NightlyResult:
    """``exit_code`` (0 fine, 1 a step failed, 2 bad configuration) and the summary stored in ``runs``."""

    exit_code: int
    summary: dict[str, Any]

    @property
    def status(self) -> str:
        return self.summary["status"]


def run_nightly(settings: Settings, *, stop: threading.Event | None = None) -> NightlyResult:
    """Take the lock and run the nightly steps.

    Raises ``monitor.lock.Locked`` when another run holds the lock and ``ConfigError`` when the
    sources' configuration is wrong (both before anything runs).
    """
    config = source_config(settings)
    with hold_lock(settings.db_path, "nightly"):
        return run_nightly_locked(settings, config, stop=stop)


def run_nightly_locked(settings: Settings, config: SourceConfig | None = None, *,
                       stop: threading.Event | None = None) -> NightlyResult:
    """The nightly steps, for a caller that holds the lock already (the scheduler's ``--once``)."""
    from monitor.commands.ingest import run_ingest  # here, not at the top: the commands import monitor.cli
    from monitor.pipeline import classify_step, flag_step

    config = config or source_config(settings)
    names = config.names()
    began = time.monotonic()
    seconds: dict[str, float] = {}
    errors: list[str] = []
    codes: list[int] = []
    stopped = False
    summary: dict[str, Any] = {"run": None, "status": "running", "exit_code": None, "sources": {}, "ingest": None,
                               "classified": None, "flags": None, "seconds": seconds}
    cursors = None

    def failed(step: str, code: int, message: str) -> None:
        codes.append(code)
        errors.append(f"{step}: {message}")

    def stop_requested() -> bool:
        return stop is not None and stop.is_set()

    con = connect(settings.db_path, memory_limit=settings.memory_limit, threads=settings.threads)
    close_abandoned_runs(con)  # the caller holds the lock: a 'running' ingest or nightly row is a dead process's
    run_id = summary["run"] = start_run(con, "nightly", "nightly")
    log.info("nightly started", run=run_id, sources=names, db=str(settings.db_path), api=config.prozorro_api_url)
    try:
        # 1. ingest every enabled source
        started = time.monotonic()
        try:
            outcome = run_ingest(con, config, names, stop=stop, run_id=run_id)
        except ConfigError as exc:
            failed("ingest", EXIT_BAD_INPUT, str(exc))
        except Exception as exc:
            log.exception("ingest step failed", error=str(exc))
            failed("ingest", EXIT_FAILED, str(exc) or type(exc).__name__)
        else:
            summary["sources"] = outcome.summary["sources"]
            summary["ingest"] = {k: v for k, v in outcome.summary.items() if k not in ("sources", "seconds")}
            cursors = outcome.cursors
            stopped = outcome.stopped
            if outcome.status == "failed":
                failed("ingest", EXIT_FAILED, outcome.errors or "a source failed")
        seconds["ingest"] = round(time.monotonic() - started, 2)

        # 2. classify what changed
        stopped = stopped or stop_requested()
        if not stopped:
            started = time.monotonic()
            classified, failure = classify_step(con)
            if classified is not None:
                summary["classified"] = {"processes": classified.processes,
                                         "classifications": classified.classifications,
                                         "plans": classified.plans,
                                         "plan_classifications": classified.plan_classifications,
                                         "full": classified.full}
            if failure:
                failed("classify", failure.exit_code, failure.reason)
            seconds["classify"] = round(time.monotonic() - started, 2)
        con.close()
        con = None

        # 3. evaluate the flag rules (their own connections: the database must be closed here)
        stopped = stopped or stop_requested()
        if not stopped:
            started = time.monotonic()
            evaluation, failure = flag_step(settings)
            if evaluation is not None:
                summary["flags"] = {"new": evaluation.new, "changed": evaluation.changed,
                                    "resolved": evaluation.resolved, "open": evaluation.open,
                                    "rules": len(evaluation.outcomes),
                                    "failed_rules": [o.rule_id for o in evaluation.failed]}
            if failure:
                failed("flag", failure.exit_code, failure.reason)
            seconds["flag"] = round(time.monotonic() - started, 2)
    except BaseException as exc:  # KeyboardInterrupt and the like: close the run, then let it go
        if con is None:
            con = connect(settings.db_path, memory_limit=settings.memory_limit, threads=settings.threads)
        finish_run(con, run_id, "failed", summary, last_cursor=cursors, error=str(exc) or type(exc).__name__)
        con.close()
        raise

    seconds["total"] = round(time.monotonic() - began, 2)
    exit_code = EXIT_BAD_INPUT if EXIT_BAD_INPUT in codes else (EXIT_FAILED if codes else EXIT_OK)
    status = "failed" if codes else ("incomplete" if stopped or _incomplete(summary) else "complete")
    summary.update(status=status, exit_code=exit_code)
    if errors:
        summary["error"] = "; ".join(errors)
    con = connect(settings.db_path, memory_limit=settings.memory_limit, threads=settings.threads)
    try:
        finish_run(con, run_id, status, summary, last_cursor=cursors, error=summary.get("error"))
    finally:
        con.close()
    (log.info if exit_code == EXIT_OK else log.error)("nightly finished", **summary)
    return NightlyResult(exit_code, summary)


def _incomplete(summary: dict[str, Any]) -> bool:
    return any(source.get("status") == "incomplete" for source in summary["sources"].values())
