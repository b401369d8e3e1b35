"""Incremental rules (monitor/flags/incremental.py): a rule marked ``incremental: true`` is evaluated, after its
first evaluation, on the processes the normalizer and the classifier logged as changed since (process_changes),
and must leave exactly the flags a full evaluation would.

The main test loads half of the rule fixtures (real ProZorro tenders and OCDS releases, every rule's firing and
quiet examples), evaluates every shipped rule, then loads the other half and newer copies of some stored
tenders changed the way tenders change (a bid withdrawn, values raised, contracts gone), and compares the
incremental evaluation with a full one on a copy of the same database: the whole flags table, history included.
"""

from __future__ import annotations

import copy
import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from conftest import RULE_FIXTURES, read_lines, write_lines, write_rule
from monitor.flags.engine import evaluate
from monitor.flags.examples import load_into
from monitor.flags.incremental import PROCESS_TABLES
from monitor.flags.rules import RuleError, load_rules
from monitor.store import connect

AS_OF = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)  # the demo world's snapshot: the fixtures' present
T1, T2 = datetime(2026, 11, 20, 12, tzinfo=timezone.utc), datetime(2026, 11, 21, 12, tzinfo=timezone.utc)


def fixture_documents(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return read_lines(path)
    value = json.loads(path.read_text(encoding="utf-8"))
    return value if isinstance(value, list) else [value]


def changed_copy(document: dict, n: int) -> dict:
    """A newer copy of a ProZorro tender, changed one of three ways by ``n``."""
    changed = copy.deepcopy(document)
    tender = changed["data"]
    tender["dateModified"] = (datetime.fromisoformat(tender["dateModified"]) + timedelta(days=30)).isoformat()
    if n % 3 == 0 and tender.get("bids"):
        tender["bids"] = tender["bids"][:1]  # the others withdrawn
    elif n % 3 == 1:
        for each in tender.get("awards", []) + tender.get("contracts", []):
            if isinstance(each.get("value"), dict) and each["value"].get("amount"):
                each["value"]["amount"] = round(each["value"]["amount"] * 1.4, 2)
    else:
        tender.pop("contracts", None)
    return changed


def flags_table(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT * EXCLUDE (evidence), evidence::VARCHAR FROM flags ORDER BY ALL").fetchall()


def test_incremental_evaluation_leaves_the_flags_a_full_one_would(tmp_path, monkeypatch):
    rules = load_rules()
    incremental = {r.id for r in rules if r.incremental}
    assert {"cardinal-r018-single-bid", "anomaly-contract-value-increase"} <= incremental
    files = sorted(RULE_FIXTURES.glob("*.json*"))
    first, second = files[::2], files[1::2]
    db = tmp_path / "incremental.duckdb"
    load_into(db, first)
    initial = evaluate(db, rules, as_of=AS_OF, now=T1)
    assert not initial.failed and initial.changed_processes is None  # the first time: every process

    tenders = [d for path in first for d in fixture_documents(path) if "tenderID" in d.get("data", {})]
    changes = write_lines(tmp_path / "changed.jsonl", [changed_copy(d, n) for n, d in enumerate(tenders)])
    load_into(db, second + [changes])
    full_db, many_db = tmp_path / "full.duckdb", tmp_path / "many.duckdb"
    shutil.copyfile(db, full_db)
    shutil.copyfile(db, many_db)
    with duckdb.connect(str(db), read_only=True) as con:
        logged, processes = con.execute("SELECT (SELECT count(DISTINCT ocid) FROM process_changes), "
                                        "(SELECT count(*) FROM processes)").fetchall()[0]

    # so many changed processes (more than a fifth) that every rule runs on the whole database
    many = evaluate(many_db, rules, as_of=AS_OF, now=T2)
    assert many.changed_processes is None and not any(o.changed_only for o in many.outcomes)
    monkeypatch.setattr("monitor.flags.engine.FULL_SHARE", 1.0)  # and now on the changed processes, however many
    later = evaluate(db, rules, as_of=AS_OF, now=T2)
    assert not later.failed
    assert later.changed_processes == logged and 0 < logged < processes
    assert {o.rule_id for o in later.outcomes if o.changed_only} == incremental
    full = evaluate(full_db, rules, as_of=AS_OF, now=T2, full=True)
    assert not any(o.changed_only for o in full.outcomes)
    assert flags_table(db) == flags_table(full_db) == flags_table(many_db)
    assert (later.new, later.changed, later.resolved) == (full.new, full.changed, full.resolved)
    assert not later.unchanged  # every rule with a watermark had changes to see

    # nothing changed since: the rules reading process rows alone are not evaluated, their flags stand, and
    # those reading the clock, plans or organizations are evaluated again
    before = flags_table(db)
    again = evaluate(db, rules, as_of=AS_OF, now=T2 + timedelta(days=1))
    data_bound = {r.id for r in rules if r.data_bound}
    assert incremental < data_bound < {r.id for r in rules}
    assert {o.rule_id for o in again.unchanged} == data_bound and not again.failed
    assert (again.new, again.changed, again.resolved) == (0, 0, 0) and flags_table(db) == before

    with duckdb.connect(str(db), read_only=True) as con:  # not vacuous: the change raised and resolved flags
        raised, resolved = con.execute(
            "SELECT count(*) FILTER (WHERE first_seen = $t), count(*) FILTER (WHERE resolved_at = $t) FROM flags "
            "WHERE list_contains($ids, rule_id)", {"t": T2, "ids": sorted(incremental)}).fetchall()[0]
        assert raised > 0 and resolved > 0
        # every incremental rule has seen the whole log, which is pruned
        assert con.execute("SELECT count(*) FROM process_changes").fetchall()[0][0] == 0
        assert con.execute("SELECT count(DISTINCT change_seq) FROM flag_watermarks").fetchall()[0][0] == 1


def rule_runs(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT rule_id, status, rows FROM rule_runs ORDER BY evaluated_at, rule_id").fetchall()


def test_nothing_changed_nothing_evaluated_and_a_changed_rule_runs_on_everything(tmp_path):
    db = tmp_path / "m.duckdb"
    load_into(db, [RULE_FIXTURES / "cardinal-r003-short-period.jsonl", RULE_FIXTURES / "cardinal-r003-full-period.jsonl"])
    rules = [r for r in load_rules() if r.id == "cardinal-r003-short-submission-period"]
    first = evaluate(db, rules, now=T1)
    assert first.open == 1 and first.changed_processes is None
    again = evaluate(db, rules, now=T2)
    assert again.outcomes[0].unchanged and not again.outcomes[0].changed_only
    assert (again.new, again.changed, again.resolved, again.open) == (0, 0, 0, 1)
    assert rule_runs(db)[-1] == (rules[0].id, "unchanged", None)
    # the same rule with another parameter is another rule: evaluated on every process, and its flag resolved
    other = evaluate(db, rules, now=T2, overrides={rules[0].id: {"threshold": 1}})
    assert not other.outcomes[0].unchanged and not other.outcomes[0].changed_only and other.changed_processes is None
    assert other.resolved == 1 and rule_runs(db)[-1] == (rules[0].id, "ok", 0)


def test_a_rule_over_all_processes_runs_again_only_when_a_process_changed(tmp_path):
    """Split purchases compares a buyer's processes, so it is evaluated on all of them, but only when one changed;
    a rule reading the clock (coverage gap) is evaluated every time."""
    db = tmp_path / "m.duckdb"
    fixtures = sorted(RULE_FIXTURES.glob("anomaly-split-purchases*"))
    load_into(db, fixtures[:1])
    by_id = {r.id: r for r in load_rules()}
    split, clock = by_id["anomaly-split-purchases-below-threshold"], by_id["opportunity-coverage-gap"]
    assert split.data_bound and not split.incremental and not clock.data_bound
    first = evaluate(db, [split, clock], as_of=AS_OF, now=T1)
    assert not first.failed and not first.unchanged
    again = evaluate(db, [split, clock], as_of=AS_OF, now=T2)
    assert [o.rule_id for o in again.unchanged] == [split.id]
    load_into(db, fixtures[1:])
    later = evaluate(db, [split, clock], as_of=AS_OF, now=T2 + timedelta(days=1))
    assert not later.unchanged and not any(o.changed_only for o in later.outcomes)
    with duckdb.connect(str(db), read_only=True) as con:  # the other fixtures' purchases were split: the rule saw them
        assert con.execute("SELECT count(*) FROM flags WHERE rule_id = $id AND first_seen = $t",
                           {"id": split.id, "t": T2 + timedelta(days=1)}).fetchall()[0][0] > 0


@pytest.mark.parametrize("upgrade", ["monitor.flags.engine.current_schema_version",
                                     "monitor.flags.incremental.engine_fingerprint"], ids=["migration", "new-engine"])
def test_after_a_migration_or_an_upgrade_every_rule_runs_again(tmp_path, monkeypatch, upgrade):
    """A migration may rewrite process rows without logging them, and a new engine or DuckDB may turn a rule's rows
    into other flags: a rule's watermark is for one schema version and one engine."""
    db = tmp_path / "m.duckdb"
    load_into(db, [RULE_FIXTURES / "cardinal-r003-short-period.jsonl"])
    rules = [r for r in load_rules() if r.id == "cardinal-r003-short-submission-period"]
    evaluate(db, rules, now=T1)
    assert evaluate(db, rules, now=T2).unchanged
    monkeypatch.setattr(upgrade, lambda *args: "another")
    after = evaluate(db, rules, now=T2)
    assert not after.unchanged and not after.outcomes[0].changed_only


def test_watermarks_of_deleted_rules_are_dropped_when_every_rule_is_evaluated(tmp_path, run_cli):
    """Else the oldest watermark would never move, and the change log would never be pruned. `monitor status`
    names the rule left behind."""
    db = tmp_path / "m.duckdb"
    load_into(db, [RULE_FIXTURES / "cardinal-r003-short-period.jsonl"])
    by_id = {r.id: r for r in load_rules()}
    r003, r018 = by_id["cardinal-r003-short-submission-period"], by_id["cardinal-r018-single-bid"]
    evaluate(db, [r003, r018], now=T1)
    load_into(db, [RULE_FIXTURES / "cardinal-r003-full-period.jsonl"])

    def state() -> tuple[list, int]:
        with duckdb.connect(str(db), read_only=True) as con:
            return ([m for (m,) in con.execute("SELECT rule_id FROM flag_watermarks ORDER BY 1").fetchall()],
                    con.execute("SELECT count(*) FROM process_changes").fetchall()[0][0])

    evaluate(db, [r018], now=T2)  # r003 still exists (monitor flag --rule): its watermark keeps the log
    marks, logged = state()
    assert marks == [r003.id, r018.id] and logged > 0
    code, out, _ = run_cli("--db", db, "status")
    assert code == 0 and "change log      2 changed process(es) in 2 batch(es)" in out
    assert f"oldest: {r003.id} at batch 2 (evaluated 2026-11-20T12:00:00+00:00)" in out
    evaluate(db, [r018], now=T2, all_rules=True)  # r003's file is gone
    assert state() == ([r018.id], 0)
    code, out, _ = run_cli("--db", db, "status", "--format", "json")  # the log is empty, its batches still counted
    assert code == 0 and json.loads(out)["change_log"] == {
        "processes": 0, "batches": 0, "latest_batch": 4, "watermarks": 1,
        "oldest_watermark": {"rule_id": r018.id, "batch": 4, "evaluated_at": "2026-11-21T12:00:00+00:00"}}


def test_loading_logs_changed_processes_only(tmp_path):
    """A tender and its contract (the ProZorro contracts API): one process. The normalizer and the classifier
    log it, one batch each; the same copies again log nothing; a newer copy of the tender logs it again."""
    db = tmp_path / "m.duckdb"
    fixture = RULE_FIXTURES / "anomaly-contract-signed-during-standstill.jsonl"
    tender, contract = fixture_documents(fixture)
    ocid = f"ocds-be6bcu-{tender['data']['tenderID']}"

    def log() -> list[tuple]:
        with duckdb.connect(str(db), read_only=True) as con:
            return con.execute("SELECT change_seq, ocid FROM process_changes ORDER BY ALL").fetchall()

    load_into(db, [fixture])
    assert log() == [(1, ocid), (2, ocid)]
    load_into(db, [fixture])
    assert log() == [(1, ocid), (2, ocid)]
    load_into(db, [write_lines(tmp_path / "newer.jsonl", [changed_copy(tender, 1)])])
    assert log() == [(1, ocid), (2, ocid), (3, ocid), (4, ocid)]


def test_process_tables_match_the_schema(tmp_path):
    """Every table of a process's rows is copied for incremental rules: those with a process_key, and the raw
    records (by ocid)."""
    con = connect(tmp_path / "m.duckdb")
    try:
        columns = dict(con.execute("SELECT table_name, list(column_name) FROM duckdb_columns() "
                                   "WHERE schema_name = 'main' GROUP BY ALL").fetchall())
    finally:
        con.close()
    with_key = {t for t, c in columns.items() if "process_key" in c}
    with_ocid = {t for t, c in columns.items() if "ocid" in c}
    assert with_key <= set(PROCESS_TABLES) <= with_ocid
    assert set(PROCESS_TABLES) - with_key == {"raw_records"}


@pytest.mark.parametrize(("subject", "query", "message"), [
    ("buyer", "SELECT buyer_id AS subject_id FROM processes",
     "incremental: only a rule about processes can be evaluated process by process, not one about buyers"),
    ("process", "SELECT ocid AS subject_id, ocid FROM processes WHERE tender_end > $as_of",
     "incremental: the query reads the clock ($as_of)"),
    ("process", "SELECT ocid AS subject_id, ocid FROM processes WHERE tender_end > now() - INTERVAL 1 DAY",
     "incremental: the query reads the clock (now)"),
    ("process", "SELECT p.ocid AS subject_id, p.ocid FROM processes p JOIN plans USING (tender_id)",
     "incremental: the query reads plans, not the rows of one process"),
    ("process", "SELECT p.ocid AS subject_id, p.ocid FROM processes p JOIN organization_names o ON o.org_id = p.buyer_id",
     "incremental: the shared set organization_names reads organizations, not the rows of one process"),
], ids=["buyer", "as-of", "now", "plans", "shared-set"])
def test_a_rule_that_cannot_be_incremental_is_refused(tmp_path, subject, query, message):
    path = write_rule(tmp_path, "not-incremental", query)
    text = path.read_text(encoding="utf-8").replace("subject: process", f"subject: {subject}\nincremental: true")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleError) as error:
        load_rules(path)
    assert f"{path}:6: {message}" in str(error.value)  # the line of the incremental key


def test_flag_command_says_what_ran_on_the_changes(tmp_path, run_cli):
    db = tmp_path / "m.duckdb"  # ten processes, of which one changes below: not more than a fifth
    standstill = RULE_FIXTURES / "anomaly-contract-signed-during-standstill.jsonl"  # a ProZorro tender and contract
    load_into(db, [RULE_FIXTURES / "cardinal-r003-short-period.jsonl", standstill]
              + sorted(RULE_FIXTURES.glob("cardinal-r0[23]*")))
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM processes").fetchall()[0][0] >= 10
    rule = ("--rule", "cardinal-r003-short-submission-period")
    code, out, _ = run_cli("--db", db, "flag", *rule)
    assert code == 0 and out.startswith("1 rule(s) evaluated, 0 failed: 1 new")
    code, out, _ = run_cli("--db", db, "flag", *rule)
    assert code == 0 and out.startswith("0 rule(s) evaluated, 1 not evaluated (no process changed since their last "
                                        "evaluation), 0 failed: 0 new")
    code, out, _ = run_cli("--db", db, "flag", "--full", *rule)
    assert code == 0 and out.startswith("1 rule(s) evaluated, 0 failed: 0 new, 0 changed, 0 resolved, 1 open")
    load_into(db, [write_lines(tmp_path / "newer.jsonl", [changed_copy(fixture_documents(standstill)[0], 1)])])
    code, out, _ = run_cli("--db", db, "flag", *rule)
    assert code == 0 and out.startswith("1 rule(s) evaluated (1 incremental on the 1 changed process(es)), 0 failed")


def test_rules_list_names_the_incremental_rules(run_cli):
    code, out, _ = run_cli("rules", "list")
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("incremental, "))
    listed = line.split(": ", 1)[1].split(", ")
    assert "cardinal-r018-single-bid" in listed and "cardinal-r024-price-close-to-winning-bid" not in listed
    assert listed == [r.id for r in load_rules() if r.incremental]
    line = next(line for line in out.splitlines() if line.startswith("reading process rows alone, "))
    whole = line.split(": ", 1)[1].split(", ")
    assert "anomaly-split-purchases-below-threshold" in whole and "cardinal-r018-single-bid" not in whole
    assert "opportunity-coverage-gap" not in whole  # it reads the clock
