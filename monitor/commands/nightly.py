"""``monitor nightly``: ingest every enabled source, classify, flag; one run under the lock, for cron."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

import click
import structlog

from monitor.cli import BadInput, pass_app
from monitor.config import ConfigError
from monitor.lock import Locked
from monitor.nightly import run_nightly

log = structlog.get_logger(__name__)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, what: str = "finishing the page in flight") -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (main thread only) instead of killing the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum: int, frame: object) -> None:
        log.warning(f"stop requested; {what}", signal=signal.Signals(signum).name)
        stop.set()

    previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@click.command()
@pass_app
def nightly(app) -> None:
    """Ingest every enabled source, classify and flag, in one run holding the database's lock.

    For cron: JSON log lines when not on a terminal, one final `nightly finished` line with the
    counts and seconds per step. Exit code 0 fine, 1 a step failed (a failing source does not stop
    the others), 2 bad configuration, 3 another run holds the lock. SIGINT/SIGTERM stop after the
    page in flight; the run is then 'incomplete'.
    """
    stop = threading.Event()
    try:
        with stop_on_signals(stop):
            result = run_nightly(app.settings, stop=stop)
    except ConfigError as exc:
        raise BadInput(str(exc)) from exc
    except Locked as exc:
        log.error("nightly not started: another run holds the lock", lock=str(exc.path),
                  holder=exc.holder.describe() if exc.holder else None)
        raise
    if result.exit_code:
        raise click.exceptions.Exit(result.exit_code)
