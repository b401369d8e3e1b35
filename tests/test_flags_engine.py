"""The flag engine: rule validation, the read-only sandbox, and the history of flags."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
from conftest import write_rule

from monitor.cli import main
from monitor.commands import flag as flag_command
from monitor.flags.engine import evaluate, run_sandboxed
from monitor.flags.rules import RuleError, load_rules
from monitor.store.changes import log_changed_processes

RULES = Path(__file__).resolve().parent.parent / "rules" / "flags"
R018 = Path(__file__).resolve().parent / "fixtures" / "cardinal" / "indicators" / "R018.jsonl"


def copy_rule(folder: Path, rule_id: str) -> Path:
    """The shipped R018 rule under another id, without its examples."""
    text = (RULES / "cardinal-r018-single-bid.yaml").read_text(encoding="utf-8")
    text = text.replace("id: cardinal-r018-single-bid", f"id: {rule_id}").split("examples:")[0]
    path = folder / f"{rule_id}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "m.duckdb"
    assert main(["--db", str(path), "load", str(R018)]) == 0
    return path


@pytest.mark.parametrize("query, message", [
    ("SELECT * FROM read_csv('/etc/passwd')", "calls read_csv()"),
    ("COPY processes TO '/tmp/leak.csv'", "must be a read-only SELECT, not COPY"),
    ("ATTACH '/tmp/other.duckdb'", "not ATTACH"),
    ("INSTALL httpfs", "must be a read-only SELECT"),
    ("DELETE FROM processes", "not DELETE"),
    ("SELECT 1 AS subject_id; SELECT 2", "exactly one SELECT statement, found 2"),
    ("SELECT ocid AS subject_id, ocid FROM processes WHERE value_amount > $min_value", "$min_value is not declared"),
])
def test_unsafe_or_broken_queries_are_rejected_with_file_line_and_fix(tmp_path, query, message):
    path = write_rule(tmp_path, "bad-rule", query)
    with pytest.raises(RuleError) as raised:
        load_rules(tmp_path)
    assert raised.value.problems[0].startswith(f"{path}:7: query: ")
    assert message in raised.value.problems[0]


def test_every_problem_is_collected_and_unknown_keys_rejected(tmp_path):
    (tmp_path / "one.yaml").write_text("id: two\ntitle: T\nkind: weird\nseverity: low\nsubject: process\n"
                                       "description: d\nquery: SELECT 1 AS subject_id\ncolour: red\n",
                                       encoding="utf-8")
    with pytest.raises(RuleError) as raised:
        load_rules(tmp_path)
    text = "\n".join(raised.value.problems)
    assert "one.yaml:8: (top level): unknown key 'colour'" in text
    assert "one.yaml:3: kind: 'weird' is not one of ['anomaly', 'opportunity']" in text
    assert "one.yaml:1: id: 'two' must equal the file name 'one'" in text


def test_a_rule_reading_a_file_at_run_time_fails_alone_and_the_others_run(tmp_path, db):
    folder = tmp_path / "rules"
    folder.mkdir()
    copy_rule(folder, "single-bid-copy")
    # a replacement scan reads a file without naming a function: only the sandbox can stop it
    write_rule(folder, "sneaky", "SELECT column0 AS subject_id, 'x' AS ocid FROM '/etc/passwd'")
    rules = load_rules(folder)
    result = evaluate(db, rules)
    failed = {o.rule_id: o.error for o in result.outcomes if o.error}
    assert set(failed) == {"sneaky"}
    assert "/etc/passwd" in failed["sneaky"]  # refused: with external access off there are no file scans
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM flags WHERE rule_id = 'single-bid-copy'").fetchone()[0] == 2
        assert con.execute("SELECT status FROM rule_runs WHERE rule_id = 'sneaky'").fetchone()[0] == "failed"


def test_history_new_unchanged_changed_resolved(tmp_path, db):
    rules = load_rules(copy_rule(tmp_path, "single-bid-copy"))  # a rule the load did not evaluate yet
    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    first = evaluate(db, rules, now=t0)
    assert (first.new, first.changed, first.resolved) == (2, 0, 0)
    with duckdb.connect(str(db), read_only=True) as con:
        before = con.execute("SELECT * FROM flags ORDER BY subject_id").fetchall()
    again = evaluate(db, rules, now=t0 + timedelta(days=1))
    assert (again.new, again.changed, again.resolved) == (0, 0, 0)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT * FROM flags ORDER BY subject_id").fetchall() == before  # nothing changed
    with duckdb.connect(str(db)) as con:  # the 'open' tender gets a second bidder (logged, as the normalizer does)
        con.execute("UPDATE processes SET number_of_tenderers = 2 WHERE ocid = 'open'")
        log_changed_processes(con, "SELECT 'open' AS ocid")
    later = evaluate(db, rules, now=t0 + timedelta(days=2))
    assert (later.new, later.resolved) == (0, 1)
    with duckdb.connect(str(db), read_only=True) as con:
        resolved = con.execute("SELECT subject_id, first_seen, resolved_at FROM flags "
                               "WHERE resolved_at IS NOT NULL").fetchall()
    assert resolved == [("open", t0, t0 + timedelta(days=2))]


def test_flag_command_and_rules_list(db, capsys):
    assert main(["--db", str(db), "flag", "--rule", "cardinal-r018-single-bid"]) == 0
    assert "0 failed" in capsys.readouterr().out
    assert main(["--db", str(db), "flag", "--rule", "no-such-rule"]) == 2
    assert main(["rules", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    r018 = next(line for line in listing if line.startswith("cardinal-r018-single-bid "))
    assert r018.split()[:6] == ["cardinal-r018-single-bid", "anomaly", "medium", "process", "Cardinal", "R018"]


def test_rules_list_of_invalid_rule_files_is_bad_input(tmp_path, monkeypatch, capsys):
    """Like `monitor rules check`: every problem on stderr, exit 2 (bad input), no listing."""
    folder = tmp_path / "flags"
    folder.mkdir()
    write_rule(folder, "good", "SELECT ocid AS subject_id, ocid FROM processes")
    bad = write_rule(folder, "writes", "DELETE FROM processes")
    monkeypatch.setattr("monitor.flags.rules.DEFAULT_DIR", folder)
    assert main(["rules", "list"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{bad}:7: query: the query must be a read-only SELECT, not DELETE" in captured.err
    assert "monitor rules check" in captured.err
    assert main(["rules", "check", str(folder)]) == 2  # the two commands agree
    assert f"{bad}:7: query: the query must be a read-only SELECT, not DELETE" in capsys.readouterr().err


@pytest.mark.flags_after_store
def test_load_evaluates_the_flags_and_they_are_readable_through_monitor_query(tmp_path, capsys):
    db = tmp_path / "flags.duckdb"
    assert main(["--db", str(db), "load", str(R018)]) == 0
    capsys.readouterr()
    assert main(["--db", str(db), "query", "--format", "csv",
                 "SELECT rule_id, subject_id FROM flags WHERE rule_id = 'cardinal-r018-single-bid' "
                 "ORDER BY subject_id"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "rule_id,subject_id", "cardinal-r018-single-bid,open", "cardinal-r018-single-bid,selective"]


def test_after_store_steps_can_skip_the_flags(tmp_path, monkeypatch):
    monkeypatch.setenv("MONITOR_AFTER_STORE", "classify")
    db = tmp_path / "m.duckdb"
    assert main(["--db", str(db), "load", str(R018)]) == 0
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM flags").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM classified_processes").fetchone()[0] == 7
    monkeypatch.setenv("MONITOR_AFTER_STORE", "colour")
    assert main(["--db", str(db), "load", str(R018)]) == 2


def test_float_noise_and_duplicate_keys_do_not_change_an_unchanged_flag(tmp_path, db):
    # 0.1 + 0.2 is 0.30000000000000004: a parallel sum's last bits vary from run to run, so values
    # and evidence are rounded; two rows for one key (records sharing a tenderID) merge in a fixed order
    write_rule(tmp_path, "noisy", "SELECT ocid AS subject_id, ocid, 0.1 + 0.2 AS value, 0.1 + 0.2 AS total, "
                                  "[{'x': 0.1 + 0.2}] AS nested, t.title FROM processes, (VALUES ('b'), ('a')) t(title)")
    (rule,) = load_rules(tmp_path)
    first = evaluate(db, [rule])
    assert first.new > 0
    with duckdb.connect(str(db), read_only=True) as con:
        values = con.execute("SELECT DISTINCT value, evidence->>'total', evidence->>'title', evidence->>'nested' "
                             "FROM flags WHERE rule_id = 'noisy'").fetchall()
    assert values == [(0.3, "0.3", "b", '[{"x":0.3}]')]  # ties: the larger evidence, every time
    again = evaluate(db, [rule])
    assert (again.new, again.changed, again.resolved) == (0, 0, 0)


def test_duplicate_keys_keep_the_largest_value_and_an_evidence_only_change_is_an_update(tmp_path, db):
    # two rows for every process: the merge keeps the row with the larger value (and its evidence);
    # the change check compares a hash of the evidence, so a change in evidence alone still counts
    query = ("SELECT ocid AS subject_id, ocid, t.v AS value, t.label || '-' || $suffix AS label "
             "FROM processes, (VALUES (1.0, 'low'), (2.0, 'high')) t(v, label)")
    path = write_rule(tmp_path, "twice", query)
    path.write_text(path.read_text().replace("query: |", "params:\n  suffix: a\nquery: |"))
    (rule,) = load_rules(tmp_path)
    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    first = evaluate(db, [rule], now=t0)
    with duckdb.connect(str(db), read_only=True) as con:
        processes = con.execute("SELECT count(DISTINCT ocid) FROM processes").fetchone()[0]
        kept = con.execute("SELECT DISTINCT value, evidence->>'label' FROM flags WHERE rule_id = 'twice'").fetchall()
    assert first.new == processes and kept == [(2.0, "high-a")]
    changed = evaluate(db, [rule], overrides={"twice": {"suffix": "b"}}, now=t0 + timedelta(days=1))
    assert (changed.new, changed.changed, changed.resolved) == (0, processes, 0)
    with duckdb.connect(str(db), read_only=True) as con:
        after = con.execute("SELECT DISTINCT evidence->>'label', first_seen, last_seen FROM flags "
                            "WHERE rule_id = 'twice'").fetchall()
    assert after == [("high-b", t0, t0 + timedelta(days=1))]


def test_the_clock_is_a_parameter_and_a_pinned_clock_stamps_the_history(tmp_path, db):
    write_rule(tmp_path, "clocked", "SELECT ocid AS subject_id, ocid, $as_of AS evaluated_for FROM processes")
    (rule,) = load_rules(tmp_path)
    pinned = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
    evaluate(db, [rule], as_of=pinned)
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT DISTINCT first_seen, evidence->>'evaluated_for' FROM flags "
                           "WHERE rule_id = 'clocked'").fetchall()
    assert len(rows) == 1 and rows[0][0] == pinned and rows[0][1].startswith("2026-11-20 10:00:00")


def test_rules_check_evaluates_every_rule_on_an_empty_database(tmp_path, capsys):
    """A query that parses but names a column the tables lack, or returns no subject_id, is found by
    `monitor rules check` (file and line of the query), not at the first evaluation; a good rule passes."""
    write_rule(tmp_path, "good", "SELECT ocid AS subject_id, ocid FROM processes WHERE number_of_tenderers = 1")
    assert main(["rules", "check", str(tmp_path)]) == 0
    assert "1 flag rule(s) OK" in capsys.readouterr().out
    misspelt = write_rule(tmp_path, "misspelt", "SELECT ocid AS subject_id, ocid FROM processes WHERE number_of_bids = 1")
    no_subject = write_rule(tmp_path, "no-subject", "SELECT ocid FROM processes")
    assert main(["rules", "check", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    problems = captured.err.splitlines()
    assert [line.split(": query: ")[0] for line in problems] == [f"{misspelt}:7", f"{no_subject}:7"]
    assert 'Referenced column "number_of_bids" not found' in problems[0] and "number_of_tenderers" in problems[0]
    assert "the query returns no subject_id column (it returns ocid)" in problems[1]


def test_a_scope_naming_no_category_file_is_an_error(tmp_path, capsys):
    path = write_rule(tmp_path, "scoped", "SELECT ocid AS subject_id, ocid FROM processes")
    path.write_text(path.read_text(encoding="utf-8").replace("subject: process\n",
                                                             "subject: process\nscope: {categories: [helth]}\n"),
                    encoding="utf-8")
    assert main(["rules", "check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:6: scope.categories: unknown category 'helth'; known: " in err and "health.medicines" in err
    path.write_text(path.read_text(encoding="utf-8").replace("[helth]", "[health.medicines]"), encoding="utf-8")
    assert main(["rules", "check", str(tmp_path)]) == 0


def test_the_sandbox_keeps_to_the_memory_limit_of_the_store(tmp_path, db):
    write_rule(tmp_path, "limit", "SELECT current_setting('memory_limit') AS subject_id, min(ocid) AS ocid "
                                  "FROM processes")
    (rule,) = load_rules(tmp_path)
    limits = {}
    for limit in ("300MB", "600MB"):
        rows, outcomes = run_sandboxed(db, [rule], memory_limit=limit)
        assert not outcomes[0].error
        limits[limit] = rows.column("subject_id").to_pylist()
    assert limits["300MB"] != limits["600MB"]
    assert limits["300MB"][0].startswith("286") and limits["600MB"][0].startswith("572")  # MiB as DuckDB shows them


def test_the_rules_run_on_the_threads_of_the_store(tmp_path, db, run_cli, monkeypatch):
    # [store] threads limits DuckDB's threads for the store; the rules' sandbox keeps to it as well
    write_rule(tmp_path, "threads", "SELECT current_setting('threads')::VARCHAR AS subject_id, min(ocid) AS ocid "
                                    "FROM processes")
    (rule,) = load_rules(tmp_path)
    rows, outcomes = run_sandboxed(db, [rule], threads=1)
    assert not outcomes[0].error and rows.column("subject_id").to_pylist() == ["1"]

    seen = {}
    real = flag_command.evaluate
    monkeypatch.setattr(flag_command, "evaluate", lambda *a, **kw: seen.update(kw) or real(*a, **kw))
    config = tmp_path / "monitor.toml"
    config.write_text("[store]\nthreads = 1\n", encoding="utf-8")
    code, _, err = run_cli("--config", config, "--db", db, "flag", "--rule", "cardinal-r018-single-bid")
    assert code == 0, err
    assert seen["threads"] == 1


def test_a_rule_beyond_the_memory_limit_spills_beside_the_database_and_leaves_nothing(tmp_path, db):
    # a window over 6M rows (about 140 MB) does not fit in 64 MB: DuckDB sorts it on disk (40 MB, near its least
    # working memory for a sort on two threads, ran out now and then on a busy machine). An in-memory DuckDB (the
    # sandbox) would put those files into .tmp of the current directory (cron's, a checkout's).
    write_rule(tmp_path, "spills", "SELECT max(rn)::VARCHAR || ' ' || current_setting('temp_directory') AS subject_id, "
                                   "(SELECT min(ocid) FROM processes) AS ocid "
                                   "FROM (SELECT row_number() OVER (ORDER BY hash(i)) AS rn FROM range(6000000) t(i))")
    (rule,) = load_rules(tmp_path)
    rows, outcomes = run_sandboxed(db, [rule], memory_limit="64MB")
    assert not outcomes[0].error
    count, spill_dir = rows.column("subject_id")[0].as_py().split(" ", 1)
    assert count == "6000000"
    assert Path(spill_dir).parent == db.parent and Path(spill_dir).name.startswith("m.duckdb.flags-")
    assert not (Path.cwd() / ".tmp").exists()
    assert not Path(spill_dir).exists()  # removed after the evaluation


def test_a_rule_out_of_memory_says_which_setting_to_raise(tmp_path, db):
    # a string aggregate cannot spill: 200 MB of text in a 40 MB sandbox fails, and the message
    # points at the monitor's setting, not at DuckDB's SET (refused in the locked sandbox)
    write_rule(tmp_path, "hungry", "SELECT length(string_agg(repeat('x', 100), ''))::VARCHAR AS subject_id, "
                                   "(SELECT min(ocid) FROM processes) AS ocid FROM range(2000000)")
    write_rule(tmp_path, "modest", "SELECT ocid AS subject_id, ocid FROM processes")
    rules = load_rules(tmp_path)
    rows, outcomes = run_sandboxed(db, rules, memory_limit="40MB")
    errors = {o.rule_id: o.error for o in outcomes}
    assert errors["hungry"].startswith("Out of Memory Error")
    assert "DuckDB's limit (40MB): raise [store] memory_limit in monitor.toml" in errors["hungry"]
    assert "Possible solutions" not in errors["hungry"]
    assert errors["modest"] is None and rows.num_rows > 0
