"""Loading is idempotent, newer copies win, older copies never overwrite, unchanged records are left alone."""

from __future__ import annotations

import json

import duckdb
import pytest

from conftest import (
    CARDINAL,
    LIFT_REPAIR,
    MICROSCOPES,
    OCDS,
    OCDS_RECORDS,
    OCDS_RELEASES,
    PROZORRO,
    PROZORRO_REAL,
    HEAT_CONTRACT,
    body,
    mutated,
    read_json,
    summary,
    table_counts,
    write_json,
    write_lines,
)

MICROSCOPES_OCID = "ocds-be6bcu-UA-2022-07-23-000100-a"
MICROSCOPES_ID = "520d3c3a9a9f47b9bec63eb6d86610eb"
LIFT_ID = "de80d4f75fbf4062905c5e1c1d9afe5c"

EVERYTHING = [
    PROZORRO,                      # tenders, contracts, plans, feeds (skipped), id collisions between doc examples
    PROZORRO_REAL,                 # real tenders, contract, OCDS record and release packages
    OCDS,                          # hand-made release packages (merged releases)
    CARDINAL / "R024.jsonl",       # JSON Lines of compiled releases
]


def _raw_keys(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return set(con.execute("SELECT source, kind, id, sha256 FROM raw_records").fetchall())
    finally:
        con.close()


KEYED = ["processes", "lots", "items", "bids", "awards", "complaints", "bid_documents", "contracts",
         "contract_items", "contract_changes"]


def _process_keys_consistent(con):
    """Each ocid has one key and each key one ocid, and every row carries the key of its ocid."""
    dupes = con.execute(
        "SELECT count(*) - count(DISTINCT ocid), count(*) - count(DISTINCT process_key) FROM process_keys"
    ).fetchone()
    assert dupes == (0, 0), f"process_keys repeats an ocid or a key: {dupes}"
    for table in KEYED:
        wrong = con.execute(
            f"SELECT count(*) FROM {table} t LEFT JOIN process_keys k USING (ocid) "
            "WHERE k.process_key IS DISTINCT FROM t.process_key"
        ).fetchone()[0]
        assert wrong == 0, f"{wrong} row(s) of {table} carry another key than their ocid's"


def _snapshot(db):
    """Every row of every model table (raw_records without fetched_at), as sorted lists.

    Process keys are numbered in the order ocids are first seen, so they are checked for consistency
    and left out of the comparison.
    """
    con = duckdb.connect(str(db), read_only=True)
    try:
        _process_keys_consistent(con)
        snap = {t: sorted(map(repr, con.execute(f"SELECT * EXCLUDE (process_key) FROM {t}").fetchall()))
                for t in KEYED}
        snap |= {t: sorted(map(repr, con.execute(f"SELECT * FROM {t}").fetchall())) for t in ("plans", "organizations")}
        snap["raw_records"] = sorted(map(repr, con.execute("SELECT * EXCLUDE (fetched_at) FROM raw_records").fetchall()))
        return snap
    finally:
        con.close()


def test_loading_the_same_inputs_twice_changes_nothing(load, db_path):
    code, out, _ = load(*EVERYTHING)
    assert code == 0
    first = summary(out)
    assert first["new"] > 50 and first["quarantined"] == 0
    counts, raw, snap = table_counts(db_path), _raw_keys(db_path), _snapshot(db_path)
    assert counts["processes"] > 30 and counts["contract_changes"] > 0 and counts["plans"] == 3
    assert counts["bid_documents"] > 0

    code, out, _ = load(*EVERYTHING)
    assert code == 0
    second = summary(out)
    assert (second["new"], second["updated"], second["quarantined"]) == (0, 0, 0)
    # every record read again is unchanged, or older than the copy that won the first time
    assert second["unchanged"] + second["older"] == first["new"] + first["updated"] + first["unchanged"] + first["older"]
    assert second["skipped"] == first["skipped"]
    assert table_counts(db_path) == counts
    assert _raw_keys(db_path) == raw
    assert _snapshot(db_path) == snap


def test_loading_twice_in_one_run_stores_one_copy(load, query):
    code, out, _ = load(LIFT_REPAIR, LIFT_REPAIR)
    assert code == 0
    assert query("SELECT count(*) FROM raw_records") == [(1,)]
    assert query("SELECT count(*) FROM processes") == [(1,)]
    assert query("SELECT count(*) FROM bids") == [(1,)]


def test_a_newer_copy_replaces_the_record_and_its_child_rows(tmp_path, load, query, query_one):
    assert load(MICROSCOPES)[0] == 0
    assert query("SELECT count(*) FROM items WHERE ocid = ?", [MICROSCOPES_OCID]) == [(1,)]
    (key,) = query_one("SELECT process_key FROM processes")

    def change(t):
        t["dateModified"] = "2022-07-25T09:00:00.000000+03:00"
        t["title"] = "Мікроскопи (змінено)"
        t["status"] = "active.qualification"
        t["items"] = []  # the only item removed

    newer = write_json(tmp_path / "newer.json", mutated(MICROSCOPES, change))
    code, out, _ = load(newer)
    assert code == 0
    assert (summary(out)["updated"], summary(out)["new"], summary(out)["older"]) == (1, 0, 0)
    assert query_one("SELECT title, status, items_count, date_modified::VARCHAR FROM processes") == (
        "Мікроскопи (змінено)", "active.qualification", 0, "2022-07-25 06:00:00+00")
    assert query("SELECT count(*) FROM items WHERE ocid = ?", [MICROSCOPES_OCID]) == [(0,)]
    assert query("SELECT count(*) FROM processes") == [(1,)]
    assert query("SELECT count(*) FROM lots") == [(1,)]  # re-made once, not duplicated
    assert query_one("SELECT id, origin FROM raw_records") == (MICROSCOPES_ID, str(newer))
    # the re-made rows keep the process's key; a process seen later gets the next number
    assert query("SELECT DISTINCT process_key FROM processes UNION SELECT DISTINCT process_key FROM lots") == [(key,)]
    assert load(LIFT_REPAIR)[0] == 0
    assert query("SELECT ocid, process_key FROM process_keys ORDER BY process_key") == [
        (MICROSCOPES_OCID, key), ("ocds-be6bcu-UA-2023-02-16-009364-a", key + 1)]


def test_a_newer_copy_replaces_contract_changes(tmp_path, load, query):
    assert load(HEAT_CONTRACT)[0] == 0
    assert query("SELECT count(*) FROM contract_changes") == [(3,)]

    def change(c):
        c["dateModified"] = "2019-02-01T10:00:00+02:00"
        c["changes"] = c["changes"][:1]

    assert load(write_json(tmp_path / "contract.json", mutated(HEAT_CONTRACT, change)))[0] == 0
    assert query("SELECT count(*) FROM contract_changes") == [(1,)]
    assert query("SELECT changes_count FROM contracts") == [(1,)]


def test_copies_in_one_file_count_as_older_or_unchanged_as_across_files(tmp_path, load, query_one):
    """The newer copy first, then an older one and the same newer one again, in one file: one new, one
    older (it was counted unchanged when both copies were in one batch), one unchanged."""
    def change(t):
        t["dateModified"] = "2022-07-25T09:00:00.000000+03:00"
        t["title"] = "Мікроскопи (новіша копія)"

    newer = mutated(MICROSCOPES, change)
    code, out, _ = load(write_lines(tmp_path / "copies.jsonl", [newer, body(read_json(MICROSCOPES)), newer]))
    assert code == 0
    counts = summary(out)
    assert (counts["new"], counts["older"], counts["unchanged"], counts["updated"]) == (1, 1, 1, 0)
    assert query_one("SELECT title FROM processes") == ("Мікроскопи (новіша копія)",)


def test_an_older_copy_never_overwrites_a_newer_one(tmp_path, load, query, query_one):
    def change(t):
        t["dateModified"] = "2022-07-25T09:00:00.000000+03:00"
        t["title"] = "Мікроскопи (новіша копія)"
        t["items"] = []

    newer = write_json(tmp_path / "newer.json", mutated(MICROSCOPES, change))
    assert load(newer)[0] == 0
    stored = query_one("SELECT sha256, fetched_at, origin FROM raw_records")

    code, out, _ = load(MICROSCOPES)  # the real, older copy (dateModified 2022-07-23)
    assert code == 0
    counts = summary(out)
    assert (counts["older"], counts["new"], counts["updated"], counts["unchanged"]) == (1, 0, 0, 0)
    assert query_one("SELECT sha256, fetched_at, origin FROM raw_records") == stored
    assert query_one("SELECT title, items_count FROM processes") == ("Мікроскопи (новіша копія)", 0)
    assert query("SELECT count(*) FROM items") == [(0,)]


def test_an_older_copy_later_in_the_same_file_loses(tmp_path, load, query_one):
    newer = mutated(MICROSCOPES, lambda t: t.update(dateModified="2022-07-25T09:00:00+03:00", title="новіша"))
    older = mutated(MICROSCOPES, lambda t: t.update(title="старіша"))
    path = write_lines(tmp_path / "both.jsonl", [newer, older])
    code, out, _ = load(path)
    assert code == 0
    assert query_one("SELECT title FROM processes") == ("новіша",)
    assert query_one("SELECT origin FROM raw_records") == (f"{path}:1",)


@pytest.mark.parametrize("same_date", [False, True], ids=["newer-wins", "same-date"])
def test_two_records_of_one_process_in_one_batch_leave_one_process(tmp_path, run_cli, same_date):
    """Two tenders (different ids) with one tenderID: one owner, whichever order and batch they come in."""
    def second(t):
        t["id"] = "f" * 32
        t["title"] = "Друга копія"
        if not same_date:
            t["dateModified"] = "2022-07-25T09:00:00+03:00"
    first, other = mutated(MICROSCOPES, lambda t: None), mutated(MICROSCOPES, second)
    stores = []
    for name, files in (("together", [[first, other]]), ("reversed", [[other, first]]),
                        ("apart", [[first], [other]]), ("apart-reversed", [[other], [first]])):
        db = tmp_path / f"{name}.duckdb"
        for n, lines in enumerate(files):
            assert run_cli("--db", db, "load", write_lines(tmp_path / f"{name}-{n}.jsonl", lines))[0] == 0
        with duckdb.connect(str(db), read_only=True) as con:
            stores.append(con.execute("SELECT ocid, raw_key, title FROM processes").fetchall()
                          + con.execute("SELECT DISTINCT raw_key FROM items").fetchall())
    # the newer record, or on the same date the larger raw_key (the "fff..." id), owns the process
    assert stores[0] == [(MICROSCOPES_OCID, "prozorro:tender:" + "f" * 32, "Друга копія"),
                         ("prozorro:tender:" + "f" * 32,)]
    assert all(store == stores[0] for store in stores), stores


def test_on_the_same_date_a_native_tender_beats_an_ocds_copy_in_any_order(tmp_path, run_cli):
    """The ProZorro tender and an OCDS compiled release of the same process with the same date: the
    native tender owns the process, loaded first or second, in one batch or two."""
    tender = json.loads(MICROSCOPES.read_text(encoding="utf-8"))
    release = json.loads(OCDS_RECORDS.read_text(encoding="utf-8"))["records"][0]["compiledRelease"]
    release.update(ocid=MICROSCOPES_OCID, id=f"{MICROSCOPES_OCID}-{tender['dateModified']}", date=tender["dateModified"])
    files = [write_json(tmp_path / "tender.json", tender), write_lines(tmp_path / "release.jsonl", [release])]
    for n, order in enumerate((files, files[::-1])):
        db = tmp_path / f"kinds-{n}.duckdb"
        for path in order:
            assert run_cli("--db", db, "load", path)[0] == 0
        with duckdb.connect(str(db), read_only=True) as con:
            assert con.execute("SELECT raw_key FROM processes WHERE ocid = ?", [MICROSCOPES_OCID]).fetchall() == [
                (f"prozorro:tender:{MICROSCOPES_ID}",)]


def test_same_date_different_content_gives_the_same_store_in_any_order(tmp_path, run_cli):
    """Two copies with one dateModified and different content: the winner does not depend on order."""
    a = write_json(tmp_path / "a.json", mutated(LIFT_REPAIR, lambda t: t.update(title="копія A")))
    b = write_json(tmp_path / "b.json", mutated(LIFT_REPAIR, lambda t: t.update(title="копія B")))
    titles = []
    for order in ((a, b), (b, a)):
        db = tmp_path / f"{order[0].stem}-first.duckdb"
        for path in order:
            assert run_cli("--db", db, "load", path)[0] == 0
        con = duckdb.connect(str(db), read_only=True)
        titles.append(con.execute("SELECT p.title, r.sha256 FROM processes p, raw_records r").fetchall())
        con.close()
    assert len(titles[0]) == 1
    assert titles[0] == titles[1]


def test_only_changed_records_are_renormalized(tmp_path, load, query):
    assert load(LIFT_REPAIR, MICROSCOPES)[0] == 0
    before = dict(query("SELECT id, fetched_at FROM raw_records"))

    newer = write_json(tmp_path / "newer.json",
                       mutated(MICROSCOPES, lambda t: t.update(dateModified="2022-07-25T09:00:00+03:00")))
    code, out, _ = load(LIFT_REPAIR, newer)
    assert code == 0
    counts = summary(out)
    assert (counts["unchanged"], counts["updated"], counts["new"]) == (1, 1, 0)
    after = dict(query("SELECT id, fetched_at FROM raw_records"))
    assert after[LIFT_ID] == before[LIFT_ID]                  # untouched record: same fetched_at
    assert after[MICROSCOPES_ID] > before[MICROSCOPES_ID]     # the changed one was re-read
    assert query("SELECT count(*) FROM processes") == [(2,)]
    assert query("SELECT count(*) FROM bids") == [(1,)]


def test_release_sets_are_not_recompiled_when_nothing_changed(load, query):
    assert load(OCDS_RELEASES)[0] == 0
    before = query("SELECT id, fetched_at FROM raw_records ORDER BY id")
    processes = query("SELECT * FROM processes ORDER BY ocid")
    code, out, _ = load(OCDS_RELEASES)
    assert code == 0 and summary(out)["unchanged"] == 10
    assert query("SELECT id, fetched_at FROM raw_records ORDER BY id") == before
    assert query("SELECT * FROM processes ORDER BY ocid") == processes


@pytest.mark.parametrize("first,second", [(OCDS_RECORDS, OCDS_RELEASES), (LIFT_REPAIR, MICROSCOPES)],
                         ids=["ocds-packages", "two-tenders"])
def test_load_order_does_not_change_the_store(tmp_path, run_cli, first, second):
    snaps = []
    for order in ((first, second), (second, first)):
        db = tmp_path / f"{order[0].stem}-first.duckdb"
        for path in order:
            assert run_cli("--db", db, "load", path)[0] == 0
        snaps.append(_snapshot(db))
    assert snaps[0] == snaps[1]


def test_crlf_and_lf_copies_of_a_file_are_the_same_records(tmp_path, load):
    records = [json.loads(LIFT_REPAIR.read_text(encoding="utf-8")), json.loads(MICROSCOPES.read_text(encoding="utf-8"))]
    text = [json.dumps(r, ensure_ascii=False) for r in records]
    lf, crlf = tmp_path / "lf.jsonl", tmp_path / "crlf.jsonl"
    lf.write_bytes("\n".join(text).encode("utf-8") + b"\n")
    crlf.write_bytes("\r\n".join(text).encode("utf-8") + b"\r\n")
    assert summary(load(lf)[1])["new"] == 2
    counts = summary(load(crlf)[1])
    assert (counts["unchanged"], counts["updated"], counts["new"], counts["quarantined"]) == (2, 0, 0, 0)
