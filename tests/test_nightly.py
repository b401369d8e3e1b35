"""``monitor nightly`` end to end against the loopback replay server: ingest, classify, flag, one run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from conftest import write_rule

from monitor.config import load_settings
from monitor.lock import hold_lock
from monitor.nightly import run_nightly
from monitor.runs import ABANDONED, start_run
from monitor.testing.replay_server import Faults, ReplayServer, World

CONFIG = """
[http]
contact = "nightly-tests@example.org"
rate_limit = 5000
concurrency = 8
max_attempts = 2
backoff_initial = 0.0
backoff_max = 0.0
retry_after_floor = 0.0
retry_after_cap = 0.0

[prozorro]
page_limit = 25
since_days = 36500
"""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def world() -> World:
    return World.generated(60, contracts=15, plans=10, seed=4)


@pytest.fixture
def server(world: World, monkeypatch):
    with ReplayServer(world) as server:
        monkeypatch.setenv("MONITOR_PROZORRO_API_URL", server.url)
        yield server


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def log_lines(stderr: str) -> list[dict]:
    """The JSON log lines (every line on stderr is one when it is not a terminal)."""
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def finished_line(stderr: str) -> dict:
    lines = [line for line in log_lines(stderr) if line["event"] == "nightly finished"]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def runs(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT command, status, counts, error FROM runs ORDER BY run_id").fetchall()


def count(db: Path, sql: str) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def test_nightly_stores_classifies_flags_and_logs_one_summary_line(run_cli, db_path, config, server):
    code, out, err = run_cli("--db", db_path, "--config", config, "nightly")
    assert code == 0, err[-3000:]
    assert out == ""
    assert all(line.startswith("{") for line in err.splitlines())  # JSON lines: stderr is not a terminal
    summary = finished_line(err)
    assert summary["level"] == "info" and summary["status"] == "complete" and summary["exit_code"] == 0
    assert set(summary["sources"]) == {"prozorro-tenders", "prozorro-contracts", "prozorro-plans"}
    tenders = summary["sources"]["prozorro-tenders"]
    assert (tenders["status"], tenders["new"], tenders["updated"], tenders["quarantined"], tenders["retries"]) == \
        ("complete", 60, 0, 0, 0)
    assert summary["sources"]["prozorro-contracts"]["new"] == 15
    assert summary["sources"]["prozorro-plans"]["new"] == 10
    assert summary["ingest"]["new"] == 85 and summary["ingest"]["requests"] > 85
    assert summary["classified"]["processes"] == 60 and summary["classified"]["classifications"] > 0
    flags = summary["flags"]
    assert flags["new"] > 0 and flags["open"] == flags["new"] and flags["failed_rules"] == []
    assert set(summary["seconds"]) == {"ingest", "classify", "flag", "total"}
    assert summary["seconds"]["total"] >= summary["seconds"]["ingest"]

    assert count(db_path, "SELECT count(*) FROM processes") == 60
    assert count(db_path, "SELECT count(*) FROM classifications") == summary["classified"]["classifications"]
    assert count(db_path, "SELECT count(*) FROM flags WHERE resolved_at IS NULL") == flags["open"]
    [(command, status, counts, error)] = runs(db_path)  # one run, not an ingest run beside it
    assert (command, status, error) == ("nightly", "complete", None)
    assert json.loads(counts)["sources"] == summary["sources"]

    # a night killed (kill -9) before it could close its run row ...
    with duckdb.connect(str(db_path)) as con:
        killed = start_run(con, "nightly", "nightly")
    # ... then a second night with nothing new: nothing fetched again, no new flags, a run row of its own,
    # and the killed night's row closed as incomplete (holding the lock proves its process is gone)
    server.reset_log()
    code, out, err = run_cli("--db", db_path, "--config", config, "nightly")
    assert code == 0, err[-3000:]
    again = finished_line(err)
    assert again["ingest"]["new"] == 0 and server.count("object") == 0
    assert again["flags"]["new"] == 0 and again["flags"]["open"] == flags["open"]
    assert [r[:2] for r in runs(db_path)] == [("nightly", "complete"), ("nightly", "incomplete"),
                                              ("nightly", "complete")]
    assert runs(db_path)[1][3] == ABANDONED and again["run"] == killed + 1
    [closed] = [line for line in log_lines(err) if line["event"] == "closed a run its process left open"]
    assert (closed["level"], closed["run"], closed["command"]) == ("warning", killed, "nightly")


def test_a_failing_source_exits_1_while_the_others_run(run_cli, db_path, config, server):
    config.write_text(CONFIG + f"""
[[ocds.publishers]]
name = "unreachable"
url = "http://127.0.0.1:{closed_port()}/releases"
""", encoding="utf-8")
    code, out, err = run_cli("--db", db_path, "--config", config, "nightly")
    assert code == 1
    summary = finished_line(err)
    assert summary["level"] == "error" and summary["status"] == "failed" and summary["exit_code"] == 1
    assert summary["sources"]["unreachable"]["status"] == "failed"
    assert summary["sources"]["unreachable"]["retries"] == 1  # max_attempts = 2
    assert {summary["sources"][f"prozorro-{f}"]["status"] for f in ("tenders", "contracts", "plans")} == {"complete"}
    assert "unreachable" in summary["error"]
    assert summary["flags"] is not None  # classify and flag still ran on what was stored
    assert count(db_path, "SELECT count(*) FROM processes") == 60
    [(command, status, counts, error)] = runs(db_path)
    assert (command, status) == ("nightly", "failed") and "unreachable" in error


def test_run_nightly_with_a_server_answering_500_forever(db_path, config, server):
    server.faults = Faults(rate=1.0, kinds=("500",))
    result = run_nightly(load_settings(str(config), str(db_path)))  # the function the scheduler calls
    assert result.exit_code == 1 and result.status == "failed"
    summary = result.summary
    assert {s["status"] for s in summary["sources"].values()} == {"failed"}
    assert all(s["retries"] == 1 for s in summary["sources"].values())  # max_attempts = 2
    assert summary["run"] == 1 and runs(db_path)[0][:2] == ("nightly", "failed")


def test_nightly_exits_3_when_another_run_holds_the_lock(run_cli, db_path, config, server):
    with hold_lock(db_path, "ingest prozorro-tenders"):
        code, out, err = run_cli("--db", db_path, "--config", config, "nightly")
    assert code == 3
    assert f"another run holds the lock {db_path}.lock (pid {os.getpid()}, command 'ingest prozorro-tenders'" in err
    assert [line["event"] for line in log_lines(err)] == ["nightly not started: another run holds the lock"]
    assert server.count() == 0


def test_bad_source_configuration_exits_2(run_cli, db_path, config):
    config.write_text(CONFIG.replace("page_limit = 25", 'page_limit = 25\nfeeds = ["tenders", "auctions"]'))
    code, out, err = run_cli("--db", db_path, "--config", config, "nightly")
    assert code == 2 and "auctions" in err


def test_sigterm_stops_after_the_page_in_flight_and_records_incomplete(tmp_path, db_path, config):
    world = World.generated(400, seed=8)
    with ReplayServer(world, Faults(latency=0.02)) as server:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--db", str(db_path), "--config", str(config), "nightly"],
            env={**os.environ, "MONITOR_PROZORRO_API_URL": server.url}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while server.count("object") < 60 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
        assert process.poll() is None, "finished before the signal; make the world larger"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err[-3000:]
    summary = finished_line(err)
    assert summary["status"] == "incomplete"
    assert summary["sources"]["prozorro-tenders"]["status"] == "incomplete"
    assert 0 < summary["sources"]["prozorro-tenders"]["new"] < 400
    assert summary["classified"] is None and summary["flags"] is None  # the steps not started are skipped
    assert any(line["event"].startswith("stop requested") for line in log_lines(err))
    assert runs(db_path)[0][:2] == ("nightly", "incomplete")
    assert count(db_path, "SELECT count(*) FROM processes") == summary["sources"]["prozorro-tenders"]["new"]


@pytest.mark.flags_after_store
def test_a_rule_failing_at_run_time_exits_1_after_storing_the_data_and_the_other_rules_flags(
        run_cli, db_path, config, server, tmp_path, monkeypatch):
    rules = tmp_path / "rules"
    rules.mkdir()
    write_rule(rules, "every-process", "SELECT ocid AS subject_id, ocid FROM processes")
    # valid SQL that fails only on the data: an ocid is not a number
    write_rule(rules, "broken-cast", "SELECT ocid AS subject_id, ocid, ocid::INTEGER AS value FROM processes")
    monkeypatch.setattr("monitor.flags.rules.DEFAULT_DIR", rules)
    code, out, err = run_cli("--db", db_path, "--config", config, "nightly")
    assert code == 1, err[-3000:]
    summary = finished_line(err)
    assert summary["level"] == "error" and summary["status"] == "failed" and summary["exit_code"] == 1
    assert summary["flags"]["failed_rules"] == ["broken-cast"]
    assert "rule broken-cast: Conversion Error" in summary["error"]
    assert {s["status"] for s in summary["sources"].values()} == {"complete"}
    assert count(db_path, "SELECT count(*) FROM processes") == 60
    assert count(db_path, "SELECT count(*) FROM flags WHERE rule_id = 'every-process'") == 60
    assert count(db_path, "SELECT count(*) FROM flags WHERE rule_id = 'broken-cast'") == 0
    [(command, status, counts, error)] = runs(db_path)
    assert (command, status) == ("nightly", "failed") and "broken-cast" in error
