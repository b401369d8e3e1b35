"""``monitor schedule``: [schedule] parsing, due jobs (--once), the lock, a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import types
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from apscheduler.triggers.cron import CronTrigger

from monitor.config import ConfigError, Settings, load_settings
from monitor.lock import hold_lock
from monitor.scheduler import _crontab_days, cron_trigger, is_due, last_fire_time, schedule_config
from monitor.store import connect
from monitor.testing.replay_server import Faults, ReplayServer, World

KYIV = ZoneInfo("Europe/Kyiv")

BASE = """
[http]
rate_limit = 5000
concurrency = 8
max_attempts = 2
backoff_initial = 0.0
backoff_max = 0.0

[prozorro]
page_limit = 25
since_days = 36500
"""


def write_config(tmp_path: Path, schedule: str) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(BASE + "\n[schedule]\n" + schedule, encoding="utf-8")
    return path


def runs(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT command, status, arguments FROM runs ORDER BY run_id").fetchall()


@pytest.fixture
def fake_report(monkeypatch):
    """``monitor.report.write_report`` replaced (the report module is not what is tested here)."""
    calls: list[Settings] = []

    def write_report(settings: Settings) -> types.SimpleNamespace:
        calls.append(settings)
        if getattr(write_report, "fail", False):
            raise RuntimeError("template missing")
        return types.SimpleNamespace(week="2026-W47", out_dir=Path("data/reports/2026-W47"))

    module = types.ModuleType("monitor.report")
    module.write_report = write_report
    monkeypatch.setitem(sys.modules, "monitor.report", module)
    write_report.calls = calls
    return write_report


# --- configuration ---------------------------------------------------------------------------

def test_defaults_without_a_config_file():
    config = schedule_config(Settings())
    assert config.crons == {"nightly": "30 2 * * *", "report": "0 7 * * mon"}
    assert str(config.timezone) == "Europe/Kyiv" and config.misfire_grace_time == 6 * 3600
    friday_noon = datetime(2026, 11, 20, 12, 0, tzinfo=KYIV)
    assert config.triggers["nightly"].get_next_fire_time(None, friday_noon) == datetime(2026, 11, 21, 2, 30,
                                                                                         tzinfo=KYIV)
    assert config.triggers["report"].get_next_fire_time(None, friday_noon) == datetime(2026, 11, 23, 7, 0,
                                                                                        tzinfo=KYIV)


def test_config_file_values_and_disabled_jobs(tmp_path):
    path = write_config(tmp_path, 'nightly = "15 1 * * 1-5"\nreport = "off"\ntimezone = "UTC"\n'
                                  "misfire_grace_time = 600\n")
    config = schedule_config(load_settings(str(path)))
    assert config.crons == {"nightly": "15 1 * * 1-5"} and list(config.triggers) == ["nightly"]
    assert str(config.timezone) == "UTC" and config.misfire_grace_time == 600


@pytest.mark.parametrize(("field", "days"), [
    ("*", "*"), ("1", "mon"), ("0", "sun"), ("7", "sun"), ("mon", "mon"), ("1-5", "mon,tue,wed,thu,fri"),
    ("5-7", "sun,fri,sat"), ("*/2", "sun,tue,thu,sat"), ("sat,sun", "sun,sat"), ("0-6", "*"),
    ("mon-fri/2", "mon,wed,fri"),
])
def test_crontab_day_numbers_mean_what_crontab_means(field, days):
    assert _crontab_days(field) == days


def test_a_numeric_monday_fires_on_monday():
    trigger = cron_trigger("0 7 * * 1", KYIV)
    fire = trigger.get_next_fire_time(None, datetime(2026, 11, 20, 12, 0, tzinfo=KYIV))
    assert fire == datetime(2026, 11, 23, 7, 0, tzinfo=KYIV) and fire.weekday() == 0


def fire_times(trigger, start: datetime, until: datetime) -> list[datetime]:
    """Every fire time from ``start`` to ``until`` (inclusive), as the scheduler asks the trigger."""
    times: list[datetime] = []
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire <= until:
        times.append(fire)
        fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    return times


def at_3(*days: tuple[int, int, int]) -> list[datetime]:
    return [datetime(year, month, day, 3, 0, tzinfo=KYIV) for year, month, day in days]


def test_day_of_month_and_day_of_week_both_restricted_fire_on_either_as_crontab_does(tmp_path):
    """``0 3 1,15 * mon``: every 1st, every 15th and every Monday (APScheduler alone wants a Monday 1st or 15th)."""
    config = schedule_config(load_settings(str(write_config(tmp_path, 'report = "0 3 1,15 * mon"\n'))))
    trigger = config.triggers["report"]
    assert fire_times(trigger, datetime(2026, 11, 20, 12, 0, tzinfo=KYIV), datetime(2027, 1, 1, 3, 0, tzinfo=KYIV)) \
        == at_3((2026, 11, 23), (2026, 11, 30), (2026, 12, 1), (2026, 12, 7), (2026, 12, 14), (2026, 12, 15),
                (2026, 12, 21), (2026, 12, 28), (2027, 1, 1))
    # a Monday that is the 1st or the 15th fires once
    assert fire_times(trigger, datetime(2027, 1, 20, tzinfo=KYIV), datetime(2027, 2, 28, tzinfo=KYIV)) \
        == at_3((2027, 1, 25), (2027, 2, 1), (2027, 2, 8), (2027, 2, 15), (2027, 2, 22))
    # the numeric day of week keeps crontab's meaning in the combined trigger (1 = Monday, not Tuesday)
    assert fire_times(cron_trigger("0 3 15 * 1", KYIV), datetime(2026, 11, 20, 12, 0, tzinfo=KYIV),
                      datetime(2026, 12, 15, 3, 0, tzinfo=KYIV)) \
        == at_3((2026, 11, 23), (2026, 11, 30), (2026, 12, 7), (2026, 12, 14), (2026, 12, 15))


@pytest.mark.parametrize(("line", "days"), [
    ("0 3 * * mon", ((2026, 11, 23), (2026, 11, 30), (2026, 12, 7), (2026, 12, 14), (2026, 12, 21),
                     (2026, 12, 28))),
    ("0 3 1 * *", ((2026, 12, 1), (2027, 1, 1))),
    ("0 3 1,15 * *", ((2026, 12, 1), (2026, 12, 15), (2027, 1, 1))),
])
def test_a_line_with_one_day_field_restricted_is_unchanged(line, days):
    trigger = cron_trigger(line, KYIV)
    assert isinstance(trigger, CronTrigger)  # one cron trigger, as before: the other field's * adds nothing
    assert fire_times(trigger, datetime(2026, 11, 20, 12, 0, tzinfo=KYIV),
                      datetime(2027, 1, 1, 3, 0, tzinfo=KYIV)) == at_3(*days)


def test_a_day_field_counts_as_unrestricted_when_it_starts_with_a_star_as_in_vixie_cron():
    """cronie's entry.c sets DOM_STAR/DOW_STAR from the field's first character, before expanding it."""
    start, until = datetime(2026, 11, 20, 12, 0, tzinfo=KYIV), datetime(2026, 12, 31, 3, 0, tzinfo=KYIV)
    # */2 starts with *: both fields must match (odd days that are Mondays)
    assert fire_times(cron_trigger("0 3 */2 * mon", KYIV), start, until) \
        == at_3((2026, 11, 23), (2026, 12, 7), (2026, 12, 21))
    # 1-31/2 names the same days but does not start with *: odd days or Mondays
    assert fire_times(cron_trigger("0 3 1-31/2 * mon", KYIV), start, datetime(2026, 12, 3, 3, 0, tzinfo=KYIV)) \
        == at_3((2026, 11, 21), (2026, 11, 23), (2026, 11, 25), (2026, 11, 27), (2026, 11, 29), (2026, 11, 30),
                (2026, 12, 1), (2026, 12, 3))
    # 0-7 is every day of the week, restricted all the same: the 1st or any day, so every day
    assert len(fire_times(cron_trigger("0 3 1 * 0-7", KYIV), start, until)) == 41


@pytest.mark.parametrize(("schedule", "message"), [
    ('nightly = "61 2 * * *"', "nightly = '61 2 * * *'"),
    ('report = "0 7 * *"', "4 field(s); crontab syntax has 5"),
    ('nightly = "30 2 * * funday"', "day of week 'funday'"),
    ('timezone = "Mars/Olympus"', "'Mars/Olympus' is not a known time zone"),
    ("misfire_grace_time = -5", "misfire_grace_time = -5"),
    ('weekly = "0 7 * * mon"', "unknown key(s) weekly"),
    ("nightly = 230", "a crontab line in quotes"),
    ('nightly = "off"\nreport = ""', "every job is off"),
])
def test_bad_schedule_configuration_exits_2_with_a_clear_message(run_cli, tmp_path, db_path, schedule, message):
    code, out, err = run_cli("--db", db_path, "--config", write_config(tmp_path, schedule), "schedule", "--once")
    assert code == 2
    assert message in err
    assert not db_path.exists()


def test_schedule_config_error_names_the_file(tmp_path):
    path = write_config(tmp_path, 'timezone = "Nowhere"\n')
    with pytest.raises(ConfigError, match=rf"config file {path}: \[schedule\] timezone"):
        schedule_config(load_settings(str(path)))


# --- when a job is due -----------------------------------------------------------------------

def test_last_fire_time_looks_back_far_enough():
    monday = cron_trigger("0 7 * * mon", KYIV)
    assert last_fire_time(monday, datetime(2026, 11, 23, 6, 59, tzinfo=KYIV)) == datetime(2026, 11, 16, 7, 0,
                                                                                          tzinfo=KYIV)
    assert last_fire_time(monday, datetime(2026, 11, 23, 7, 0, tzinfo=KYIV)) == datetime(2026, 11, 23, 7, 0,
                                                                                         tzinfo=KYIV)
    yearly = cron_trigger("0 0 1 1 *", KYIV)
    assert last_fire_time(yearly, datetime(2026, 11, 23, tzinfo=KYIV)) == datetime(2026, 1, 1, tzinfo=KYIV)
    minutely = cron_trigger("* * * * *", KYIV)
    assert last_fire_time(minutely, datetime(2026, 11, 23, 7, 0, 30, tzinfo=KYIV)) == datetime(2026, 11, 23, 7, 0,
                                                                                               tzinfo=KYIV)


def test_last_fire_time_and_is_due_with_either_day_field_matching(db_path):
    either = cron_trigger("0 3 1,15 * mon", KYIV)
    tuesday_1st = datetime(2026, 12, 1, 3, 0, tzinfo=KYIV)
    assert last_fire_time(either, datetime(2026, 12, 2, 12, 0, tzinfo=KYIV)) == tuesday_1st
    assert last_fire_time(either, datetime(2026, 12, 1, 2, 59, tzinfo=KYIV)) == datetime(2026, 11, 30, 3, 0,
                                                                                         tzinfo=KYIV)
    con = connect(db_path)
    try:
        con.execute("INSERT INTO runs (command, started_at, status) VALUES ('report', ?, 'complete')",
                    [datetime(2026, 11, 30, 3, 0, 5, tzinfo=KYIV)])
        assert not is_due(con, "report", either, datetime(2026, 11, 30, 23, 0, tzinfo=KYIV))
        assert is_due(con, "report", either, datetime(2026, 12, 1, 4, 0, tzinfo=KYIV), within=6 * 3600)
    finally:
        con.close()


def test_is_due_compares_the_last_scheduled_time_with_the_last_recorded_run(db_path):
    report = cron_trigger("0 7 * * mon", KYIV)
    con = connect(db_path)
    try:
        assert is_due(con, "report", report, datetime(2026, 11, 23, 8, 0, tzinfo=KYIV))  # never ran
        con.execute("INSERT INTO runs (command, started_at, status) VALUES ('report', ?, 'complete')",
                    [datetime(2026, 11, 16, 7, 0, 5, tzinfo=KYIV)])
        assert not is_due(con, "report", report, datetime(2026, 11, 23, 6, 59, tzinfo=KYIV))
        assert is_due(con, "report", report, datetime(2026, 11, 23, 7, 1, tzinfo=KYIV))
        # a run of another command does not count; the grace window limits a catch-up at start
        assert is_due(con, "nightly", cron_trigger("30 2 * * *", KYIV), datetime(2026, 11, 23, 3, 0, tzinfo=KYIV))
        assert not is_due(con, "report", report, datetime(2026, 11, 23, 14, 0, tzinfo=KYIV), within=6 * 3600)
    finally:
        con.close()


# --- --once ----------------------------------------------------------------------------------

def test_once_runs_the_due_report_and_not_again(run_cli, tmp_path, db_path, fake_report):
    config = write_config(tmp_path, 'nightly = "off"\n')
    code, out, err = run_cli("--db", db_path, "--config", config, "schedule", "--once")
    assert code == 0, err
    assert len(fake_report.calls) == 1 and fake_report.calls[0].db_path == db_path
    assert runs(db_path) == [("report", "complete", "report (scheduled)")]
    code, out, err = run_cli("--db", db_path, "--config", config, "schedule", "--once")
    assert code == 0, err
    assert len(fake_report.calls) == 1  # not due: it ran after its last scheduled time
    assert len(runs(db_path)) == 1
    assert '"job not due"' in err


def test_once_runs_the_nightly_against_the_replay_server_then_the_report(run_cli, tmp_path, db_path, fake_report,
                                                                         monkeypatch):
    config = write_config(tmp_path, 'timezone = "UTC"\n')
    with ReplayServer(World.generated(30, seed=2)) as server:
        monkeypatch.setenv("MONITOR_PROZORRO_API_URL", server.url)
        code, out, err = run_cli("--db", db_path, "--config", config, "schedule", "--once")
        assert code == 0, err[-3000:]
        assert [r[:2] for r in runs(db_path)] == [("nightly", "complete"), ("report", "complete")]
        server.reset_log()
        code, out, err = run_cli("--db", db_path, "--config", config, "schedule", "--once")
        assert code == 0 and server.count() == 0 and len(runs(db_path)) == 2
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM processes").fetchone() == (30,)
    finished = [json.loads(line) for line in err.splitlines() if '"schedule --once finished"' in line]
    assert finished[0]["jobs"] == {"nightly": "not due", "report": "not due"}


def test_once_skips_a_job_when_the_lock_is_held_and_exits_3(run_cli, tmp_path, db_path, fake_report):
    config = write_config(tmp_path, 'nightly = "off"\n')
    with hold_lock(db_path, "nightly"):
        code, out, err = run_cli("--db", db_path, "--config", config, "schedule", "--once")
    assert code == 3
    assert fake_report.calls == []
    skipped = [json.loads(line) for line in err.splitlines() if "job skipped" in line]
    assert skipped[0]["job"] == "report" and f"pid {os.getpid()}, command 'nightly'" in skipped[0]["holder"]
    code, out, err = run_cli("--db", db_path, "--config", config, "schedule", "--once")  # still due: runs now
    assert code == 0 and len(fake_report.calls) == 1


def test_a_failing_job_is_recorded_and_exits_1(run_cli, tmp_path, db_path, fake_report):
    fake_report.fail = True
    config = write_config(tmp_path, 'nightly = "off"\n')
    code, out, err = run_cli("--db", db_path, "--config", config, "schedule", "--once")
    assert code == 1
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert con.execute("SELECT command, status, error FROM runs").fetchall() == \
            [("report", "failed", "template missing")]


# --- the long-running scheduler --------------------------------------------------------------

def test_sigterm_stops_the_scheduler_after_the_job_in_flight(tmp_path, db_path):
    """A job every minute: it runs at once (catch-up at start), SIGTERM during it, exit 0 soon after."""
    config = write_config(tmp_path, 'nightly = "* * * * *"\nreport = "off"\ntimezone = "UTC"\n')
    with ReplayServer(World.generated(600, seed=6), Faults(latency=0.02)) as server:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--db", str(db_path), "--config", str(config), "schedule"],
            env={**os.environ, "MONITOR_PROZORRO_API_URL": server.url}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        lines: list[dict] = []

        def read() -> None:
            for line in process.stderr:
                lines.append(json.loads(line))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.monotonic() + 10
        while server.count("object") < 30 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
        assert process.poll() is None and server.count("object") >= 30, lines
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0, lines
        reader.join(timeout=5)
    events = [line["event"] for line in lines]
    assert events.index("scheduler started") < events.index("job started") < events.index("nightly finished") \
        < events.index("job finished") < events.index("scheduler stopped")
    started = next(line for line in lines if line["event"] == "scheduler started")
    assert started["catch_up"] == ["nightly"] and started["jobs"] == {"nightly": "* * * * *"}
    assert any(e.startswith("stop requested") for e in events)
    assert [r[:2] for r in runs(db_path)] == [("nightly", "incomplete")]


def test_once_skips_a_job_while_another_process_has_the_database_open_and_exits_3(run_cli, tmp_path, db_path,
                                                                                   fake_report, open_elsewhere):
    """An analyst's notebook holding the file read-only: the job is skipped with a warning, not a traceback."""
    config = write_config(tmp_path, 'nightly = "off"\n')
    reader = open_elsewhere("read", "duckdb-session")
    code, out, err = run_cli("--db", db_path, "--config", config, "schedule", "--once")
    assert code == 3, err[-2000:]
    assert fake_report.calls == []
    skipped = [json.loads(line) for line in err.splitlines() if "job skipped" in line]
    assert skipped[0]["event"] == "job skipped: the database is open in another process"
    assert skipped[0]["job"] == "report" and f"(PID {reader.pid})" in skipped[0]["error"]
    assert "Traceback" not in err
