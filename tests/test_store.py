"""The DuckDB store: schema versions and migrations, read-only queries, status, database selection."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

import duckdb
import pytest

from monitor.store import (
    SchemaTooNewError,
    StoreError,
    connect,
    connect_read_only,
    current_schema_version,
    latest_schema_version,
)
from monitor.store.db import _STEP, _migrations, migrate

from monitor.store.records import BatchBuilder, store_batch
from conftest import HEAT_CONTRACT, LIFT_REPAIR, MICROSCOPES, PROZORRO, mutated, summary, write_lines

EXPECTED_TABLES = {
    "schema_migrations", "raw_records", "quarantine", "runs", "cursors", "processes", "lots", "items", "bids",
    "awards", "complaints", "bid_documents", "contracts", "contract_items", "contract_changes", "plans",
    "organizations",
}


def _tables(con) -> set[str]:
    return {name for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


# --- schema versions ---------------------------------------------------------------------------


def test_a_fresh_file_gets_the_latest_schema(db_path):
    assert not db_path.exists()
    con = connect(db_path)
    try:
        assert current_schema_version(con) == latest_schema_version()
        assert EXPECTED_TABLES <= _tables(con)
        versions = [v for (v,) in con.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()]
        assert versions == list(range(1, latest_schema_version() + 1))
    finally:
        con.close()
    assert db_path.exists()


def test_connect_twice_does_not_migrate_again(db_path):
    connect(db_path).close()
    con = connect(db_path)
    try:
        assert con.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == latest_schema_version()
    finally:
        con.close()


def test_migration_from_version_1_keeps_the_data(db_path):
    raw = duckdb.connect(str(db_path))
    assert migrate(raw, target=1) == 1
    assert current_schema_version(raw) == 1
    assert "processes" not in _tables(raw)
    raw.execute(
        "INSERT INTO raw_records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ["prozorro", "tender", "de80d4f75fbf4062905c5e1c1d9afe5c", "ocds-be6bcu-UA-2023-02-16-009364-a",
         datetime(2023, 3, 1, 10, 4, 5, tzinfo=timezone.utc), datetime(2024, 1, 1, tzinfo=timezone.utc),
         "0" * 64, "old.json", '{"id": "de80d4f75fbf4062905c5e1c1d9afe5c"}'],
    )
    raw.close()

    con = connect(db_path)
    try:
        assert current_schema_version(con) == latest_schema_version()
        assert EXPECTED_TABLES <= _tables(con)
        assert con.execute("SELECT source, kind, id, origin FROM raw_records").fetchall() == [
            ("prozorro", "tender", "de80d4f75fbf4062905c5e1c1d9afe5c", "old.json")]
    finally:
        con.close()


def test_upgrade_numbers_the_stored_processes_in_every_table(db_path):
    """0010 gives every stored ocid a process key, in each table of a process, and then requires one."""
    raw = duckdb.connect(str(db_path))
    assert migrate(raw, target=9) == 9
    for ocid in ("ocds-b", "ocds-a"):
        raw.execute("INSERT INTO processes (ocid, source, raw_key) VALUES (?, 'prozorro', ?)", [ocid, "k:" + ocid])
        raw.execute("INSERT INTO bids (ocid, raw_key, bid_id) VALUES (?, ?, 'b1'), (?, ?, 'b2')",
                    [ocid, "k:" + ocid] * 2)
    raw.execute("INSERT INTO contracts (ocid, raw_key, origin, contract_id) VALUES ('ocds-c', 'k:c', 'contract', 'c1')")
    raw.close()

    con = connect(db_path)
    try:
        assert con.execute("SELECT ocid, process_key FROM process_keys ORDER BY ocid").fetchall() == [
            ("ocds-a", 1), ("ocds-b", 2), ("ocds-c", 3)]
        assert con.execute("SELECT ocid, process_key FROM processes ORDER BY ocid").fetchall() == [
            ("ocds-a", 1), ("ocds-b", 2)]
        assert con.execute("SELECT ocid, list(DISTINCT process_key) FROM bids GROUP BY ocid ORDER BY ocid").fetchall() == [
            ("ocds-a", [1]), ("ocds-b", [2])]
        assert con.execute("SELECT process_key FROM contracts").fetchall() == [(3,)]
        with pytest.raises(duckdb.ConstraintException, match="process_key"):
            con.execute("INSERT INTO bids (ocid, raw_key, bid_id) VALUES ('ocds-a', 'k:ocds-a', 'b3')")
    finally:
        con.close()


def test_upgrade_moves_contract_objects_to_their_tender_and_drops_their_ocds_copies(db_path):
    """0011 mends what earlier versions stored: a contract object of server letter b filed under an ocid
    of its own, and a contract kept twice (its OCDS copy beside the contract object)."""
    raw = duckdb.connect(str(db_path))
    assert migrate(raw, target=10) == 10
    raw.execute(next(sql for _, name, sql in _migrations() if name.startswith("0016_")))  # the change log of today's normalizer
    contract = mutated(HEAT_CONTRACT, lambda c: c.update(contractID="UA-2018-01-09-000706-a-b1"))
    builder = BatchBuilder("prozorro", "old.json", 10, 1 << 30)
    builder.add("prozorro", json.dumps({"data": contract}, ensure_ascii=False))
    store_batch(raw, builder.flush())
    right, wrong = "ocds-be6bcu-UA-2018-01-09-000706-a", "ocds-be6bcu-UA-2018-01-09-000706-a-b1"
    raw.execute("INSERT INTO process_keys VALUES (?, 99)", [wrong])  # as the version before f49dcbe filed it
    raw.execute("UPDATE raw_records SET ocid = ?", [wrong])
    for table in ("contracts", "contract_items", "contract_changes"):
        raw.execute(f"UPDATE {table} SET ocid = ?, process_key = 99", [wrong])
    key = raw.execute("SELECT process_key FROM process_keys WHERE ocid = ?", [right]).fetchone()[0]
    raw.execute("INSERT INTO contracts (ocid, process_key, raw_key, origin, contract_id, value_amount) "
                "VALUES (?, ?, ?, 'ocds', ?, 1.0)", [right, key, f"ocds:record:{right}", contract["id"]])
    raw.execute("INSERT INTO contract_changes (ocid, process_key, raw_key, contract_id, change_id) "
                "VALUES (?, ?, ?, ?, 'amendment-1')", [right, key, f"ocds:record:{right}", contract["id"]])
    raw.close()

    con = connect(db_path)
    try:
        assert con.execute("SELECT ocid FROM raw_records").fetchall() == [(right,)]
        assert con.execute("SELECT ocid, process_key, origin, value_amount FROM contracts").fetchall() == [
            (right, key, "contract", float(contract["value"]["amount"]))]
        assert con.execute("SELECT ocid, process_key, count(*) FROM contract_changes GROUP BY ALL").fetchall() == [
            (right, key, 3)]
        assert con.execute("SELECT DISTINCT ocid, process_key FROM contract_items").fetchall() == [(right, key)]
    finally:
        con.close()


def test_upgrade_puts_ocds_amendments_in_force_and_leaves_prozorro_changes_alone(db_path):
    """0012: earlier versions stored OCDS amendments without a status, so the rules reading the changes
    in force never saw them; a ProZorro change keeps the status it was published with."""
    raw = duckdb.connect(str(db_path))
    assert migrate(raw, target=11) == 11
    raw.execute("INSERT INTO process_keys VALUES ('ocds-r9p1qf-1', 1), ('ocds-be6bcu-UA-2025-01-01-000001-a', 2)")
    for key, raw_key, change_id, status in (
            (1, "kg:compiled_release:ocds-r9p1qf-1", "am1", None), (1, "kg:release_set:ocds-r9p1qf-1", "am2", None),
            (1, "kg:record:ocds-r9p1qf-1", "am3", None),
            (2, "prozorro:contract:0a1b", "ch1", "pending"), (2, "prozorro:contract:0a1b", "ch2", None)):
        ocid = "ocds-r9p1qf-1" if key == 1 else "ocds-be6bcu-UA-2025-01-01-000001-a"
        raw.execute("INSERT INTO contract_changes (ocid, process_key, raw_key, contract_id, change_id, status) "
                    "VALUES (?, ?, ?, 'c1', ?, ?)", [ocid, key, raw_key, change_id, status])
    raw.close()
    con = connect(db_path)
    try:
        assert con.execute("SELECT change_id, status FROM contract_changes ORDER BY change_id").fetchall() == [
            ("am1", "active"), ("am2", "active"), ("am3", "active"), ("ch1", "pending"), ("ch2", None)]
    finally:
        con.close()


def test_upgrade_gives_stored_delivery_regions_their_canonical_name(db_path):
    """0013: a delivery region stored as published ("Сумська обл.") gets the name the normalizer now
    stores; one it does not know stays as it was."""
    raw = duckdb.connect(str(db_path))
    assert migrate(raw, target=12) == 12
    raw.execute("INSERT INTO process_keys VALUES ('ocds-be6bcu-UA-2026-06-09-030308-a', 1)")
    for item_id, region in (("i1", "Сумська обл."), ("i2", "  сумська   область "), ("i3", "Чуйская область"),
                            ("i4", None), ("i5", "Сумська область")):
        raw.execute("INSERT INTO items (ocid, process_key, raw_key, item_id, delivery_region) VALUES (?, 1, 'k', ?, ?)",
                    ["ocds-be6bcu-UA-2026-06-09-030308-a", item_id, region])
    raw.close()
    con = connect(db_path)
    try:
        assert con.execute("SELECT item_id, delivery_region FROM items ORDER BY item_id").fetchall() == [
            ("i1", "Сумська область"), ("i2", "Сумська область"), ("i3", "Чуйская область"), ("i4", None),
            ("i5", "Сумська область")]
    finally:
        con.close()


def test_an_upgrade_stopped_between_steps_completes_on_the_next_open(db_path):
    """A migration in steps (0010) whose first step was committed runs again from the start, cleanly."""
    raw = duckdb.connect(str(db_path))
    migrate(raw, target=9)
    raw.execute("INSERT INTO processes (ocid, source, raw_key) VALUES ('ocds-a', 'prozorro', 'k:a')")
    version, name, sql = _migrations()[9]
    assert (version, name) == (10, "0010_process_keys.sql")
    first_step = _STEP.split(sql)[0]
    raw.execute(first_step)  # committed; the file is still at version 9
    raw.close()

    con = connect(db_path)
    try:
        assert current_schema_version(con) == latest_schema_version()
        assert con.execute("SELECT ocid, process_key FROM process_keys").fetchall() == [("ocds-a", 1)]
        assert con.execute("SELECT ocid, process_key FROM processes").fetchall() == [("ocds-a", 1)]
    finally:
        con.close()


def test_read_only_open_of_an_old_schema_asks_for_an_upgrade(db_path, run_cli):
    raw = duckdb.connect(str(db_path))
    migrate(raw, target=1)
    raw.close()
    with pytest.raises(StoreError, match="older"):
        connect_read_only(db_path)
    code, _, err = run_cli("--db", db_path, "status")
    assert code == 2
    assert "monitor load" in err
    # a writing command upgrades it in place
    assert run_cli("--db", db_path, "load", LIFT_REPAIR)[0] == 0
    assert run_cli("--db", db_path, "status")[0] == 0


def _make_too_new(db_path):
    connect(db_path).close()
    con = duckdb.connect(str(db_path))
    con.execute("INSERT INTO schema_migrations VALUES (99, '0099_from_the_future.sql', now())")
    con.close()


def test_a_newer_schema_is_refused_naming_both_versions(db_path):
    _make_too_new(db_path)
    latest = str(latest_schema_version())
    with pytest.raises(SchemaTooNewError) as info:
        connect(db_path)
    assert "99" in str(info.value) and latest in str(info.value)
    with pytest.raises(SchemaTooNewError) as info:
        connect_read_only(db_path)
    assert "99" in str(info.value) and latest in str(info.value)


@pytest.mark.parametrize("command", [("status",), ("query", "SELECT 1"), ("load", str(LIFT_REPAIR))],
                         ids=["status", "query", "load"])
def test_a_newer_schema_is_refused_by_the_cli(db_path, run_cli, command):
    _make_too_new(db_path)
    code, out, err = run_cli("--db", db_path, *command)
    assert code == 2
    assert "99" in err and str(latest_schema_version()) in err
    con = duckdb.connect(str(db_path), read_only=True)
    try:  # nothing was written
        assert con.execute("SELECT count(*) FROM raw_records").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    finally:
        con.close()


def test_read_only_open_of_a_missing_file_is_an_error(tmp_path, run_cli):
    missing = tmp_path / "absent.duckdb"
    with pytest.raises(StoreError):
        connect_read_only(missing)
    code, _, err = run_cli("--db", missing, "query", "SELECT 1")
    assert code == 2
    assert str(missing) in err
    assert not missing.exists()


# --- monitor query -----------------------------------------------------------------------------


@pytest.fixture
def loaded(load_once, db_path):
    code, _, _ = load_once(LIFT_REPAIR, MICROSCOPES, PROZORRO / "plan-complete.json")
    assert code == 0
    return db_path


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM processes",
        "CREATE TABLE x(a int)",
        "INSERT INTO plans SELECT * FROM plans",
        "UPDATE processes SET title = 'x'",
        "DROP TABLE processes",
        "SELECT 1; DELETE FROM processes",
    ],
)
def test_query_refuses_writes(loaded, run_cli, query, sql):
    code, out, err = run_cli("--db", loaded, "query", sql)
    assert code == 2
    assert "read-only" in err
    assert query("SELECT count(*) FROM processes") == [(2,)]
    assert query("SELECT count(*) FROM plans") == [(1,)]
    assert "x" not in {t for (t,) in query("SELECT table_name FROM information_schema.tables")}


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/passwd')",
        "COPY processes TO '{out}'",
        "ATTACH '{db2}' AS other",
    ],
)
def test_query_has_no_access_outside_the_database(loaded, run_cli, tmp_path, sql):
    out_file, other_db = tmp_path / "leak.csv", tmp_path / "other.duckdb"
    code, out, err = run_cli("--db", loaded, "query", sql.format(out=out_file, db2=other_db))
    assert code == 2
    assert "root:" not in out
    assert not out_file.exists() and not other_db.exists()
    assert "query refused: monitor query is read-only" in err


def test_query_json_format(loaded, run_cli):
    code, out, _ = run_cli("--db", loaded, "query", "--format", "json",
                           "SELECT ocid, value_amount, value_currency, date_modified, bids_count "
                           "FROM processes ORDER BY ocid")
    assert code == 0
    assert json.loads(out) == [
        {"ocid": "ocds-be6bcu-UA-2022-07-23-000100-a", "value_amount": 7225305.0, "value_currency": "UAH",
         "date_modified": "2022-07-23T12:03:24.832657+00:00", "bids_count": None},
        {"ocid": "ocds-be6bcu-UA-2023-02-16-009364-a", "value_amount": 4177.0, "value_currency": "UAH",
         "date_modified": "2023-03-01T10:04:05.175816+00:00", "bids_count": 1},
    ]


def test_query_json_of_lists_and_structs(loaded, run_cli):
    code, out, _ = run_cli("--db", loaded, "query", "--format", "json",
                           "SELECT kekv, budget_breakdown, budget_amount FROM plans")
    assert code == 0
    assert json.loads(out) == [{
        "kekv": ["2000"],
        "budget_breakdown": [{"source": "local", "amount": 1500.0, "currency": "UAH", "scheme": "ТПКВКМБ",
                              "code": "2170", "description": "Будівництво закладів охорони здоров’я"}],
        "budget_amount": 10000.0,
    }]


def test_query_csv_format(loaded, run_cli):
    code, out, _ = run_cli("--db", loaded, "query", "--format", "csv",
                           "SELECT ocid, buyer_id, region, title FROM processes ORDER BY ocid")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["ocid", "buyer_id", "region", "title"]
    assert [r[:3] for r in rows[1:]] == [
        ["ocds-be6bcu-UA-2022-07-23-000100-a", "UA-EDR-44496574", "Львівська область"],
        ["ocds-be6bcu-UA-2023-02-16-009364-a", "UA-EDR-39604270", "Київська область"],
    ]
    # a title with commas and quotes survives the CSV round trip
    assert rows[2][3] == ("Послуги поточного ремонту з відновлення працездатності ліфта на об’єкті за адресою: "
                          "Харківське шосе, 148, під’їзд 8, реєстр.№ 19279 у Дарницькому районі м. Києва")


def test_query_csv_neutralises_formulas_json_keeps_the_text(loaded, run_cli):
    # a tender title is untrusted text: opened in a spreadsheet, a CSV cell starting with = would run
    sql = ("SELECT '=HYPERLINK(\"http://evil.example\",\"Послуги\")' AS title, '@SUM(A1)' AS note, "
           "-5 AS delta, '-' || 'x' AS dash, 'Послуги з догляду' AS plain, NULL AS empty")
    code, out, _ = run_cli("--db", loaded, "query", "--format", "csv", sql)
    assert code == 0
    assert list(csv.reader(io.StringIO(out)))[1] == [
        "'=HYPERLINK(\"http://evil.example\",\"Послуги\")", "'@SUM(A1)", "-5", "'-x", "Послуги з догляду", ""]
    code, out, _ = run_cli("--db", loaded, "query", "--format", "json", sql)
    assert code == 0
    assert json.loads(out)[0]["title"] == '=HYPERLINK("http://evil.example","Послуги")'


def test_query_table_format(loaded, run_cli):
    code, out, _ = run_cli("--db", loaded, "query", "SELECT ocid, value_amount FROM processes ORDER BY ocid")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ocid", "value_amount"]
    assert lines[2].split() == ["ocds-be6bcu-UA-2022-07-23-000100-a", "7225305.0"]
    assert lines[-1] == "(2 rows)"


RANGE_250 = "SELECT range AS n FROM range(250)"


def table_rows(out: str) -> tuple[list[str], str]:
    """The data lines of a table (after the header and its rule) and its footer."""
    lines = out.splitlines()
    return lines[2:-1], lines[-1]


def test_query_table_says_when_more_rows_exist_than_it_shows(loaded, run_cli):
    code, out, _ = run_cli("--db", loaded, "query", RANGE_250)
    assert code == 0
    rows, footer = table_rows(out)
    assert [r.strip() for r in rows] == [str(n) for n in range(100)]
    assert footer == "(first 100 rows shown; more exist — use --limit 0 for all, or --format csv/json)"


@pytest.mark.parametrize(("limit", "shown", "footer"), [
    ("3", 3, "(first 3 rows shown; more exist — use --limit 0 for all, or --format csv/json)"),
    ("1", 1, "(first 1 row shown; more exist — use --limit 0 for all, or --format csv/json)"),
    ("250", 250, "(250 rows)"),  # exactly all of them: nothing more to tell
    ("0", 250, "(250 rows)"),  # 0: no limit
], ids=["fewer", "one", "exactly-all", "zero-is-all"])
def test_query_table_limit(loaded, run_cli, limit, shown, footer):
    code, out, _ = run_cli("--db", loaded, "query", "--limit", limit, RANGE_250)
    assert code == 0
    rows, last = table_rows(out)
    assert [r.strip() for r in rows] == [str(n) for n in range(shown)]
    assert last == footer


def test_query_negative_limit_is_a_usage_error(loaded, run_cli):
    code, out, err = run_cli("--db", loaded, "query", "--limit", "-5", RANGE_250)
    assert code == 2
    assert out == ""
    assert "Invalid value for '--limit': -5" in err


def test_query_csv_and_json_print_every_row_unless_limited(loaded, run_cli):
    code, out, _ = run_cli("--db", loaded, "query", "--format", "csv", RANGE_250)
    assert code == 0 and out.splitlines() == ["n"] + [str(n) for n in range(250)]
    code, out, _ = run_cli("--db", loaded, "query", "--format", "json", RANGE_250)
    assert code == 0 and json.loads(out) == [{"n": n} for n in range(250)]
    code, out, _ = run_cli("--db", loaded, "query", "--format", "csv", "--limit", "3", RANGE_250)
    assert code == 0 and out.splitlines() == ["n", "0", "1", "2"]
    code, out, _ = run_cli("--db", loaded, "query", "--format", "json", "--limit", "2", RANGE_250)
    assert code == 0 and json.loads(out) == [{"n": 0}, {"n": 1}]
    code, out, _ = run_cli("--db", loaded, "query", "--format", "csv", "--limit", "0", RANGE_250)
    assert code == 0 and len(out.splitlines()) == 251


def test_query_syntax_error_exits_2(loaded, run_cli):
    code, _, err = run_cli("--db", loaded, "query", "SELEC nonsense")
    assert code == 2
    assert "query failed" in err


# --- monitor status ----------------------------------------------------------------------------


def test_status_json(tmp_path, load, run_cli, db_path):
    assert load(LIFT_REPAIR, MICROSCOPES, PROZORRO / "plan-complete.json")[0] == 0
    bad = write_lines(tmp_path / "bad.jsonl", ['{"id": "x", "tenderID": "UA-1", "dateModified": "2023-01-01T00:00:00"}'])
    assert load(bad)[0] == 0

    code, out, _ = run_cli("--db", db_path, "status", "--format", "json")
    assert code == 0
    info = json.loads(out)
    assert info["schema_version"] == info["latest_schema_version"] == latest_schema_version()
    tables = info["tables"]
    assert (tables["raw_records"], tables["processes"], tables["plans"], tables["items"], tables["bids"]) == (
        3, 2, 1, 2, 1)
    assert tables["quarantine"] == 1 and tables["runs"] == 2
    assert [(r["run_id"], r["command"], r["status"]) for r in info["last_runs"]] == [
        (2, "load", "complete"), (1, "load", "complete")]
    assert info["last_runs"][1]["counts"]["new"] == 3
    assert info["last_runs"][0]["counts"]["quarantined"] == 1
    assert all(r["finished_at"] for r in info["last_runs"])
    assert info["quarantine"]["records"] == 1
    assert info["quarantine"]["by_reason"] == [{"reason": "dateModified without timezone", "records": 1}]
    assert {(r["source"], r["kind"], r["records"]) for r in info["raw_records_by_source"]} == {
        ("prozorro", "plan", 1), ("prozorro", "tender", 2)}
    assert info["cursors"] == []


def test_status_text(load, run_cli, db_path):
    load(LIFT_REPAIR)
    code, out, _ = run_cli("--db", db_path, "status")
    assert code == 0
    assert f"schema version  {latest_schema_version()}" in out
    assert "processes" in out and "quarantine      0 record(s)" in out


def test_status_text_says_where_a_cursor_without_a_value_starts(load, run_cli, db_path):
    """A feed that ended before its first page has a NULL cursor: shown as the start of the feed, not None."""
    load(LIFT_REPAIR)
    con = connect(db_path)
    try:
        con.execute("INSERT INTO cursors VALUES ('prozorro-plans', NULL, now())")
    finally:
        con.close()
    code, out, _ = run_cli("--db", db_path, "status")
    assert code == 0
    (line,) = [line for line in out.splitlines() if "prozorro-plans" in line]
    assert "(start of the feed)" in line and "None" not in line


def test_status_does_not_create_a_database(tmp_path, run_cli):
    missing = tmp_path / "nothing-here.duckdb"
    code, _, err = run_cli("--db", missing, "status")
    assert code == 2
    assert not missing.exists()


# --- which database ----------------------------------------------------------------------------


def test_monitor_db_environment_variable_is_honoured(tmp_path, monkeypatch, run_cli):
    from_env = tmp_path / "from-env.duckdb"
    monkeypatch.setenv("MONITOR_DB", str(from_env))
    code, out, _ = run_cli("load", LIFT_REPAIR)
    assert code == 0 and summary(out)["new"] == 1
    assert from_env.exists()
    code, out, _ = run_cli("query", "--format", "json", "SELECT ocid FROM processes")
    assert code == 0 and json.loads(out) == [{"ocid": "ocds-be6bcu-UA-2023-02-16-009364-a"}]
    assert not (tmp_path / "cwd" / "data" / "monitor.duckdb").exists()


def test_db_option_overrides_the_environment(tmp_path, monkeypatch, run_cli):
    from_env, from_option = tmp_path / "from-env.duckdb", tmp_path / "from-option.duckdb"
    monkeypatch.setenv("MONITOR_DB", str(from_env))
    code, _, _ = run_cli("--db", from_option, "load", MICROSCOPES)
    assert code == 0
    assert from_option.exists() and not from_env.exists()
    con = duckdb.connect(str(from_option), read_only=True)
    try:
        assert con.execute("SELECT ocid FROM processes").fetchall() == [("ocds-be6bcu-UA-2022-07-23-000100-a",)]
    finally:
        con.close()


def test_default_database_path_is_relative_to_the_working_directory(tmp_path, run_cli):
    code, _, _ = run_cli("load", LIFT_REPAIR)
    assert code == 0
    assert (tmp_path / "cwd" / "data" / "monitor.duckdb").exists()


def test_config_file_sets_the_database_and_the_option_still_wins(tmp_path, monkeypatch, run_cli):
    config = tmp_path / "monitor.toml"
    from_config = tmp_path / "from-config.duckdb"
    config.write_text(f'[store]\npath = "{from_config}"\n', encoding="utf-8")
    assert run_cli("--config", config, "load", LIFT_REPAIR)[0] == 0
    assert from_config.exists()
    monkeypatch.setenv("MONITOR_DB", str(tmp_path / "env.duckdb"))
    assert run_cli("--config", config, "load", MICROSCOPES)[0] == 0
    assert (tmp_path / "env.duckdb").exists()  # environment beats the config file


def test_missing_config_file_is_a_usage_error(tmp_path, run_cli):
    code, _, err = run_cli("--config", tmp_path / "absent.toml", "status")
    assert code == 2
    assert "absent.toml" in err
