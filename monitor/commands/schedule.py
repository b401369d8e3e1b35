"""``monitor schedule [--once]``: the nightly run and the weekly report on cron triggers from the config."""

from __future__ import annotations

import threading

import click
import structlog

from monitor.cli import EXIT_FAILED, EXIT_LOCKED, BadInput, pass_app
from monitor.commands.nightly import stop_on_signals
from monitor.config import ConfigError
from monitor.scheduler import FAILED, LOCKED, run_due, run_scheduler, schedule_config

log = structlog.get_logger(__name__)


@click.command()
@click.option("--once", is_flag=True,
              help="Run the jobs that are due (scheduled since their last recorded run, or never run) and exit.")
@pass_app
def schedule(app, once: bool) -> None:
    """Run the nightly ingest and the weekly report on the [schedule] cron lines (long-running).

    Defaults: nightly "30 2 * * *", report "0 7 * * mon", timezone Europe/Kyiv. Jobs run one at a
    time under the database's lock (a job that finds it held is skipped); SIGTERM/SIGINT stop after
    the job in flight with exit code 0. --once exits 0 when every due job ran, 1 when one failed,
    3 when one was skipped because another run held the lock.
    """
    try:
        config = schedule_config(app.settings)
    except ConfigError as exc:
        raise BadInput(str(exc)) from exc
    if not config.triggers:
        raise BadInput("[schedule]: every job is off; nothing to schedule")
    if not once:
        raise click.exceptions.Exit(run_scheduler(app.settings, config))
    stop = threading.Event()
    with stop_on_signals(stop, "finishing the job in flight"):
        outcomes = run_due(app.settings, config, stop=stop)
    log.info("schedule --once finished", jobs=outcomes)
    values = set(outcomes.values())
    if FAILED in values:
        raise click.exceptions.Exit(EXIT_FAILED)
    if LOCKED in values:
        raise click.exceptions.Exit(EXIT_LOCKED)
