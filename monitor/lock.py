"""One lock per database: ``<db>.lock`` beside it, so nightly, ingest and the scheduler's jobs never overlap.

The lock is an ``flock`` on the file, so the operating system releases it when its holder dies,
even by ``kill -9``. The file also says who holds it (pid, host, command, start time, one JSON line),
for the message a second run prints, and is emptied on a clean release. A run that gets the lock
and finds the file still naming a holder knows that holder died without cleaning up (a killed run);
it takes over and logs a warning naming the dead pid.

    with hold_lock(settings.db_path, "nightly") as holder:
        ...  # raises Locked (exit code 3) when a live run holds it
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import click
import orjson
import structlog

log = structlog.get_logger(__name__)

EXIT_LOCKED = 3  # as monitor.cli.EXIT_LOCKED (not imported: monitor.cli imports the commands)


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lock, as written in the lock file."""

    pid: int | None
    host: str | None
    command: str | None
    started_at: str | None

    def describe(self) -> str:
        where = f" on {self.host}" if self.host and self.host != socket.gethostname() else ""
        return (f"pid {self.pid if self.pid is not None else '?'}{where}, command {self.command or '?'!r}, "
                f"started at {self.started_at or '?'}")

    def alive(self) -> bool | None:
        """Whether the pid runs on this host; None when that cannot be known (another host, no pid)."""
        if self.pid is None or (self.host and self.host != socket.gethostname()):
            return None
        return _pid_alive(self.pid)


class Locked(click.ClickException):
    """Another run holds the lock: the command exits with code 3 and this message."""

    exit_code = EXIT_LOCKED

    def __init__(self, path: Path, holder: Holder | None) -> None:
        self.path, self.holder = path, holder
        who = holder.describe() if holder else "holder unknown (it has only just started)"
        note = ""
        if holder is not None and holder.alive() is False:
            note = "; that pid is gone, but a process it started still has the lock file open"
        super().__init__(f"another run holds the lock {path} ({who}{note}); try again when it has finished")


def lock_path(db_path: str | Path) -> Path:
    """``data/monitor.duckdb`` -> ``data/monitor.duckdb.lock``."""
    db = Path(db_path)
    if str(db) == ":memory:":
        raise ValueError("an in-memory database has no lock file")
    return db.with_name(db.name + ".lock")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _read_holder(fd: int) -> Holder | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = b""
    while chunk := os.read(fd, 65536):
        text += chunk
    text = text.strip()
    if not text:
        return None
    try:
        data = orjson.loads(text)
        if not isinstance(data, dict):
            raise ValueError
    except ValueError:
        return Holder(None, None, f"unreadable lock file content {text[:80]!r}", None)
    pid = data.get("pid")
    return Holder(pid if isinstance(pid, int) else None, data.get("host"), data.get("command"),
                  data.get("started_at"))


def _write_holder(fd: int, holder: Holder) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, orjson.dumps(dataclasses.asdict(holder)) + b"\n")


def read_holder(db_path: str | Path) -> Holder | None:
    """Who the lock file of ``db_path`` names (None: free, or no file). Does not take the lock."""
    try:
        fd = os.open(lock_path(db_path), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return _read_holder(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def hold_lock(db_path: str | Path, command: str) -> Iterator[Holder]:
    """Hold the lock of ``db_path`` for the ``with`` block; raise ``Locked`` when a live run holds it.

    Not re-entrant: a second ``hold_lock`` on the same database, even in the same process, is refused.
    """
    me = Holder(os.getpid(), socket.gethostname(), command, datetime.now(timezone.utc).isoformat(timespec="seconds"))
    if str(db_path) == ":memory:":  # nothing another process could share
        yield me
        return
    path = lock_path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            if holder is None:  # the holder has just taken it and not yet written its name
                time.sleep(0.05)
                holder = _read_holder(fd)
            raise Locked(path, holder) from None
        previous = _read_holder(fd)
        if previous is not None:
            alive = previous.alive()
            reason = {False: "its process is gone (killed?)", None: "it cannot be checked from this host",
                      True: "the pid runs but does not hold the lock (a reused pid)"}[alive]
            log.warning("taking over a stale lock", lock=str(path), pid=previous.pid, host=previous.host,
                        command=previous.command, started_at=previous.started_at, reason=reason)
        _write_holder(fd, me)
        try:
            yield me
        finally:
            os.ftruncate(fd, 0)  # emptied, not removed: removing a flock file lets two runs lock two files
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
