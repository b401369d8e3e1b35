"""Shared sets: relations several flag rules read, checked like rule queries and computed once per evaluation."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import write_rule
from structlog.testing import capture_logs

from monitor.cli import main
from monitor.flags.engine import evaluate
from monitor.flags.rules import RuleError, load_rules

RULES = Path(__file__).resolve().parent.parent / "rules" / "flags"
SHIPPED_SHARED = RULES / "shared"
CLASSIFY = RULES.parent / "classify"
R018 = Path(__file__).resolve().parent / "fixtures" / "cardinal" / "indicators" / "R018.jsonl"
R036_DISQUALIFIED = RULES / "fixtures" / "cardinal-r036-lowest-disqualified.jsonl"

# R018.jsonl: seven processes; number_of_tenderers is 1 in these five
SINGLE_TENDERER = {"open", "selective", "limited", "direct", "missing"}


def write_set(folder: Path, name: str, text: str) -> Path:
    """``folder/shared/<name>.sql`` holding ``text``; returns its resolved path (as problems name it)."""
    shared = folder / "shared"
    shared.mkdir(exist_ok=True)
    path = shared / f"{name}.sql"
    path.write_text(text, encoding="utf-8")
    return path.resolve()


def copy_shipped_rule(folder: Path, rule_id: str, new_id: str | None = None) -> Path:
    """A shipped rule in ``folder`` (under ``new_id``), without its examples (their fixtures stay behind)."""
    text = (RULES / f"{rule_id}.yaml").read_text(encoding="utf-8")
    new_id = new_id or rule_id
    text = text.replace(f"id: {rule_id}", f"id: {new_id}").split("examples:")[0]
    path = folder / f"{new_id}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def flagged(db: Path, rule_id: str) -> set[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {s for (s,) in con.execute("SELECT subject_id FROM flags WHERE rule_id = ? AND resolved_at IS NULL",
                                          [rule_id]).fetchall()}


def events(logs: list[dict], event: str, name: str) -> list[dict]:
    return [e for e in logs if e["event"] == event and e.get("shared_set") == name]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "m.duckdb"
    assert main(["--db", str(path), "load", str(R018)]) == 0
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "rules"
    path.mkdir()
    return path


SINGLE_BID_SET = """-- One row per process that received exactly one bid (published number of tenderers).
SELECT ocid, procurement_method, number_of_tenderers
FROM processes
WHERE number_of_tenderers = 1
"""


def test_a_set_two_rules_read_is_computed_once_and_flags_as_the_inlined_sql(folder, db):
    write_set(folder, "single_bid_processes", SINGLE_BID_SET)
    write_rule(folder, "single-plain", "SELECT ocid AS subject_id, ocid FROM single_bid_processes")
    write_rule(folder, "single-joined", "SELECT s.ocid AS subject_id, s.ocid, p.procurement_method "
                                        "FROM single_bid_processes s JOIN processes p USING (ocid)")
    write_rule(folder, "single-inlined", "SELECT ocid AS subject_id, ocid FROM processes WHERE number_of_tenderers = 1")
    rules = {r.id: r for r in load_rules(folder)}
    assert [s.name for s in rules["single-plain"].shared] == ["single_bid_processes"]
    assert [s.name for s in rules["single-joined"].shared] == ["single_bid_processes"]
    assert rules["single-inlined"].shared == ()
    with capture_logs() as logs:
        result = evaluate(db, list(rules.values()))
    assert result.failed == []
    computed = events(logs, "shared set computed", "single_bid_processes")
    assert len(computed) == 1
    assert computed[0]["rows"] == len(SINGLE_TENDERER) and computed[0]["seconds"] >= 0
    assert flagged(db, "single-inlined") == SINGLE_TENDERER
    assert flagged(db, "single-plain") == flagged(db, "single-joined") == flagged(db, "single-inlined")
    assert {o.rule_id: o.rows for o in result.outcomes} == {r: len(SINGLE_TENDERER) for r in rules}


def test_shipped_rules_that_mention_a_shipped_set_get_it_and_the_others_get_none():
    rules = {r.id: r for r in load_rules()}
    r036 = rules["cardinal-r036-lowest-bid-disqualified"]
    assert [s.name for s in r036.shared] == ["bid_once"]
    assert r036.shared[0].path == (SHIPPED_SHARED / "bid_once.sql").resolve()
    assert r036.shared[0].description.startswith("One row per bid.")
    assert rules["cardinal-r018-single-bid"].shared == ()
    shipped = {p.stem for p in SHIPPED_SHARED.glob("*.sql")}
    assert {"bid_once", "award_outcome"} <= shipped
    readers = [r for r in rules.values() if any(s.name == "bid_once" for s in r.shared)]
    assert len(readers) >= 5  # R024, R025, R035, R036, R038, R058 read it
    for rule in rules.values():
        mentioned = shipped & set(re.findall(r"\w+", rule.query))
        names = [s.name for s in rule.shared]
        assert mentioned <= set(names), rule.id
        if not mentioned:
            assert rule.shared == (), rule.id
        for index, each in enumerate(rule.shared):  # each set is mentioned or read, and comes after what it reads
            assert each.name in mentioned or any(each.name in s.reads for s in rule.shared[index + 1:]), (rule.id, each)
            assert set(each.reads) <= set(names[:index]), (rule.id, each.name)


def test_only_a_name_in_the_sql_itself_pulls_the_set(folder):
    write_set(folder, "single_bid_processes", SINGLE_BID_SET)
    # inside a longer word, a string literal or a comment: not a read of the set
    write_rule(folder, "lookalike", "SELECT ocid AS subject_id, ocid, 1 AS single_bid_processes_count, "
                                    "'single_bid_processes' AS label  -- unlike single_bid_processes\n"
                                    "  /* nor single_bid_processes */ FROM processes")
    (rule,) = load_rules(folder)
    assert rule.shared == ()
    # SQL names are read in any letter case
    write_rule(folder, "lookalike", "SELECT ocid AS subject_id, ocid FROM Single_Bid_Processes")
    (rule,) = load_rules(folder)
    assert [s.name for s in rule.shared] == ["single_bid_processes"]


def test_a_set_reading_another_comes_after_it_and_the_rule_reads_both(folder, db):
    # names chosen so the sorted order (single_bid, tendered_processes) is not the dependency order
    base = write_set(folder, "tendered_processes", "-- One row per process with one or more tenderers.\n"
                     "SELECT ocid, number_of_tenderers FROM processes WHERE number_of_tenderers >= 1\n")
    top = write_set(folder, "single_bid", "-- One row per process with one tenderer, of those with any.\n"
                    "SELECT ocid FROM tendered_processes WHERE number_of_tenderers = 1\n")
    write_rule(folder, "reads-top", "SELECT ocid AS subject_id, ocid FROM single_bid")
    (rule,) = load_rules(folder)
    assert [(s.name, s.path) for s in rule.shared] == [("tendered_processes", base), ("single_bid", top)]
    assert rule.shared[1].reads == ("tendered_processes",)
    with capture_logs() as logs:
        result = evaluate(db, [rule])
    assert result.failed == []
    computed = [e["shared_set"] for e in logs if e["event"] == "shared set computed"]
    assert computed == ["tendered_processes", "single_bid"]
    assert flagged(db, "reads-top") == SINGLE_TENDERER


def test_sets_reading_each_other_in_a_loop_are_an_error(folder):
    ping = write_set(folder, "ping", "-- Processes pong does not hold.\nSELECT ocid FROM processes WHERE ocid NOT IN "
              "(SELECT ocid FROM pong)\n")
    pong = write_set(folder, "pong", "-- Processes ping holds.\nSELECT ocid FROM ping\n")
    write_rule(folder, "reads-ping", "SELECT ocid AS subject_id, ocid FROM ping")
    with pytest.raises(RuleError) as raised:
        load_rules(folder)
    ping_problem, pong_problem = raised.value.problems  # each set of the loop is named
    assert ping_problem.startswith(f"{ping}:1: ") and "loop (ping -> pong -> ping)" in ping_problem
    assert pong_problem.startswith(f"{pong}:1: ") and "loop (pong -> ping -> pong)" in pong_problem


def test_a_set_reading_itself_is_a_loop(folder):
    path = write_set(folder, "itself", "-- Processes.\nSELECT ocid FROM itself\n")
    with pytest.raises(RuleError) as raised:
        load_rules(folder)
    expected = (f"{path}:1: the shared sets read each other in a loop (itself -> itself); "
                "one of them must not read the other")
    assert raised.value.problems == [expected]


@pytest.mark.parametrize("name, text, message", [
    ("over_threshold", "-- Processes over a threshold.\nSELECT ocid FROM processes WHERE value_amount > $threshold\n",
     "$threshold: a shared set takes no parameters"),
    ("wipe", "-- Deletes the processes.\nDELETE FROM processes\n", "must be a read-only SELECT, not DELETE"),
    ("leak", "-- Copies the processes out.\nCOPY processes TO '/tmp/leak.csv'\n", "must be a read-only SELECT, not COPY"),
    ("outside", "-- Rows of a file.\nSELECT * FROM read_csv('/etc/passwd')\n", "calls read_csv()"),
    ("two", "-- Two statements.\nSELECT 1 AS ocid; SELECT 2 AS ocid\n", "exactly one SELECT statement, found 2"),
    ("undescribed", "SELECT ocid FROM processes\n", "start the file with '--' comment lines"),
    ("Bad-Name", "-- One row per process.\nSELECT ocid FROM processes\n", "'Bad-Name' must be a snake_case name"),
])
def test_a_bad_shared_set_is_an_error_with_its_file_and_what_is_wrong(folder, name, text, message):
    write_rule(folder, "unrelated", "SELECT ocid AS subject_id, ocid FROM processes")  # reads no set: still checked
    path = write_set(folder, name, text)
    with pytest.raises(RuleError) as raised:
        load_rules(folder)
    assert len(raised.value.problems) == 1, raised.value.problems
    (problem,) = raised.value.problems
    assert problem.startswith(f"{path}:1: ")
    assert message in problem


def test_a_set_failing_at_run_time_fails_the_rules_reading_it_and_the_others_run(folder, db):
    broken = write_set(folder, "broken_set", "-- Processes with a column the database does not have.\n"
                       "SELECT ocid, no_such_column FROM processes\n")
    write_set(folder, "after_broken", "-- The processes of the broken set.\nSELECT ocid FROM broken_set\n")
    write_rule(folder, "reads-broken", "SELECT ocid AS subject_id, ocid FROM broken_set")
    write_rule(folder, "reads-after", "SELECT ocid AS subject_id, ocid FROM after_broken")
    copy_shipped_rule(folder, "cardinal-r018-single-bid", "single-bid-copy")
    rules = load_rules(folder)  # the SQL is fine; the missing column shows only against the database
    with capture_logs() as logs:
        result = evaluate(db, rules)
    failed = {o.rule_id: o.error for o in result.failed}
    assert set(failed) == {"reads-broken", "reads-after"}
    assert "the shared set broken_set" in failed["reads-broken"] and str(broken) in failed["reads-broken"]
    assert "no_such_column" in failed["reads-broken"]
    # a rule reading a set built on the failed one is told the root cause: the set that failed first
    assert "the shared set broken_set" in failed["reads-after"] and "no_such_column" in failed["reads-after"]
    assert len(events(logs, "shared set failed", "broken_set")) == 1
    (after,) = events(logs, "shared set failed", "after_broken")
    assert after["error"] == "it reads the shared set broken_set, which failed"
    assert events(logs, "shared set computed", "broken_set") == []
    assert flagged(db, "single-bid-copy") == {"open", "selective"}
    with duckdb.connect(str(db), read_only=True) as con:
        runs = dict(con.execute("SELECT rule_id, status FROM rule_runs").fetchall())
    assert runs == {"reads-broken": "failed", "reads-after": "failed", "single-bid-copy": "ok"}


def test_a_set_named_like_a_table_of_the_model_is_refused_when_the_rules_are_checked(folder):
    path = write_set(folder, "bids", "-- One made-up bid per process.\nSELECT ocid, 'fake' AS bid_id FROM processes\n")
    write_rule(folder, "reads-bids", "SELECT DISTINCT ocid AS subject_id, ocid FROM bids")
    with pytest.raises(RuleError) as raised:
        load_rules(folder)
    expected = (f"{path}:1: 'bids' is a table of the database; a shared set of that name "
                "would hide it from the rules, so rename the file")
    assert raised.value.problems == [expected]


def test_a_set_named_like_another_table_of_the_database_fails_the_rules_reading_it(folder, db):
    # a table someone added to the database beside the model: caught when the rules run
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE local_notes AS SELECT 'ocds-none' AS ocid")
    write_set(folder, "local_notes", "-- One made-up note per process.\nSELECT ocid FROM processes\n")
    write_rule(folder, "reads-notes", "SELECT DISTINCT ocid AS subject_id, ocid FROM local_notes")
    copy_shipped_rule(folder, "cardinal-r018-single-bid", "single-bid-copy")
    rules = load_rules(folder)
    assert [s.name for s in next(r for r in rules if r.id == "reads-notes").shared] == ["local_notes"]
    result = evaluate(db, rules)
    (failure,) = result.failed
    assert failure.rule_id == "reads-notes"
    assert "the shared set local_notes" in failure.error and "table of the database" in failure.error
    assert "hide" in failure.error
    assert flagged(db, "reads-notes") == set()
    assert flagged(db, "single-bid-copy") == {"open", "selective"}


def test_a_local_set_wins_over_the_shipped_set_of_the_same_name(folder, tmp_path):
    db = tmp_path / "r036.duckdb"
    assert main(["--db", str(db), "load", str(R036_DISQUALIFIED)]) == 0
    rule_id = "cardinal-r036-lowest-bid-disqualified"
    copy_shipped_rule(folder, rule_id)
    (rule,) = load_rules(folder)
    assert rule.shared[0].path == (SHIPPED_SHARED / "bid_once.sql").resolve()
    first = evaluate(db, [rule])
    assert first.failed == [] and first.new >= 1
    shipped_flags = flagged(db, rule_id)
    assert shipped_flags
    local = write_set(folder, "bid_once", "-- No bids: a local set that hides the shipped one.\n"
                      "SELECT b.ocid, b.process_key, coalesce(b.bid_id, '#' || b.rowid) AS bid_key, b.rowid AS position, b.bid_id, "
                      "b.status, b.status_ocds, b.date, b.tenderer_id, b.tenderer_ids, b.value_amount, "
                      "b.value_currency FROM bids b WHERE false\n")
    (rule,) = load_rules(folder)
    assert [(s.name, s.path) for s in rule.shared] == [("bid_once", local)]
    second = evaluate(db, [rule])
    assert second.failed == [] and second.outcomes[0].rows == 0
    assert (second.new, second.resolved) == (0, len(shipped_flags))
    assert flagged(db, rule_id) == set()
    # the shipped rules, loaded from their own folder, still read the shipped set
    shipped = next(r for r in load_rules() if r.id == rule_id)
    assert shipped.shared[0].path == (SHIPPED_SHARED / "bid_once.sql").resolve()


def test_rules_check_finds_a_shared_set_that_reads_a_missing_column(folder, capsys):
    """The set parses as one SELECT, so only evaluating it (on an empty database) shows it cannot run: every
    rule reading it is reported with the set's file and DuckDB's reason."""
    write_rule(folder, "reads-set", "SELECT ocid AS subject_id, ocid FROM single_bid_processes")
    bad = write_set(folder, "single_bid_processes", SINGLE_BID_SET.replace("WHERE number_of_tenderers",
                                                                           "WHERE number_of_bids"))
    assert main(["rules", "check", str(folder)]) == 2
    (problem,) = capsys.readouterr().err.splitlines()
    assert problem.startswith(f"{folder / 'reads-set.yaml'}:7: query: ")
    assert f"the shared set single_bid_processes ({bad}) failed" in problem and '"number_of_bids" not found' in problem


def test_rules_check_reports_a_bad_shared_set_and_exits_2(folder, capsys):
    write_rule(folder, "reads-set", "SELECT ocid AS subject_id, ocid FROM single_bid_processes")
    write_set(folder, "single_bid_processes", SINGLE_BID_SET)
    assert main(["rules", "check", str(folder)]) == 0
    assert "1 flag rule(s) OK, reading shared sets single_bid_processes (1 rule)" in capsys.readouterr().out
    bad = write_set(folder, "single_bid_processes", "-- Deletes instead.\nDELETE FROM processes\n")
    assert main(["rules", "check", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:1: the shared set must be a read-only SELECT, not DELETE" in err
    # a folder mixing category files and two flag rules reads each rule alone: the problem is still listed once
    write_rule(folder, "reads-set-too", "SELECT ocid AS subject_id, ocid FROM single_bid_processes")
    shutil.copy(CLASSIFY / "social.yaml", folder / "social.yaml")
    assert main(["rules", "check", str(folder)]) == 2
    assert capsys.readouterr().err.count(f"{bad}:1: ") == 1


def test_award_outcome_gives_each_process_its_state_and_the_distinct_suppliers_of_its_active_awards():
    """The shipped set as its header describes it, on the cases the rules meet: one active award (with
    repeated, missing or NULL supplier ids), several active awards, none, and an award still pending."""
    con = duckdb.connect()
    con.execute("CREATE TABLE awards (process_key BIGINT, ocid VARCHAR, status VARCHAR, supplier_ids VARCHAR[])")
    con.execute("""INSERT INTO awards VALUES
        (1, 'p1', 'active', ['UA-EDR-2', 'UA-EDR-1', 'UA-EDR-1']), (1, 'p1', 'cancelled', ['UA-EDR-9']),
        (2, 'p2', 'active', ['UA-EDR-3', 'UA-EDR-1']), (2, 'p2', 'active', ['UA-EDR-1', NULL]),
        (3, 'p3', 'unsuccessful', ['UA-EDR-4']),
        (4, 'p4', 'active', ['UA-EDR-5']), (4, 'p4', 'pending', ['UA-EDR-6']),
        (5, 'p5', 'active', NULL), (6, 'p6', 'active', [NULL]), (7, 'p7', 'active', NULL), (7, 'p7', 'active', ['UA-EDR-7'])""")
    query = (SHIPPED_SHARED / "award_outcome.sql").read_text(encoding="utf-8")
    rows = con.execute(f"SELECT process_key, all_final, active_awards, suppliers FROM ({query}) ORDER BY process_key").fetchall()
    assert rows == [(1, True, 1, ["UA-EDR-1", "UA-EDR-2"]),
                    (2, True, 2, ["UA-EDR-1", "UA-EDR-3"]),
                    (3, True, 0, None),
                    (4, False, 1, ["UA-EDR-5"]),
                    (5, True, 1, []), (6, True, 1, []),
                    (7, True, 2, ["UA-EDR-7"])]


def test_organization_names_gives_each_organization_the_name_it_was_last_seen_under():
    """R038 (buyer, procuring entity, tenderer) and R048 name organizations from this set: a renamed
    hospital shows its new name, two spellings of one date the alphabetically first, whatever the order
    of the rows; an organization seen without a date shows a dated name over its undated one."""
    query = (SHIPPED_SHARED / "organization_names.sql").read_text(encoding="utf-8")
    rows = [("UA-EDR-1", "КНП «Лікарня № 3»", "2024-02-01"), ("UA-EDR-1", "КНП «Міська лікарня № 3»", "2025-06-01"),
            ("UA-EDR-2", "ТОВ «Фарм-Б»", "2025-01-01"), ("UA-EDR-2", "ТОВ «Фарм-А»", "2025-01-01"),
            ("UA-EDR-3", "ФОП Іваненко", None), ("UA-EDR-3", "ФОП Іваненко І. І.", "2023-05-05")]
    for order in (rows, rows[::-1]):
        con = duckdb.connect()
        con.execute("CREATE TABLE organizations (org_id VARCHAR, name VARCHAR, seen_at TIMESTAMPTZ)")
        con.executemany("INSERT INTO organizations VALUES (?, ?, ?)", order)
        assert dict(con.execute(query).fetchall()) == {"UA-EDR-1": "КНП «Міська лікарня № 3»",
                                                       "UA-EDR-2": "ТОВ «Фарм-А»",
                                                       "UA-EDR-3": "ФОП Іваненко І. І."}
