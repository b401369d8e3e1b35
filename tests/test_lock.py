"""The database lock: one run at a time, a clear message for the second, stale locks taken over."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest
from structlog.testing import capture_logs

from monitor.lock import Holder, Locked, hold_lock, lock_path, read_holder

HOLDER_SCRIPT = textwrap.dedent("""
    import sys
    from monitor.lock import hold_lock
    with hold_lock(sys.argv[1], "helper holding the lock"):
        print("held", flush=True)
        sys.stdin.read()  # until the test closes stdin (or kills this process)
""")


@pytest.fixture
def holder_process(db_path: Path):
    """A separate process holding the lock of ``db_path`` until the test ends (or kills it)."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER_SCRIPT, str(db_path)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    yield process
    if process.poll() is None:
        process.stdin.close()
        process.wait(timeout=10)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_lock_file_names_the_holder_and_is_emptied_on_release(db_path: Path):
    with hold_lock(db_path, "nightly") as me:
        assert lock_path(db_path) == db_path.with_name("m.duckdb.lock")
        written = orjson.loads(lock_path(db_path).read_bytes())
        assert written == {"pid": os.getpid(), "host": socket.gethostname(), "command": "nightly",
                           "started_at": me.started_at}
        assert read_holder(db_path) == me
    assert lock_path(db_path).read_bytes() == b""
    assert read_holder(db_path) is None


def test_a_second_holder_in_the_same_process_is_refused(db_path: Path):
    with hold_lock(db_path, "ingest prozorro-tenders") as me:
        with pytest.raises(Locked) as refused:
            with hold_lock(db_path, "nightly"):
                pass
    assert refused.value.exit_code == 3
    message = refused.value.message
    assert f"pid {os.getpid()}" in message and "'ingest prozorro-tenders'" in message
    assert f"started at {me.started_at}" in message and str(lock_path(db_path)) in message


def test_a_holder_in_another_process_makes_nightly_ingest_and_load_exit_3(run_cli, db_path, holder_process):
    sample = Path(__file__).resolve().parent.parent / "data" / "sample" / "plan-complete.json"
    for command in (["nightly"], ["ingest", "prozorro-tenders"], ["load", str(sample)]):
        code, out, err = run_cli("--db", db_path, *command)
        assert code == 3, err
        assert "another run holds the lock" in err
        assert f"pid {holder_process.pid}" in err and "helper holding the lock" in err and "started at 20" in err
    assert not db_path.exists()  # refused before opening the database


def test_a_killed_holders_lock_is_taken_over_with_a_warning_naming_its_pid(db_path, holder_process):
    with pytest.raises(Locked):
        with hold_lock(db_path, "nightly"):
            pass
    holder_process.send_signal(signal.SIGKILL)
    holder_process.wait()
    assert read_holder(db_path).pid == holder_process.pid  # the killed run could not clean up
    with capture_logs() as logs:
        with hold_lock(db_path, "nightly") as me:
            assert me.pid == os.getpid()
    warnings = [e for e in logs if e["event"] == "taking over a stale lock"]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
    assert warnings[0]["pid"] == holder_process.pid and "gone" in warnings[0]["reason"]


def test_a_leftover_lock_file_with_a_dead_pid_is_taken_over(db_path: Path):
    pid = dead_pid()
    lock_path(db_path).write_bytes(orjson.dumps({"pid": pid, "host": socket.gethostname(), "command": "nightly",
                                                 "started_at": "2026-11-20T00:30:00+00:00"}))
    with capture_logs() as logs:
        with hold_lock(db_path, "schedule: nightly"):
            assert read_holder(db_path).command == "schedule: nightly"
    assert [(e["event"], e["pid"], e["command"]) for e in logs] == [("taking over a stale lock", pid, "nightly")]
    # and a clean release leaves nothing to take over
    with capture_logs() as logs:
        with hold_lock(db_path, "nightly"):
            pass
    assert logs == []


def test_unreadable_lock_file_content_is_taken_over(db_path: Path):
    lock_path(db_path).write_bytes(b"\x00garbage")
    with capture_logs() as logs:
        with hold_lock(db_path, "nightly"):
            pass
    assert [e["event"] for e in logs] == ["taking over a stale lock"]


def test_the_lock_is_released_after_an_exception(db_path: Path):
    with pytest.raises(RuntimeError, match="boom"):
        with hold_lock(db_path, "nightly"):
            raise RuntimeError("boom")
    assert read_holder(db_path) is None
    with hold_lock(db_path, "nightly"):
        pass


def test_holder_description_mentions_another_host():
    holder = Holder(42, "elsewhere.example.org", "nightly", "2026-11-20T00:30:00+00:00")
    assert holder.describe() == ("pid 42 on elsewhere.example.org, command 'nightly', "
                                 "started at 2026-11-20T00:30:00+00:00")
    assert holder.alive() is None


# --- the database itself open elsewhere: DuckDB lets one process write, or any number read ---------------

def test_reading_commands_exit_3_naming_the_run_that_writes(run_cli, db_path, open_elsewhere):
    writer = open_elsewhere("write", "monitor-run")
    for command in (["status"], ["query", "SELECT count(*) FROM plans"], ["report", "--out", db_path.parent / "r"],
                    ["export", "--format", "csv", "--out", db_path.parent / "x"]):
        code, _, err = run_cli("--db", db_path, *command)
        assert code == 3, (command, err)
        assert f"database {db_path} is being written by a run of this tool (pid {writer.pid}" in err
        assert "command 'nightly'" in err and "try again when it has finished" in err


def test_reading_commands_exit_3_naming_a_process_outside_the_tool(run_cli, db_path, open_elsewhere):
    writer = open_elsewhere("write", "duckdb-session")
    code, _, err = run_cli("--db", db_path, "query", "SELECT 1")
    assert code == 3
    assert "is being written by another process (" in err and f"(PID {writer.pid}))" in err


def test_a_writing_command_exits_3_while_another_process_reads(run_cli, db_path, open_elsewhere, query):
    reader = open_elsewhere("read", "duckdb-session")
    sample = Path(__file__).resolve().parent.parent / "data" / "sample"
    code, _, err = run_cli("--db", db_path, "load", sample)
    assert code == 3
    assert "is open in another process (" in err and f"(PID {reader.pid}))" in err
    assert "DuckDB writes a database only when no other process has it open" in err
    assert lock_path(db_path).read_bytes() == b""  # the run lock was let go
    assert query("SELECT count(*) FROM raw_records") == [(1,)]  # nothing of the refused load stored
