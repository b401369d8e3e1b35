"""``monitor schedule``: the nightly run and the weekly report on cron triggers (APScheduler 3).

Configuration (every key optional)::

    [schedule]
    nightly = "30 2 * * *"        # crontab syntax: minute hour day-of-month month day-of-week
                                  # (both day fields restricted: either one matching fires, as in cron)
    report = "0 7 * * mon"        # "" or "off" disables a job
    timezone = "Europe/Kyiv"
    misfire_grace_time = 21600    # seconds a job may start late (waiting for another job, a busy machine)

Jobs run one at a time (one worker thread) and each holds the database's lock, so they never overlap
with each other nor with a manual ``monitor ingest`` or a cron ``monitor nightly``: a job that finds
the lock held logs it and skips that turn. Missed runs coalesce into one. At start, a job whose
last scheduled time passed (within the grace time) with no run recorded since runs at once.
SIGTERM/SIGINT: the job in flight stops after its page in flight (the nightly run is then
'incomplete'), then the scheduler exits with code 0.

``--once`` runs the jobs that are due (their last scheduled time is later than their last run in
``runs``, or they never ran) and exits: for a cron line, or a test.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

from monitor.config import ConfigError, Settings
from monitor.lock import Locked, hold_lock
from monitor.runs import finish_run, start_run
from monitor.store import DatabaseBusy, connect

log = structlog.get_logger(__name__)

DEFAULTS: dict[str, Any] = {"nightly": "30 2 * * *", "report": "0 7 * * mon", "timezone": "Europe/Kyiv",
                            "misfire_grace_time": 6 * 3600}
JOBS = ("nightly", "report")  # the order --once runs them in: the report reads what the nightly stored
DISABLED = ("", "off", "none")

# outcomes of a job
RAN, FAILED, LOCKED, NOT_DUE = "ran", "failed", "locked", "not due"


@dataclasses.dataclass
class ScheduleConfig:
    timezone: tzinfo
    crons: dict[str, str]             # job -> crontab text (enabled jobs only)
    triggers: dict[str, BaseTrigger]  # job -> trigger (a CronTrigger, or an OrTrigger of two: cron_trigger)
    misfire_grace_time: int


# --- configuration ---------------------------------------------------------------------------

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _crontab_days(field: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday, names) as APScheduler 3 reads it (0 = Monday).

    APScheduler 3's ``CronTrigger.from_crontab`` passes the numbers through unchanged, so ``1`` would
    mean Tuesday; written out as names, the days are the ones crontab means.
    """
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()

    def day(token: str) -> int:
        token = token.strip().lower()
        if token.isdigit() and 0 <= int(token) <= 7:
            return int(token) % 7
        if token[:3] in _DAY_NAMES and len(token) == 3:
            return _DAY_NAMES.index(token)
        raise ValueError(f"day of week {token!r}: use 0-7 (0 and 7 are Sunday) or sun, mon, ... sat")

    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"day of week {part!r}: the step after / must be a positive number")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            first_text, last_text = span.split("-", 1)
            first, last = day(first_text), day(last_text)
            if last_text.strip() == "7":
                last = 7  # 5-7 is Friday to Sunday
            if last < first:
                raise ValueError(f"day of week range {span!r} runs backwards")
        else:
            first = last = day(span)
            if step:
                last = 6  # 1/2: from Monday, every second day
        days.update(d % 7 for d in range(first, last + 1, step or 1))
    if len(days) == 7:
        return "*"
    return ",".join(_DAY_NAMES[d] for d in sorted(days))


def _restricts_days(field: str) -> bool:
    """Whether a day-of-month or day-of-week field counts as restricted for crontab's either-day rule.

    Vixie cron and cronie decide it on the field's first character, before the field is expanded
    (``entry.c``: ``if (ch == '*') e->flags |= DOM_STAR;``, likewise ``DOW_STAR``), and ``find_jobs``
    in ``cron.c`` fires on day-of-month OR day-of-week only when neither flag is set, else on both.
    We follow that: ``*/2`` or ``*,mon`` is unrestricted (the two fields must both match), while
    ``1-31/2`` or ``0-7`` is restricted, even where it names every day. ``?``, which ``_crontab_days``
    reads as ``*``, is unrestricted too.
    """
    return not field.startswith(("*", "?"))


def cron_trigger(text: str, timezone: tzinfo) -> BaseTrigger:
    """A trigger from crontab text (five fields; the day fields as crontab means them).

    Day of week: crontab's numbers (``_crontab_days``). Day of month and day of week both restricted
    (``0 3 1,15 * mon``): crontab fires when EITHER matches (every 1st, 15th and Monday), while
    APScheduler's ``CronTrigger`` wants both; so that line becomes an ``OrTrigger`` of two cron
    triggers, one per day field. With only one of them restricted a single ``CronTrigger`` is the same.
    """
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"{len(fields)} field(s); crontab syntax has 5: minute hour day-of-month month day-of-week")
    minute, hour, day, month, weekday = fields
    days = _crontab_days(weekday)

    def trigger(day_of_month: str, day_of_week: str) -> CronTrigger:
        return CronTrigger(minute=minute, hour=hour, day=day_of_month, month=month, day_of_week=day_of_week,
                           timezone=timezone)

    if not (_restricts_days(day) and _restricts_days(weekday)):
        return trigger(day, days)
    return OrTrigger([trigger(day, "*"), trigger("*", days)])


def schedule_config(settings: Settings) -> ScheduleConfig:
    """``[schedule]`` from the config file, validated; ``ConfigError`` says what is wrong."""
    where = f"config file {settings.config_path}: [schedule]" if settings.config_path else "[schedule]"
    table = settings.raw.get("schedule", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
    values = {**DEFAULTS, **table}
    zone_name = values["timezone"]
    try:
        if not isinstance(zone_name, str) or not zone_name:
            raise ValueError
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where} timezone = {zone_name!r} is not a known time zone; use an IANA name such "
                          "as Europe/Kyiv or UTC") from None
    grace = values["misfire_grace_time"]
    if isinstance(grace, bool) or not isinstance(grace, int) or grace <= 0:
        raise ConfigError(f"{where} misfire_grace_time = {grace!r}: a number of seconds above 0")
    crons: dict[str, str] = {}
    triggers: dict[str, BaseTrigger] = {}
    for job in JOBS:
        text = values[job]
        if text is False or (isinstance(text, str) and text.strip().lower() in DISABLED):
            continue
        if not isinstance(text, str):
            raise ConfigError(f'{where} {job} = {text!r}: a crontab line in quotes, such as "30 2 * * *", or "off"')
        try:
            triggers[job] = cron_trigger(text, zone)
        except ValueError as exc:
            raise ConfigError(f"{where} {job} = {text!r}: {exc}") from None
        crons[job] = text.strip()
    return ScheduleConfig(zone, crons, triggers, grace)


# --- when a job is due -----------------------------------------------------------------------

def last_fire_time(trigger: BaseTrigger, now: datetime) -> datetime | None:
    """The trigger's latest fire time at or before ``now`` (None if none in the last four years)."""
    for window in (timedelta(hours=1), timedelta(days=1), timedelta(days=8), timedelta(days=32),
                   timedelta(days=367), timedelta(days=4 * 366)):
        last = None
        fire = trigger.get_next_fire_time(None, now - window)
        while fire is not None and fire <= now:
            last = fire
            fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
        if last is not None:
            return last
    return None


def last_run(con, job: str) -> datetime | None:
    """When the job last started, from ``runs`` (the nightly run records 'nightly', the report 'report')."""
    rows = con.execute("SELECT max(started_at) FROM runs WHERE command = ?", [job]).fetchall()
    return rows[0][0] if rows else None


def is_due(con, job: str, trigger: BaseTrigger, now: datetime, within: float | None = None) -> bool:
    """Whether the job's last scheduled time (at most ``within`` seconds ago) has no run since."""
    fired = last_fire_time(trigger, now)
    if fired is None or (within is not None and (now - fired).total_seconds() > within):
        return False
    ran = last_run(con, job)
    return ran is None or ran < fired


# --- the jobs --------------------------------------------------------------------------------

def _nightly_job(settings: Settings, stop: threading.Event) -> bool:
    from monitor.nightly import run_nightly_locked

    return run_nightly_locked(settings, stop=stop).exit_code == 0


def _report_job(settings: Settings, stop: threading.Event) -> bool:
    from monitor.report import write_report  # imported when the job runs, not when the scheduler starts

    con = connect(settings.db_path, memory_limit=settings.memory_limit, threads=settings.threads)
    run_id = start_run(con, "report", "report (scheduled)")
    con.close()  # the report reads the database read-only
    started = time.monotonic()
    status, error, written = "complete", None, None
    try:
        written = write_report(settings)
    except BaseException as exc:
        status, error = "failed", str(exc) or type(exc).__name__
        log.exception("report failed", error=error)
        if not isinstance(exc, Exception):
            raise
    finally:
        con = connect(settings.db_path, memory_limit=settings.memory_limit, threads=settings.threads)
        details = {"week": None if written is None else written.week,
                   "out_dir": None if written is None else str(written.out_dir),
                   "seconds": round(time.monotonic() - started, 2)}
        finish_run(con, run_id, status, details, error=error)
        con.close()
    return status == "complete"


JOB_FUNCTIONS: dict[str, Callable[[Settings, threading.Event], bool]] = {
    "nightly": _nightly_job,
    "report": _report_job,
}


def run_job(job: str, settings: Settings, stop: threading.Event, config: ScheduleConfig | None = None,
            now: datetime | None = None) -> str:
    """Run one job under the lock: ``ran``, ``failed``, ``locked`` (skipped) or ``not due``.

    With ``config`` and ``now``, the job runs only when it is due (``--once``); the check is made
    under the lock, so two ``--once`` processes cannot both find a job due.
    """
    if stop.is_set():  # queued behind the job in flight when the stop came
        log.info("job skipped: the scheduler is stopping", job=job)
        return NOT_DUE
    started = time.monotonic()
    try:
        with hold_lock(settings.db_path, f"schedule: {job}"):
            if config is not None and now is not None:
                con = connect(settings.db_path, memory_limit=settings.memory_limit, threads=settings.threads)
                try:
                    due = is_due(con, job, config.triggers[job], now)
                finally:
                    con.close()
                if not due:
                    fired = last_fire_time(config.triggers[job], now)
                    log.info("job not due", job=job, last_scheduled=fired.isoformat() if fired else None)
                    return NOT_DUE
            log.info("job started", job=job)
            ok = JOB_FUNCTIONS[job](settings, stop)
    except Locked as exc:
        log.warning("job skipped: another run holds the lock", job=job,
                    holder=exc.holder.describe() if exc.holder else None)
        return LOCKED
    except DatabaseBusy as exc:  # e.g. an analyst's notebook has the file open: the job runs at its next time
        log.warning("job skipped: the database is open in another process", job=job, error=str(exc))
        return LOCKED
    except Exception as exc:
        log.exception("job failed", job=job, error=str(exc))
        return FAILED
    outcome = RAN if ok else FAILED
    (log.info if ok else log.error)("job finished", job=job, outcome=outcome,
                                    seconds=round(time.monotonic() - started, 2))
    return outcome


def run_due(settings: Settings, config: ScheduleConfig, now: datetime | None = None,
            stop: threading.Event | None = None) -> dict[str, str]:
    """``--once``: run every due job, in order; job -> outcome."""
    now = now or datetime.now(config.timezone)
    stop = stop or threading.Event()
    outcomes = {}
    for job in config.triggers:
        if stop.is_set():
            break
        outcomes[job] = run_job(job, settings, stop, config, now)
    return outcomes


# --- the long-running scheduler --------------------------------------------------------------

class _ToStructlog(logging.Handler):
    """APScheduler logs through the standard library: pass its lines on to structlog (JSON under cron)."""

    def emit(self, record: logging.LogRecord) -> None:
        level = record.levelno if record.levelno >= logging.WARNING else logging.DEBUG
        structlog.get_logger(record.name).log(level, record.getMessage())


def _route_apscheduler_logs() -> None:
    logger = logging.getLogger("apscheduler")
    if not any(isinstance(h, _ToStructlog) for h in logger.handlers):
        logger.addHandler(_ToStructlog())
    logger.setLevel(logging.DEBUG)
    logger.propagate = False


def _catch_up(settings: Settings, config: ScheduleConfig, now: datetime) -> list[str]:
    """Jobs whose last scheduled time passed within the grace time with no run since (missed while down)."""
    try:
        with hold_lock(settings.db_path, "schedule: start"):
            con = connect(settings.db_path, memory_limit=settings.memory_limit, threads=settings.threads)
            try:
                return [job for job, trigger in config.triggers.items()
                        if is_due(con, job, trigger, now, within=config.misfire_grace_time)]
            finally:
                con.close()
    except Locked as exc:
        log.info("no catch-up: another run holds the lock", holder=exc.holder.describe() if exc.holder else None)
        return []
    except DatabaseBusy as exc:
        log.warning("no catch-up: the database is open in another process", error=str(exc))
        return []


def run_scheduler(settings: Settings, config: ScheduleConfig) -> int:
    """Run until SIGTERM/SIGINT; return the exit code (0)."""
    _route_apscheduler_logs()
    stop = threading.Event()
    executor = ThreadPoolExecutor(max_workers=1)  # one job at a time
    scheduler = BlockingScheduler(
        timezone=config.timezone,
        executors={"default": executor},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": config.misfire_grace_time},
    )
    now = datetime.now(config.timezone)
    catch_up = _catch_up(settings, config, now)
    for job, trigger in config.triggers.items():
        extra = {"next_run_time": now} if job in catch_up else {}
        scheduler.add_job(run_job, trigger, args=(job, settings, stop), id=job, name=job, **extra)

    def shutdown() -> None:
        try:
            scheduler.shutdown(wait=False)  # no new jobs; the one in flight is waited for below
        except SchedulerNotRunningError:
            pass

    def request_stop(signum: int, frame: object) -> None:
        if not stop.is_set():
            log.warning("stop requested; finishing the job in flight", signal=signal.Signals(signum).name)
        stop.set()
        shutdown()

    def on_started(event: object) -> None:
        jobs = {job.id: job.next_run_time.isoformat() for job in scheduler.get_jobs() if job.next_run_time}
        log.info("scheduler started", timezone=str(config.timezone), jobs=config.crons, next_runs=jobs,
                 catch_up=catch_up)
        if stop.is_set():  # a signal came before the scheduler ran
            shutdown()

    scheduler.add_listener(on_started, EVENT_SCHEDULER_STARTED)
    previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        scheduler.start()  # blocks until shutdown
        executor.shutdown(wait=True)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    log.info("scheduler stopped")
    return 0
