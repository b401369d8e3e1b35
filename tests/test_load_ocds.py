"""Loading OCDS: record packages, release packages (merged with ocdsmerge), JSON Lines of compiled
releases, and the Cardinal indicator inputs."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone

import duckdb
import pytest

from monitor.export.selection import RAW_QUERY
from conftest import (CARDINAL, HEAT_CONTRACT, LIFT_REPAIR, OCDS, OCDS_RECORDS, OCDS_RELEASES, mutated, read_json,
                      summary, write_json, write_lines)

UTC = timezone.utc
HAND_OCID = "ocds-be6bcu-UA-2024-03-01-000777-a"
HAND_TITLE = "Послуги соціального супроводу сімей у складних життєвих обставинах"


def _compiled_releases() -> list[dict]:
    return [record["compiledRelease"] for record in read_json(OCDS_RECORDS)["records"]]


def _expected_process(compiled: dict) -> tuple:
    tender = compiled["tender"]
    return (
        compiled["ocid"],
        tender["tenderID"],
        tender["title"].strip(),
        tender["status"],
        tender["procurementMethod"],
        tender["procurementMethodType"],
        float(tender["value"]["amount"]),
        tender["value"]["currency"],
        compiled["buyer"]["id"],
        len(tender["items"]),
        len(compiled["awards"]),
        len(compiled["contracts"]),
        datetime.fromisoformat(compiled["date"]).astimezone(UTC),
    )


PROCESS_COLUMNS = (
    "ocid, tender_public_id, title, status, procurement_method, procurement_method_type, value_amount, "
    "value_currency, buyer_id, items_count, awards_count, contracts_count, date_modified"
)


# --- record package ----------------------------------------------------------------------------


def test_record_package_gives_ten_processes_from_the_compiled_releases(load_once, query):
    code, out, _ = load_once(OCDS_RECORDS)
    assert code == 0
    assert summary(out)["new"] == 10 and summary(out)["quarantined"] == 0
    expected = sorted(_expected_process(c) for c in _compiled_releases())
    assert len(expected) == 10
    assert query(f"SELECT {PROCESS_COLUMNS} FROM processes ORDER BY ocid") == expected
    assert query("SELECT DISTINCT source, split_part(raw_key, ':', 2) FROM processes") == [("ocds", "record")]
    assert query("SELECT kind, count(*) FROM raw_records GROUP BY kind") == [("record", 10)]


def test_record_package_health_centre_values(load_once, query, query_one):
    """UA-2018-06-22-002443-a: a primary health-care centre in Toretsk (SOURCES.md)."""
    load_once(OCDS_RECORDS)
    ocid = "ocds-be6bcu-UA-2018-06-22-002443-a"
    assert query_one("SELECT title, value_amount, value_vat_included, buyer_id, buyer_kind, region, "
                     "procurement_method_type FROM processes WHERE ocid = ?", [ocid]) == (
        "Настільний світильник", 2570.0, True, "UA-EDR-37522155", "general", "Донецька область", "reporting")
    compiled = next(c for c in _compiled_releases() if c["ocid"] == ocid)
    award = compiled["awards"][0]
    assert query("SELECT award_id, status, value_amount, supplier_id FROM awards WHERE ocid = ?", [ocid]) == [
        (award["id"], award["status"], float(award["value"]["amount"]), award["suppliers"][0]["id"])]
    contract = compiled["contracts"][0]
    assert query("SELECT contract_id, origin, status, value_amount, buyer_id FROM contracts WHERE ocid = ?",
                 [ocid]) == [(contract["id"], "ocds", contract["status"], float(contract["value"]["amount"]),
                              "UA-EDR-37522155")]


def test_record_package_lists_every_item(load_once, query):
    load_once(OCDS_RECORDS)
    expected = sorted((c["ocid"], i["id"], i["classification"]["id"], float(i["quantity"]))
                      for c in _compiled_releases() for i in c["tender"]["items"])
    assert query("SELECT ocid, item_id, cpv, quantity FROM items ORDER BY ALL") == expected
    # UA-2018-06-22-002412-a has five items
    assert query("SELECT count(*) FROM items WHERE ocid = 'ocds-be6bcu-UA-2018-06-22-002412-a'") == [(5,)]


def test_organization_ids_resolved_through_parties(load_once, query):
    load_once(OCDS_RECORDS)
    parties = {}
    for compiled in _compiled_releases():
        for party in compiled["parties"]:
            parties[f'{party["identifier"]["scheme"]}-{party["identifier"]["id"]}'] = party["name"]
    assert query("SELECT org_id, name FROM organizations ORDER BY org_id") == sorted(parties.items())
    assert all(org.startswith("UA-EDR-") for org in parties)
    # award suppliers are organization ids too
    assert query("SELECT count(*) FROM awards WHERE supplier_id NOT IN (SELECT org_id FROM organizations)") == [(0,)]


# --- release package ---------------------------------------------------------------------------


def test_release_package_alone_gives_ten_processes(load_once, query):
    releases = read_json(OCDS_RELEASES)["releases"]
    code, out, _ = load_once(OCDS_RELEASES)
    assert code == 0
    assert summary(out)["new"] == 10 and summary(out)["quarantined"] == 0
    assert query("SELECT kind, count(*) FROM raw_records GROUP BY kind") == [("release", 10)]
    expected = sorted(
        (r["ocid"], "ocds:release_set:" + r["ocid"], r["buyer"]["id"], len(r["contracts"]),
         datetime.fromisoformat(r["date"]).astimezone(UTC))
        for r in releases
    )
    assert query("SELECT ocid, raw_key, buyer_id, contracts_count, date_modified FROM processes ORDER BY ocid") == \
        expected
    contracts = sorted((r["ocid"], c["id"], c["contractID"], c["status"], float(c["value"]["amount"]))
                       for r in releases for c in r["contracts"])
    assert query("SELECT ocid, contract_id, contract_public_id, status, value_amount FROM contracts "
                 "ORDER BY ALL") == contracts


def test_hand_made_release_package_is_merged_into_one_process(load_once, query, query_one):
    path = OCDS / "release-package-tender-then-award.json"
    code, out, _ = load_once(path)
    assert code == 0
    assert summary(out)["new"] == 2
    assert query("SELECT count(*) FROM raw_records WHERE kind = 'release'") == [(2,)]
    _assert_hand_made_merged(query, query_one)


def _assert_hand_made_merged(query, query_one):
    assert query_one(
        "SELECT ocid, raw_key, title, status, procurement_method_type, value_amount, buyer_id, buyer_kind, region, "
        "items_count, awards_count, date_modified FROM processes"
    ) == (
        HAND_OCID, f"ocds:release_set:{HAND_OCID}",
        HAND_TITLE,           # from the tender release only
        "complete",           # the award release changed tender.status
        "belowThreshold", 150000.0, "UA-EDR-12345678", "social", "Полтавська область",
        1, 1,
        datetime(2024, 3, 20, 10, 0, tzinfo=UTC),  # the newest release's date
    )
    assert query("SELECT award_id, status, value_amount, value_currency, supplier_id, supplier_name FROM awards") == [
        ("award-1", "active", 148500.0, "UAH", "UA-EDR-87654321", "Громадська організація «Світло надії»")]
    assert query("SELECT item_id, cpv, quantity, unit_name FROM items") == [("item-1", "85311000-2", 12.0, "місяць")]
    assert query("SELECT org_id FROM organizations ORDER BY org_id") == [("UA-EDR-12345678",), ("UA-EDR-87654321",)]
    assert query("SELECT count(*) FROM quarantine") == [(0,)]


@pytest.mark.parametrize("order", ["tender-first", "award-first"])
def test_releases_from_two_files_in_two_runs_are_merged(load, query, query_one, order):
    files = [OCDS / "release-package-1-tender.json", OCDS / "release-package-2-award.json"]
    if order == "award-first":
        files.reverse()
    for path in files:
        code, out, _ = load(path)
        assert code == 0 and summary(out)["new"] == 1
    assert query("SELECT count(*) FROM runs WHERE status = 'complete'") == [(2,)]
    _assert_hand_made_merged(query, query_one)


def test_source_option_names_the_publisher(load, query):
    assert load(OCDS / "release-package-tender-then-award.json", options=("--source", "poltava-test"))[0] == 0
    assert query("SELECT DISTINCT source FROM raw_records") == [("poltava-test",)]
    assert query("SELECT source, raw_key FROM processes") == [
        ("poltava-test", f"poltava-test:release_set:{HAND_OCID}")]


# --- JSON Lines of compiled releases -----------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_json_lines_of_compiled_releases(tmp_path, load_once, query, suffix):
    lines = [json.dumps(c, ensure_ascii=False) for c in _compiled_releases()]
    path = tmp_path / f"compiled{suffix}"
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    code, out, _ = load_once(path)
    assert code == 0
    assert summary(out)["new"] == 10 and summary(out)["quarantined"] == 0
    assert query("SELECT kind, count(*) FROM raw_records GROUP BY kind") == [("compiled_release", 10)]
    assert query("SELECT DISTINCT split_part(origin, ':', -1) FROM raw_records ORDER BY 1") == [
        (str(n),) for n in sorted(range(1, 11), key=str)]
    expected = sorted(_expected_process(c) for c in _compiled_releases())
    assert query(f"SELECT {PROCESS_COLUMNS} FROM processes ORDER BY ocid") == expected


def test_json_lines_with_a_bad_first_line_still_loads_the_compiled_releases(tmp_path, load_once, query):
    """The first line lacks its ocid; the nine compiled releases after it are still compiled releases."""
    compiled = _compiled_releases()
    first = dict(compiled[0])
    del first["ocid"]
    path = write_lines(tmp_path / "compiled.jsonl", [first, *compiled[1:]])
    code, out, _ = load_once(path)
    assert code == 0
    assert summary(out)["quarantined"] == 1
    assert query("SELECT line FROM quarantine") == [(1,)]
    assert query("SELECT kind, count(*) FROM raw_records GROUP BY kind") == [("compiled_release", 9)]
    assert query("SELECT count(*) FROM processes") == [(9,)]


# --- Cardinal indicator inputs -----------------------------------------------------------------


CARDINAL_FILES = sorted(CARDINAL.glob("*.jsonl"))


def test_cardinal_fixtures_are_present():
    assert len(CARDINAL_FILES) == 15


@pytest.mark.parametrize("path", CARDINAL_FILES, ids=lambda p: p.name)
def test_cardinal_input_loads_without_quarantine(load_once, query, path):
    releases = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    code, out, _ = load_once(path)
    assert code == 0
    counts = summary(out)
    assert counts["quarantined"] == 0
    assert counts["new"] == len(releases)
    assert query("SELECT count(*) FROM quarantine") == [(0,)]
    assert query("SELECT ocid FROM processes ORDER BY ocid") == sorted((r["ocid"],) for r in releases)
    expected_bids = sum(max(1, len(b.get("relatedLots") or []))
                        for r in releases for b in r.get("bids", {}).get("details", []))
    expected_awards = sum(len(r.get("awards", [])) for r in releases)
    assert query("SELECT count(*) FROM bids") == [(expected_bids,)]
    assert query("SELECT count(*) FROM awards") == [(expected_awards,)]


def test_cardinal_numbers_reach_the_model(load_once, query):
    """R018: numberOfTenderers and procurementMethod as published, per ocid."""
    path = CARDINAL / "R018.jsonl"
    releases = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    load_once(path)
    assert query("SELECT ocid, number_of_tenderers, procurement_method FROM processes ORDER BY ocid") == sorted(
        (r["ocid"], r["tender"]["numberOfTenderers"], r["tender"].get("procurementMethod")) for r in releases)


def test_cardinal_bid_tenderers_without_parties_keep_their_ids(load_once, query):
    """R024 bids name tenderers only by id ("W", "L"): with no parties to resolve them, the id stays."""
    path = CARDINAL / "R024.jsonl"
    first = json.loads(path.read_text().splitlines()[0])
    load_once(path)
    assert query("SELECT tenderer_id, value_amount, value_currency FROM bids WHERE ocid = ? ORDER BY tenderer_id",
                 [first["ocid"]]) == sorted(
        (b["tenderers"][0]["id"], float(b["value"]["amount"]), b["value"]["currency"])
        for b in first["bids"]["details"])
    assert query("SELECT supplier_id FROM awards WHERE ocid = ?", [first["ocid"]]) == [("W",)]


def test_record_and_release_packages_of_the_same_processes_do_not_double_count(tmp_path, run_cli):
    """Both packages describe the same ten ocids; together they make ten processes, in either order."""
    results = []
    for order in ((OCDS_RECORDS, OCDS_RELEASES), (OCDS_RELEASES, OCDS_RECORDS)):
        db = tmp_path / f"{order[0].stem}.duckdb"
        for path in order:
            assert run_cli("--db", db, "load", path)[0] == 0
        con = duckdb.connect(str(db), read_only=True)
        processes = con.execute("SELECT ocid, raw_key, value_amount FROM processes ORDER BY ocid").fetchall()
        contracts = con.execute("SELECT ocid, contract_id FROM contracts ORDER BY ALL").fetchall()
        con.close()
        assert len(processes) == 10
        assert len({ocid for ocid, _ in contracts}) == 10
        results.append((processes, contracts))
    assert results[0] == results[1]


def _later_release(release: dict, ocid: str, date: str, release_id: str) -> dict:
    """A copy of ProZorro's real contract release, re-dated: the contract ended and was paid."""
    release = json.loads(json.dumps(release))
    release.update(ocid=ocid, date=date, id=release_id)
    release["contracts"][0]["status"] = "terminated"
    return release


def _release_package(path, *releases: dict):
    package = {key: value for key, value in read_json(OCDS_RELEASES).items() if key != "releases"}
    return write_json(path, {**package, "releases": list(releases)})


@pytest.mark.parametrize("order", ["record-first", "release-first"])
def test_newer_release_is_merged_on_top_of_the_record_not_instead_of_it(tmp_path, load, query, db_path, order):
    """ProZorro's release packages carry what changed (here a contract); the record package the whole
    process. A newer release changes the contract and keeps the tender, items and awards of the record,
    whichever file is loaded first (it replaced the whole process, leaving title and items empty)."""
    record = read_json(OCDS_RECORDS)["records"][0]
    compiled, ocid = record["compiledRelease"], record["ocid"]
    release = next(r for r in read_json(OCDS_RELEASES)["releases"] if r["ocid"] == ocid)
    later = _later_release(release, ocid, "2018-07-02T09:00:00+03:00", "later-1")
    files = [OCDS_RECORDS, _release_package(tmp_path / "later.json", later)]
    if order == "release-first":
        files.reverse()
    for path in files:
        assert load(path)[0] == 0
    assert query(f"SELECT {PROCESS_COLUMNS}, raw_key FROM processes WHERE ocid = ?", [ocid]) == [
        _expected_process(compiled)[:-1] + (datetime(2018, 7, 2, 6, tzinfo=UTC), f"ocds:release_set:{ocid}")]
    assert query("SELECT contract_id, status FROM contracts WHERE ocid = ?", [ocid]) == [
        (compiled["contracts"][0]["id"], "terminated")]
    assert query("SELECT count(*) FROM items WHERE ocid = ?", [ocid]) == [(len(compiled["tender"]["items"]),)]
    others = sorted(_expected_process(c) for c in _compiled_releases() if c["ocid"] != ocid)
    assert query(f"SELECT {PROCESS_COLUMNS} FROM processes WHERE ocid <> ? ORDER BY ocid", [ocid]) == others
    # the verbatim records an export --raw gives for the process: the record and the release
    con = duckdb.connect(str(db_path), read_only=True)
    con.execute("CREATE TEMP TABLE x_raw_keys AS SELECT raw_key FROM processes WHERE ocid = ?", [ocid])
    assert sorted(row[1:3] for row in con.execute(RAW_QUERY).fetchall()) == [
        ("record", ocid), ("release", f"{ocid}/later-1")]
    con.close()


def test_a_release_older_than_the_record_does_not_undo_it(tmp_path, load, query):
    """Only the releases after the record's compiled release are merged on top of it: an older one
    (here it says the contract was terminated) is already in the record, or was overtaken by it."""
    record = read_json(OCDS_RECORDS)["records"][0]
    compiled, ocid = record["compiledRelease"], record["ocid"]
    release = next(r for r in read_json(OCDS_RELEASES)["releases"] if r["ocid"] == ocid)
    assert load(OCDS_RECORDS)[0] == 0
    earlier = _later_release(release, ocid, "2018-06-22T13:00:00+03:00", "earlier-1")
    later = json.loads(json.dumps(release))
    later.update(date="2018-07-02T09:00:00+03:00", id="later-1")
    later["contracts"] = [{"id": later["contracts"][0]["id"], "value": {**later["contracts"][0]["value"], "amount": 99000}}]
    code, out, _ = load(_release_package(tmp_path / "two.json", earlier, later))
    assert code == 0 and summary(out)["new"] == 2
    assert query("SELECT status, value_amount FROM contracts WHERE ocid = ?", [ocid]) == [
        (compiled["contracts"][0]["status"], 99000.0)]
    assert compiled["contracts"][0]["status"] != "terminated"


@pytest.mark.parametrize("order", ["tender-first", "release-first"])
def test_releases_alone_do_not_replace_the_prozorro_tender(tmp_path, load, query, order):
    """A release set merged from a contract release alone is not the process: the native tender stays,
    even when the release is newer, and in either order."""
    tender = read_json(LIFT_REPAIR)
    ocid = "ocds-be6bcu-" + tender["tenderID"]
    release = _later_release(read_json(OCDS_RELEASES)["releases"][0], ocid, "2023-04-01T10:00:00+03:00", "r-1")
    files = [LIFT_REPAIR, _release_package(tmp_path / "contract.json", release)]
    if order == "release-first":
        files.reverse()
    for path in files:
        assert load(path)[0] == 0
    assert query("SELECT raw_key, title, items_count, bids_count FROM processes") == [
        (f"prozorro:tender:{tender['id']}", tender["title"], 1, 1)]
    assert query("SELECT count(*) FROM raw_records WHERE kind = 'release'") == [(1,)]


@pytest.mark.parametrize("shape", ["record-package", "json-lines", "compiled-release-null"])
def test_record_with_its_releases_and_no_compiled_release_is_merged(tmp_path, load, query, query_one, shape):
    """OCDS lets a record carry its releases without a compiled release; they are merged like a release
    package, in a record package and in JSON Lines alike (a JSON Lines record was quarantined, "its
    releases are only links")."""
    record = {"ocid": HAND_OCID, "releases": read_json(OCDS / "release-package-tender-then-award.json")["releases"]}
    if shape == "record-package":
        package = {key: value for key, value in read_json(OCDS_RECORDS).items() if key != "records"}
        path = write_json(tmp_path / "records.json", {**package, "records": [record]})
    else:
        if shape == "compiled-release-null":
            record["compiledRelease"] = None
        path = write_lines(tmp_path / "records.jsonl", [record])
    code, out, _ = load(path)
    assert code == 0
    assert summary(out)["new"] == 2 and summary(out)["quarantined"] == 0
    assert query("SELECT kind, id FROM raw_records ORDER BY id") == [
        ("release", f"{HAND_OCID}/{r['id']}") for r in sorted(record["releases"], key=lambda r: r["id"])]
    _assert_hand_made_merged(query, query_one)


def test_record_with_linked_releases_only_is_quarantined(tmp_path, load, query):
    record = read_json(OCDS_RECORDS)["records"][0]
    del record["compiledRelease"]
    code, out, _ = load(write_lines(tmp_path / "links.jsonl", [record]))
    assert code == 0 and summary(out)["quarantined"] == 1
    assert query("SELECT line, record_id, reason FROM quarantine") == [
        (1, record["ocid"], "record has no compiledRelease and its releases are only links; cannot compile it")]


@pytest.mark.parametrize("order", ["record-first", "contract-first"])
def test_contract_object_replaces_its_ocds_copy(tmp_path, load, query, order):
    """A process from an OCDS record and its contract from ProZorro's contracts feed: one contract, the
    contract object's, with its items and changes (the OCDS copy stayed beside it and doubled the sums)."""
    compiled = read_json(OCDS_RECORDS)["records"][0]["compiledRelease"]
    ocid, ocds_contract = compiled["ocid"], compiled["contracts"][0]
    contract = mutated(HEAT_CONTRACT, lambda c: c.update(id=ocds_contract["id"], contractID=ocds_contract["contractID"]))
    files = [OCDS_RECORDS, write_json(tmp_path / "contract.json", {"data": contract})]
    if order == "contract-first":
        files.reverse()
    for path in files:
        assert load(path)[0] == 0
    assert query("SELECT ocid, contract_id, origin, value_amount, changes_count FROM contracts WHERE ocid = ?",
                 [ocid]) == [(ocid, contract["id"], "contract", float(contract["value"]["amount"]), 3)]
    assert query("SELECT count(*), count(DISTINCT raw_key) FROM contract_changes WHERE ocid = ?", [ocid]) == [(3, 1)]
    assert query("SELECT DISTINCT split_part(raw_key, ':', 2) FROM contract_items WHERE ocid = ?", [ocid]) == [
        ("contract",)]
    assert query("SELECT raw_key FROM processes WHERE ocid = ?", [ocid]) == [(f"ocds:record:{ocid}",)]


@pytest.mark.parametrize("package", [OCDS_RELEASES, OCDS_RECORDS], ids=["release-package", "record-package"])
def test_package_larger_than_a_batch_is_stored_whole(tmp_path, run_cli, package):
    """A .json package is cut into batches of [load] batch_rows records; every batch is stored, not only
    the last (a 50,000-release file used to keep the last few thousand releases and count them all)."""
    config = tmp_path / "small-batches.toml"
    config.write_text("[load]\nbatch_rows = 3\n")
    tables = {}
    for name, options in (("one-batch", ()), ("batches-of-3", ("--config", config))):
        db = tmp_path / f"{name}.duckdb"
        code, out, _ = run_cli(*options, "--db", db, "load", package)
        assert code == 0
        assert summary(out)["new"] == 10, out
        con = duckdb.connect(str(db), read_only=True)
        tables[name] = {
            "raw": con.execute("SELECT kind, ocid, sha256 FROM raw_records ORDER BY ALL").fetchall(),
            "processes": con.execute("SELECT ocid, raw_key, value_amount, contracts_count FROM processes "
                                     "ORDER BY ocid").fetchall(),
            "contracts": con.execute("SELECT ocid, contract_id, value_amount FROM contracts ORDER BY ALL").fetchall(),
        }
        con.close()
    assert len(tables["one-batch"]["processes"]) == 10
    assert tables["batches-of-3"] == tables["one-batch"]


def test_release_without_date_is_quarantined_and_does_not_block_its_ocid(tmp_path, load, query):
    """ocdsmerge cannot merge a release without date; stored, it made every later release of the ocid fail."""
    package = read_json(OCDS / "release-package-tender-then-award.json")
    del package["releases"][1]["date"]
    path = tmp_path / "award-without-date.json"
    path.write_text(json.dumps(package, ensure_ascii=False))
    code, out, _ = load(path)
    assert code == 0
    assert summary(out)["new"] == 1 and summary(out)["quarantined"] == 1
    assert query("SELECT origin, locator, reason FROM quarantine") == [
        (str(path), "/releases/1",
         "release without date (OCDS requires it; the releases of an ocid cannot be merged without it)")]
    assert query("SELECT ocid, title FROM processes") == [(HAND_OCID, HAND_TITLE)]
    code, out, _ = load(OCDS / "release-package-tender-then-award.json")  # the dated award merges later
    assert summary(out)["quarantined"] == 0
    assert query("SELECT count(*) FROM awards WHERE ocid = ?", [HAND_OCID]) == [(1,)]
