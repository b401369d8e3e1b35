"""Shared fixtures: a fresh database path per test, a CLI runner, fixture paths, a query helper.

Every test runs in its own temporary working directory with MONITOR_DB / MONITOR_CONFIG unset, so
a test that forgets ``--db`` can never write into the checkout, and a developer's environment or
``monitor.toml`` cannot change what the tests see. Nothing here touches the network.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable

import duckdb
import pytest
import structlog

from monitor.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROZORRO = FIXTURES / "prozorro"
PROZORRO_REAL = FIXTURES / "prozorro-real"
CARDINAL = FIXTURES / "cardinal" / "indicators"
OCDS = FIXTURES / "ocds"

# Real production records (see fixtures/prozorro-real/SOURCES.md).
MICROSCOPES = PROZORRO_REAL / "tender-aboveThresholdEU-2022-lviv-hospital-microscopes.json"
LIFT_REPAIR = PROZORRO_REAL / "tender-belowThreshold-2023-kyiv-lift-repair.json"
HEAT_CONTRACT = PROZORRO_REAL / "contract-2018-primary-health-centre-heat-3-price-changes.json"
OCDS_RECORDS = PROZORRO_REAL / "ocds-records-10-2017-2018.json"
OCDS_RELEASES = PROZORRO_REAL / "ocds-releases-10-2018.json"

# Tables a load writes; counted by the idempotency tests.
DATA_TABLES = (
    "raw_records",
    "quarantine",
    "processes",
    "lots",
    "items",
    "bids",
    "awards",
    "complaints",
    "bid_documents",
    "contracts",
    "contract_items",
    "contract_changes",
    "plans",
    "organizations",
)

SUMMARY = re.compile(
    r"loaded (?P<files>\d+) file\(s\): (?P<new>\d+) new, (?P<updated>\d+) updated, (?P<unchanged>\d+) unchanged, "
    r"(?P<older>\d+) older than stored, (?P<skipped>\d+) skipped, (?P<quarantined>\d+) quarantined"
)


@pytest.fixture(scope="session")
def _devnull():
    with open(os.devnull, "w") as handle:
        yield handle


def _quiet_logging(handle) -> None:
    """Send structlog output to the null device.

    ``main()`` points structlog at the ``sys.stderr`` of its call (capsys's stream in a test); once that
    test ends the stream is closed, and a later direct call of the library (``monitor.store.connect``)
    would log into a closed file. Resetting around every test keeps tests independent.
    """
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=handle))


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _devnull, request):
    monkeypatch.delenv("MONITOR_DB", raising=False)
    monkeypatch.delenv("MONITOR_CONFIG", raising=False)
    monkeypatch.delenv("MONITOR_REFERENCE_DIR", raising=False)
    # Loads in tests classify but do not evaluate all the flag rules (a second per load); tests about
    # flags evaluate them explicitly, or mark themselves with @pytest.mark.flags_after_store.
    if request.node.get_closest_marker("flags_after_store"):
        monkeypatch.delenv("MONITOR_AFTER_STORE", raising=False)
    else:
        monkeypatch.setenv("MONITOR_AFTER_STORE", "classify")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    _quiet_logging(_devnull)
    yield
    _quiet_logging(_devnull)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "m.duckdb"


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``monitor ARGS...`` in-process; return (exit code, stdout, stderr) of that call only."""

    def run(*args: Any) -> tuple[int, str, str]:
        capsys.readouterr()  # drop anything printed before this call
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def load(run_cli, db_path: Path) -> Callable[..., tuple[int, str, str]]:
    """``monitor --db <db_path> load PATH... [options]``."""

    def run(*paths: Any, options: tuple[str, ...] = ()) -> tuple[int, str, str]:
        return run_cli("--db", db_path, "load", *paths, *options)

    return run


_LOAD_CACHE: dict[tuple[str, ...], tuple[Path, tuple[int, str, str]]] = {}


@pytest.fixture(scope="session")
def _load_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("load-cache")


@pytest.fixture
def load_once(run_cli, db_path: Path, _load_cache_dir: Path) -> Callable[..., tuple[int, str, str]]:
    """Like ``load`` for tests that only read the result: the first test to load a set of paths runs
    the real command; later ones get a copy of that database file and the same (code, out, err).
    Keeps the suite fast; tests that write after loading use ``load``."""

    def run(*paths: Any) -> tuple[int, str, str]:
        key = tuple(str(p) for p in paths)
        if key not in _LOAD_CACHE:
            target = _load_cache_dir / f"{len(_LOAD_CACHE)}.duckdb"
            _LOAD_CACHE[key] = (target, run_cli("--db", target, "load", *paths))
        target, result = _LOAD_CACHE[key]
        shutil.copyfile(target, db_path)
        return result

    return run


@pytest.fixture
def query(db_path: Path) -> Callable[..., list[tuple]]:
    """Rows of a SQL query on the test database, opened read-only (and closed) per call."""

    def run(sql: str, params: list[Any] | None = None) -> list[tuple]:
        con = duckdb.connect(str(db_path), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    return run


@pytest.fixture
def query_one(query) -> Callable[..., Any]:
    """The single row of a query (asserting there is exactly one)."""

    def run(sql: str, params: list[Any] | None = None) -> tuple:
        rows = query(sql, params)
        assert len(rows) == 1, f"expected one row from {sql!r}, got {rows!r}"
        return rows[0]

    return run


def summary(stdout: str) -> dict[str, int]:
    """The counts of the ``loaded N file(s): ...`` line printed by ``monitor load``."""
    match = SUMMARY.search(stdout)
    assert match, f"no load summary line in {stdout!r}"
    return {k: int(v) for k, v in match.groupdict().items()}


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def body(document: dict[str, Any]) -> dict[str, Any]:
    """The object inside an API envelope, or the object itself."""
    return document["data"] if isinstance(document.get("data"), dict) else document


def mutated(path: Path, change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """A deep copy of a fixture's record (without envelope) after ``change(record)``."""
    record = copy.deepcopy(body(read_json(path)))
    change(record)
    return record


RULE = """id: {id}
title: Test rule
kind: anomaly
severity: low
subject: process
description: A rule written by the test.
query: |
  {query}
"""


RULES_DIR = Path(__file__).resolve().parent.parent / "rules" / "flags"
RULE_FIXTURES = RULES_DIR / "fixtures"


def shipped_rule(rule_id: str):
    """The shipped rule ``rules/flags/<rule_id>.yaml``."""
    from monitor.flags.rules import load_rules

    return load_rules(RULES_DIR / f"{rule_id}.yaml")[0]


def rule_flags(tmp_path: Path, rule_id: str, *fixtures: Path, params: dict[str, Any] | None = None) -> dict[str, dict]:
    """Open flags of one shipped rule after loading ``fixtures`` into a scratch database of their own
    (a new one at each call): subject_id -> {value, ocid, evidence}."""
    from monitor.flags.engine import evaluate
    from monitor.flags.examples import load_into

    db = tmp_path / f"{rule_id}-{len(list(tmp_path.glob(f'{rule_id}-*.duckdb')))}.duckdb"
    load_into(db, list(fixtures))
    outcome = evaluate(db, [shipped_rule(rule_id)], overrides={rule_id: params or {}})
    assert not outcome.failed, outcome.failed[0].error
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT subject_id, ocid, value, evidence FROM flags WHERE rule_id = ? AND resolved_at IS NULL",
                           [rule_id]).fetchall()
    return {subject: {"ocid": ocid, "value": value, "evidence": json.loads(evidence)}
            for subject, ocid, value, evidence in rows}


def only(found: dict[str, dict]) -> dict:
    assert len(found) == 1, f"expected one flag, got {sorted(found)}"
    return next(iter(found.values()))


def write_rule(folder: Path, rule_id: str, query: str) -> Path:
    """A flag rule file ``folder/<rule_id>.yaml`` around ``query`` (the query starts on line 8)."""
    path = folder / f"{rule_id}.yaml"
    path.write_text(RULE.format(id=rule_id, query=query), encoding="utf-8")
    return path


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def read_lines(path: Path) -> list[dict]:
    """The documents of a JSON Lines file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_lines(path: Path, lines: list[bytes | str | dict]) -> Path:
    """A JSON Lines file; dicts are serialised compactly, str/bytes written as given."""
    with path.open("wb") as handle:
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line, ensure_ascii=False)
            if isinstance(line, str):
                line = line.encode("utf-8")
            handle.write(line + b"\n")
    return path


def table_counts(db: Path) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in DATA_TABLES}
    finally:
        con.close()


# A process that has the database open, as a monitor run or a bare DuckDB session (tests of exit code 3).
DUCKDB_SCRIPT = textwrap.dedent("""
    import sys, duckdb
    from monitor.lock import hold_lock
    def hold():
        con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "read")
        print("open", flush=True)
        sys.stdin.read()  # until the test closes stdin
        con.close()
    if sys.argv[3] == "monitor-run":
        with hold_lock(sys.argv[1], "nightly"):
            hold()
    else:
        hold()
""")


@pytest.fixture
def open_elsewhere(db_path: Path, load):
    """Start a process that has the (loaded) database open ``mode`` ("read"/"write"), as a monitor run
    or as a bare DuckDB session; closed when the test ends."""
    assert load(Path(__file__).resolve().parent.parent / "data" / "sample" / "plan-complete.json")[0] == 0
    processes = []

    def start(mode: str, who: str) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", DUCKDB_SCRIPT, str(db_path), mode, who],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        processes.append(process)
        assert process.stdout.readline().strip() == "open"
        return process

    yield start
    for process in processes:
        process.stdin.close()
        process.wait(timeout=10)
