"""``monitor export``: files, row counts, filters, manifest, spreadsheet safety, atomic output.

The database is the shipped sample (``data/sample``, real records plus the synthetic world) loaded
with classification and every flag rule, at the sample's pinned clock; a few processes then get
hostile titles (spreadsheet formulas) and some flags a history (resolved, raised earlier), so the
filters have something to tell apart. Expectations are computed with SQL on that database.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shlex
import shutil
import xml.etree.ElementTree as ET
import zipfile
from datetime import timezone
from pathlib import Path

import duckdb
import pytest

from monitor.cli import main
from monitor.export import writers
from monitor.export.selection import make_filters

pytestmark = pytest.mark.flags_after_store

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"
DEMO_CONFIG = SAMPLE / "demo.toml"
TABLES = ("flags", "processes", "lots", "items", "bids", "awards", "contracts", "contract_items",
          "contract_changes", "complaints", "bid_documents", "plans", "organizations", "classifications",
          "plan_classifications")
HOSTILE = ['=HYPERLINK("http://x","y")', "+1", "-2+3", "@SUM(A1)"]
LONG_TEXT = "Опис " + "довгий текст закупівлі; " * 1700   # ~40,000 characters, over Excel's cell limit
MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
RELS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


# -- the database and cached bundles -------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("export-db") / "sample.duckdb"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MONITOR_AFTER_STORE", raising=False)   # load classifies and evaluates every rule
        assert main(["--config", str(DEMO_CONFIG), "--db", str(db), "load", str(SAMPLE)]) == 0
    con = duckdb.connect(str(db))
    try:
        flagged = [r[0] for r in con.execute(
            "SELECT DISTINCT f.ocid FROM flags f JOIN processes p USING (ocid) "
            "WHERE f.subject_type = 'process' AND p.value_amount IS NOT NULL ORDER BY 1 LIMIT 5").fetchall()]
        for ocid, title in zip(flagged, HOSTILE):
            con.execute("UPDATE processes SET title = ? WHERE ocid = ?", [title, ocid])
        con.execute("UPDATE processes SET description = ? WHERE ocid = ?", [LONG_TEXT, flagged[4]])
        # a history: some single-bid flags resolved, some short-period flags raised and resolved in 2025
        con.execute("""UPDATE flags SET resolved_at = TIMESTAMPTZ '2026-10-01 00:00:00+00'
                       WHERE rule_id = 'cardinal-r018-single-bid' AND hash(subject_id) % 3 = 0""")
        con.execute("""UPDATE flags SET first_seen = TIMESTAMPTZ '2025-06-01 02:30:00+00',
                                        last_seen = TIMESTAMPTZ '2025-06-01 02:30:00+00',
                                        resolved_at = TIMESTAMPTZ '2025-07-01 02:30:00+00'
                       WHERE rule_id = 'cardinal-r003-short-submission-period' AND hash(subject_id) % 4 = 0""")
        counts = dict(con.execute("SELECT subject_type, count(*) FROM flags GROUP BY 1").fetchall())
    finally:
        con.close()
    # the sample covers what the filters distinguish
    assert {"process", "plan", "region", "buyer-tenderer"} <= set(counts), counts
    return db


@pytest.fixture
def db_path(sample_db: Path) -> Path:
    """The sample database, for conftest's ``query`` (expectations computed read-only on it)."""
    return sample_db


def export(db: Path, out: Path, fmt: str, *options: str) -> int:
    return main(["--db", str(db), "export", "--format", fmt, "--out", str(out), *map(str, options)])


_BUNDLES: dict[str, Path] = {}


@pytest.fixture(scope="module")
def bundles_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bundles")


@pytest.fixture
def bundle(sample_db: Path, bundles_dir: Path):
    """The unfiltered export of the sample in a format (made once per module), with --raw."""

    def get(fmt: str) -> Path:
        if fmt not in _BUNDLES:
            out = bundles_dir / fmt
            assert export(sample_db, out, fmt, "--raw") == 0
            _BUNDLES[fmt] = out
        return _BUNDLES[fmt]

    return get


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def parquet_rows(path: Path, query: str = "SELECT * FROM t") -> list[tuple]:
    con = duckdb.connect()
    try:
        con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{path}')")
        return con.execute(query).fetchall()
    finally:
        con.close()


def flag_keys(out: Path) -> set[tuple]:
    return set(parquet_rows(out / "flags.parquet", "SELECT rule_id, subject_type, subject_id, ocid FROM t"))


def csv_table(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "CSV must start with the UTF-8 byte-order mark"
    return list(csv.DictReader(io.StringIO(raw[3:].decode("utf-8"), newline="")))


def xlsx_sheets(path: Path) -> dict[str, list[dict[str, tuple[str, str]]]]:
    """Every sheet as a list of rows {header: (cell type, text)}, read from the workbook's XML."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        shared = []
        if "xl/sharedStrings.xml" in names:
            shared = ["".join(t.text or "" for t in si.iter(f"{MAIN}t"))
                      for si in ET.fromstring(archive.read("xl/sharedStrings.xml"))]
        targets = {r.get("Id"): r.get("Target") for r in ET.fromstring(archive.read("xl/_rels/workbook.xml.rels"))}
        sheets = {}
        for sheet in ET.fromstring(archive.read("xl/workbook.xml")).find(f"{MAIN}sheets"):
            document = ET.fromstring(archive.read("xl/" + targets[sheet.get(f"{RELS}id")]))
            rows = []
            for row in document.iter(f"{MAIN}row"):
                cells = {}
                for cell in row.findall(f"{MAIN}c"):
                    kind = cell.get("t") or "n"
                    if kind == "inlineStr":
                        text = "".join(t.text or "" for t in cell.iter(f"{MAIN}t"))
                    elif kind == "s":
                        text = shared[int(cell.find(f"{MAIN}v").text)]
                    else:
                        text = cell.find(f"{MAIN}v").text
                    cells[re.match(r"[A-Z]+", cell.get("r")).group(0)] = (kind, text, cell.get("s"))
                rows.append(cells)
            header = {col: value[1] for col, value in rows[0].items()} if rows else {}
            sheets[sheet.get("name")] = [{header[c]: v for c, v in r.items()} for r in rows[1:]], list(header.values())
    return sheets


# -- files and row counts ------------------------------------------------------------------------


def expected_processes(query) -> int:
    """The processes behind the flags, as the export defines them (README): flagged ocids, the ocids
    and tender a flag's evidence names, and the tenders made from flagged plans."""
    return query("""
        WITH plan_flags AS (SELECT pl.* FROM plans pl JOIN flags f ON f.subject_type = 'plan'
                            AND f.subject_id IN (pl.plan_id, pl.plan_public_id))
        SELECT count(*) FROM processes WHERE ocid IN (
            SELECT ocid FROM flags WHERE ocid IS NOT NULL
            UNION SELECT unnest(json_extract_string(evidence, '$.ocids[*]')) FROM flags
                  WHERE ocid IS NULL AND json_exists(evidence, '$.ocids')
            UNION SELECT p.ocid FROM processes p JOIN flags f ON f.ocid IS NULL AND f.subject_type <> 'plan'
                  AND p.tender_public_id = json_extract_string(f.evidence, '$.tender_public_id')
            UNION SELECT p.ocid FROM processes p JOIN plan_flags pl ON p.tender_id = pl.tender_id
            UNION SELECT p.ocid FROM processes p, plan_flags pl WHERE list_contains(p.plan_ids, pl.plan_id)
                  OR list_contains(p.plan_ids, pl.plan_public_id))""")[0][0]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "xlsx"])
def test_each_format_writes_every_table_with_counts_that_match_the_database(fmt, bundle, query):
    out = bundle(fmt)
    meta = manifest(out)
    names = {p.name for p in out.iterdir()}
    data_files = {f"{t}.{fmt}" for t in TABLES} if fmt != "xlsx" else {"export.xlsx"}
    assert names == data_files | {"manifest.json", "raw_records.jsonl"}
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")], "temp dirs left"
    rows = {t["table"]: t["rows"] for t in meta["tables"]}
    assert set(rows) == set(TABLES) | {"raw_records"}

    # what the files hold is what the manifest says
    if fmt == "parquet":
        held = {t: parquet_rows(out / f"{t}.parquet", "SELECT count(*) FROM t")[0][0] for t in TABLES}
    elif fmt == "csv":
        held = {t: len(csv_table(out / f"{t}.csv")) for t in TABLES}
    else:
        sheets = xlsx_sheets(out / "export.xlsx")
        assert list(sheets) == list(TABLES)
        held = {t: len(sheets[t][0]) for t in TABLES}
    assert held == {t: rows[t] for t in TABLES}

    # and what the database says
    assert rows["flags"] == query("SELECT count(*) FROM flags")[0][0]
    assert rows["processes"] == expected_processes(query) > 0
    assert rows["plans"] >= query("SELECT count(DISTINCT subject_id) FROM flags WHERE subject_type = 'plan'")[0][0] > 0
    assert rows["raw_records"] > 0 and rows["organizations"] > 0 and rows["classifications"] > 0


def test_related_rows_are_complete_for_the_exported_processes(bundle, query, sample_db):
    out = bundle("parquet")
    rows = {t["table"]: t["rows"] for t in manifest(out)["tables"]}
    con = duckdb.connect(str(sample_db), read_only=True)
    try:
        con.execute(f"CREATE TEMP TABLE exported AS SELECT ocid FROM read_parquet('{out / 'processes.parquet'}')")
        for table in ("lots", "items", "bids", "awards", "contracts", "contract_items", "contract_changes",
                      "complaints", "bid_documents", "classifications"):
            expected = con.execute(f"SELECT count(*) FROM {table} WHERE ocid IN (SELECT ocid FROM exported)").fetchall()[0][0]
            assert rows[table] == expected, table
        # every buyer, tenderer and supplier of those processes is among the organizations
        missing = con.execute(f"""
            SELECT count(*) FROM (
                SELECT buyer_id AS id FROM processes WHERE ocid IN (SELECT ocid FROM exported)
                UNION SELECT tenderer_id FROM bids WHERE ocid IN (SELECT ocid FROM exported)
                UNION SELECT supplier_id FROM awards WHERE ocid IN (SELECT ocid FROM exported))
            WHERE id IN (SELECT org_id FROM organizations)
              AND id NOT IN (SELECT org_id FROM read_parquet('{out / 'organizations.parquet'}'))""").fetchall()[0][0]
        assert missing == 0
    finally:
        con.close()
    # nested columns stay typed in Parquet; the evidence is JSON
    schema = parquet_rows(out / "processes.parquet", "DESCRIBE t")
    assert {r[0]: r[1] for r in schema}["plan_ids"] == "VARCHAR[]"
    # the database's own process numbers stay inside it: processes are named by ocid
    for table in ("processes", "bids", "classifications"):
        assert "process_key" not in [r[0] for r in parquet_rows(out / f"{table}.parquet", "DESCRIBE t")], table
    assert {r[0]: r[1] for r in parquet_rows(out / "flags.parquet", "DESCRIBE t")}["evidence"] == "JSON"


def test_manifest_hashes_the_files_and_says_where_rows_come_from(bundle, query):
    out = bundle("csv")
    meta = manifest(out)
    files = {f["name"]: f for f in meta["files"]}
    assert set(files) == {p.name for p in out.iterdir()} - {"manifest.json"}
    for name, entry in files.items():
        data = (out / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
        assert len(data) == entry["bytes"]
    with (out / "flags.csv").open(encoding="utf-8-sig", newline="") as handle:
        flags_in_file = sum(1 for _ in csv.reader(handle)) - 1  # evidence JSON may hold line breaks: count records
    assert files["flags.csv"]["rows"] == meta["tables"][0]["rows"] == flags_in_file > 0
    parquet = bundle("parquet")
    latest = parquet_rows(parquet / "processes.parquet", f"""
        SELECT max(d) FROM (SELECT max(date_modified) AS d FROM t
            UNION ALL SELECT max(date_modified) FROM read_parquet('{parquet / "contracts.parquet"}')
            UNION ALL SELECT max(date_modified) FROM read_parquet('{parquet / "plans.parquet"}')
            UNION ALL SELECT max(date_modified::TIMESTAMPTZ) FROM read_json('{parquet / "raw_records.jsonl"}'))""")[0][0]
    assert meta["latest_date_modified"] == latest.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    assert meta["database"]["schema_version"] == query("SELECT max(version) FROM schema_migrations")[0][0]
    assert meta["tool"] == "procurement-monitor export" and meta["tool_version"]
    assert meta["format"] == "csv" and meta["filters"]["raw"] is True
    assert meta["command_line"].startswith("monitor --db ") and "export --format csv" in meta["command_line"]
    assert meta["sources"]["in_export"]["prozorro"]["api_url"].startswith("https://public-api.prozorro.gov.ua")
    assert meta["exported_at"].endswith("Z") and meta["as_of"] is None


def test_command_line_names_the_database_monitor_db_chose(sample_db, tmp_path, monkeypatch):
    """The manifest's command reproduces the export: with the database from MONITOR_DB, it says --db too."""
    monkeypatch.setenv("MONITOR_DB", str(sample_db))
    out = tmp_path / "from-env"
    assert main(["export", "--format", "csv", "--out", str(out), "--kind", "opportunity"]) == 0
    assert manifest(out)["command_line"] == (f"monitor --db {shlex.quote(str(sample_db))} export --format csv "
                                             f"--out {shlex.quote(str(out))} --kind opportunity")


def test_raw_records_are_the_verbatim_records_behind_the_rows(bundle, query):
    out = bundle("parquet")
    lines = (out / "raw_records.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == manifest(out)["tables"][-1]["rows"]
    keys = set()
    for line in lines:
        record = json.loads(line)
        # the record text as stored, unchanged: its sha256 is the one stored with it
        text = line[line.index('"record":') + len('"record":'):-1]
        assert hashlib.sha256(text.encode("utf-8")).hexdigest() == record["sha256"]
        keys.add(f"{record['source']}:{record['kind']}:{record['id']}")
    exported = {r[0] for r in parquet_rows(out / "processes.parquet", "SELECT raw_key FROM t")}
    assert {k for k in exported if ":release_set:" not in k} <= keys


# -- filters -------------------------------------------------------------------------------------


def test_filters_rule_kind_and_open_only(sample_db, tmp_path, query):
    out = tmp_path / "r018"
    assert export(sample_db, out, "parquet", "--rule", "cardinal-r018-single-bid", "--open-only") == 0
    expected = set(query("SELECT rule_id, subject_type, subject_id, ocid FROM flags "
                       "WHERE rule_id = 'cardinal-r018-single-bid' AND resolved_at IS NULL"))
    assert flag_keys(out) == expected and len(expected) > 0
    assert len(expected) < query("SELECT count(*) FROM flags WHERE rule_id = 'cardinal-r018-single-bid'")[0][0]
    meta = manifest(out)
    assert meta["filters"]["rule"] == ["cardinal-r018-single-bid"] and meta["filters"]["open_only"] is True
    assert "--rule cardinal-r018-single-bid --open-only" in meta["command_line"]

    out = tmp_path / "opportunities"
    assert export(sample_db, out, "parquet", "--kind", "opportunity") == 0
    expected = set(query("SELECT rule_id, subject_type, subject_id, ocid FROM flags WHERE kind = 'opportunity'"))
    assert flag_keys(out) == expected and len(expected) > 0


def test_filter_region_takes_process_plan_and_region_flags(sample_db, tmp_path, query):
    # a region with both process and plan flags, asked for by its ISO code (e.g. UA-77 for Chernivtsi oblast)
    (region,) = query("SELECT p.region FROM flags f JOIN processes p USING (ocid) "
                    "INTERSECT SELECT pl.region FROM flags f JOIN plans pl "
                    "ON f.subject_type = 'plan' AND f.subject_id = pl.plan_id ORDER BY 1 LIMIT 1")[0]
    with (ROOT / "data" / "reference" / "regions.csv").open(encoding="utf-8") as handle:
        iso = next(row["iso_code"] for row in csv.DictReader(handle) if row["alias"] == region)
    out = tmp_path / "region"
    assert export(sample_db, out, "parquet", "--region", iso) == 0
    got = parquet_rows(out / "flags.parquet", "SELECT subject_type, subject_id, ocid, region FROM t")
    assert got and {r[3] for r in got} == {region}
    keys = {(r[0], r[1], r[2]) for r in got}
    process_flags = set(query("SELECT f.subject_type, f.subject_id, f.ocid FROM flags f JOIN processes p USING (ocid) "
                            "WHERE p.region = ?", [region]))
    plan_flags = set(query("SELECT f.subject_type, f.subject_id, f.ocid FROM flags f JOIN plans pl "
                         "ON f.subject_type = 'plan' AND f.subject_id = pl.plan_id WHERE pl.region = ?", [region]))
    region_flags = set(query("SELECT subject_type, subject_id, ocid FROM flags WHERE subject_type = 'region' "
                           "AND subject_id = ?", [region]))
    assert process_flags and plan_flags
    assert process_flags | plan_flags | region_flags <= keys
    # nothing from another region's processes
    assert not keys & set(query("SELECT f.subject_type, f.subject_id, f.ocid FROM flags f JOIN processes p USING (ocid) "
                              "WHERE p.region IS DISTINCT FROM ?", [region]))
    assert manifest(out)["filters_read_as"]["region"] == {iso: region}


def test_filter_buyer_by_edrpou_or_id(sample_db, tmp_path, query):
    buyer = query("SELECT p.buyer_id FROM flags f JOIN processes p USING (ocid) WHERE p.buyer_id LIKE 'UA-EDR-%' "
                "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1 OFFSET 1")[0][0]
    out = tmp_path / "buyer"
    assert export(sample_db, out, "parquet", "--buyer", buyer.removeprefix("UA-EDR-")) == 0
    got = parquet_rows(out / "flags.parquet", "SELECT subject_type, subject_id, ocid, buyer_id FROM t")
    expected = set(query("SELECT f.subject_type, f.subject_id, f.ocid FROM flags f JOIN processes p USING (ocid) "
                       "WHERE ? IN (p.buyer_id, p.procuring_entity_id)", [buyer]))
    assert expected and expected <= {(r[0], r[1], r[2]) for r in got}
    assert {r[3] for r in got} == {buyer}
    assert {r[0] for r in parquet_rows(out / "processes.parquet", "SELECT buyer_id FROM t WHERE ocid IN "
                                       "(SELECT ocid FROM read_parquet('" + str(out / "flags.parquet") + "'))")} == {buyer}
    # the full id selects the same
    again = tmp_path / "buyer-id"
    assert export(sample_db, again, "parquet", "--buyer", buyer) == 0
    assert flag_keys(again) == flag_keys(out)


def test_filter_category_uses_classifications_and_sub_categories(sample_db, tmp_path, query):
    out = tmp_path / "social"
    assert export(sample_db, out, "parquet", "--category", "social") == 0
    keys = flag_keys(out)
    social_process_flags = set(query("""
        SELECT f.rule_id, f.subject_type, f.subject_id, f.ocid FROM flags f
        WHERE f.ocid IN (SELECT ocid FROM classifications WHERE category = 'social' OR category LIKE 'social.%')"""))
    social_plan_flags = set(query("""
        SELECT f.rule_id, f.subject_type, f.subject_id, f.ocid FROM flags f
        WHERE f.subject_type = 'plan' AND f.subject_id IN
              (SELECT plan_id FROM plan_classifications WHERE category = 'social' OR category LIKE 'social.%')"""))
    assert social_process_flags and social_plan_flags
    assert social_process_flags | social_plan_flags <= keys
    other = set(query("""SELECT f.rule_id, f.subject_type, f.subject_id, f.ocid FROM flags f WHERE f.ocid IS NOT NULL
                       AND f.ocid IN (SELECT ocid FROM classifications)
                       AND f.ocid NOT IN (SELECT ocid FROM classifications WHERE category LIKE 'social%')"""))
    assert other and not keys & other
    # a sub-category narrows it
    narrow = tmp_path / "social-services"
    assert export(sample_db, narrow, "parquet", "--category", "social.services") == 0
    assert flag_keys(narrow) < keys


def test_filter_dates_on_procurement_or_on_the_flag(sample_db, tmp_path, query):
    out = tmp_path / "q1"
    assert export(sample_db, out, "parquet", "--since", "2026-01-01", "--until", "2026-03-31") == 0
    got = parquet_rows(out / "flags.parquet", "SELECT subject_type, subject_id, ocid, procurement_date FROM t")
    dated = [r for r in got if r[3] is not None]
    assert dated and all("2026-01-01" <= r[3].isoformat()[:10] <= "2026-03-31" for r in dated)
    expected = set(query("""
        SELECT f.subject_type, f.subject_id, f.ocid FROM flags f JOIN processes p USING (ocid)
        WHERE coalesce(p.date_published, p.tender_start, p.date_created, p.date_modified)
              BETWEEN TIMESTAMPTZ '2026-01-01 00:00:00+00' AND TIMESTAMPTZ '2026-03-31 23:59:59.999999+00'"""))
    assert expected and expected == {(r[0], r[1], r[2]) for r in dated if r[2] is not None}

    # --dates flagged: the flags open during 2025 (raised in June, resolved in July)
    flagged = tmp_path / "flagged-2025"
    assert export(sample_db, flagged, "parquet", "--dates", "flagged", "--since", "2025-01-01", "--until", "2025-12-31") == 0
    expected = set(query("SELECT rule_id, subject_type, subject_id, ocid FROM flags WHERE first_seen < '2026-01-01'"))
    assert expected and flag_keys(flagged) == expected


@pytest.mark.parametrize("options, message", [
    (("--rule", "no-such-rule"), "unknown rule"),
    (("--region", "Львіська область"), "did you mean 'Львівська область'"),
    (("--category", "helth"), "unknown category"),
    (("--buyer", "99999999"), "unknown buyer"),
    (("--since", "2026-13-01"), "not an ISO date"),
    (("--since", "2026-05-01", "--until", "2026-04-01"), "before --since"),
])
def test_a_bad_filter_is_refused_and_writes_nothing(sample_db, tmp_path, run_cli, options, message):
    out = tmp_path / "bad"
    code, _, err = run_cli("--db", sample_db, "export", "--format", "csv", "--out", out, *options)
    assert code == 2 and message in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".bad.")]


# -- spreadsheet safety --------------------------------------------------------------------------


def test_csv_neutralises_formulas_keeps_numbers_and_cyrillic(bundle, query):
    out = bundle("csv")
    processes = {r["ocid"]: r for r in csv_table(out / "processes.csv")}
    hostile = dict(query("SELECT ocid, title FROM processes WHERE title IN (?, ?, ?, ?)", HOSTILE))
    assert len(hostile) == 4
    for ocid, title in hostile.items():
        assert processes[ocid]["title"] == "'" + title
        amount = processes[ocid]["value_amount"]
        assert float(amount) == query("SELECT value_amount FROM processes WHERE ocid = ?", [ocid])[0][0]
        assert not amount.startswith("'")
    # Cyrillic survives, byte for byte
    ocid, title = query("SELECT ocid, title FROM processes WHERE title LIKE '%Послуги%' "
                      "AND ocid IN (SELECT ocid FROM flags) ORDER BY ocid LIMIT 1")[0]
    assert processes[ocid]["title"] == title
    # nested values are JSON text; the evidence is JSON
    flags = csv_table(out / "flags.csv")
    assert all(json.loads(f["evidence"]) is not None for f in flags[:50])
    with_plans = [r for r in processes.values() if r["plan_ids"]]
    assert with_plans and isinstance(json.loads(with_plans[0]["plan_ids"]), list)


def test_xlsx_neutralises_formulas_keeps_numbers_dates_and_cuts_long_cells(bundle, query):
    out = bundle("xlsx")
    sheets = xlsx_sheets(out / "export.xlsx")
    processes, header = sheets["processes"]
    assert header[:3] == ["ocid", "source", "raw_key"]
    by_ocid = {r["ocid"][1]: r for r in processes}
    hostile = dict(query("SELECT ocid, title FROM processes WHERE title IN (?, ?, ?, ?)", HOSTILE))
    for ocid, title in hostile.items():
        kind, text, _ = by_ocid[ocid]["title"]
        assert kind == "inlineStr" and text == "'" + title
        kind, number, _ = by_ocid[ocid]["value_amount"]
        assert kind == "n" and float(number) == query("SELECT value_amount FROM processes WHERE ocid = ?", [ocid])[0][0]
    # dates are Excel dates (numbers with a date style), booleans are booleans
    row = next(iter(by_ocid.values()))
    assert row["date_modified"][0] == "n" and row["date_modified"][2] is not None
    assert row["is_masked"][0] == "b"
    # the 40,000-character description is cut to Excel's limit, with a marker, and the manifest says so
    long_ocid = query("SELECT ocid FROM processes WHERE description = ?", [LONG_TEXT])[0][0]
    text = by_ocid[long_ocid]["description"][1]
    assert len(text) <= 32_767 and text.endswith(writers.TRUNCATION_MARKER) and text.startswith("Опис довгий")
    assert {"sheet": "processes", "column": "description", "cells": 1} in manifest(out)["truncated_cells"]
    assert any("32,767" in note for note in manifest(out)["notes"])
    # header row bold and frozen
    with zipfile.ZipFile(out / "export.xlsx") as archive:
        sheet_xml = archive.read("xl/worksheets/sheet1.xml").decode()
        styles = archive.read("xl/styles.xml").decode()
    assert 'state="frozen"' in sheet_xml and "<b/>" in styles
    assert manifest(out)["files"][0]["rows"]["flags"] == len(sheets["flags"][0])


# -- atomic output -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt, target", [("csv", "write_csv"), ("xlsx", "_write_strings"), ("parquet", "write_parquet")])
def test_a_failure_mid_export_leaves_no_bundle_and_no_temp_dir(sample_db, tmp_path, monkeypatch, run_cli, fmt, target):
    real = getattr(writers, target)
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device (injected)")
        return real(*args, **kwargs)

    monkeypatch.setattr(writers, target, failing)
    parent = tmp_path / "exports"
    out = parent / "deep" / "bundle"
    code, _, err = run_cli("--db", sample_db, "export", "--format", fmt, "--out", out, "--raw")
    assert code == 1 and "No space left on device" in err and "nothing was written" in err
    assert len(calls) == 3
    assert not out.exists() and not parent.exists(), "no bundle, no temp dir, no folders made for it"


def test_an_existing_folder_is_refused_unless_force_replaces_an_earlier_export(sample_db, tmp_path, run_cli):
    out = tmp_path / "evidence"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, err = run_cli("--db", sample_db, "export", "--format", "parquet", "--out", out, "--rule",
                           "cardinal-r018-single-bid")
    assert code == 2 and "not empty" in err and (out / "notes.txt").read_text() == "mine"
    code, _, err = run_cli("--db", sample_db, "export", "--format", "parquet", "--out", out, "--force")
    assert code == 2 and "not one" in err and (out / "notes.txt").exists()

    shutil.rmtree(out)
    out.mkdir()   # an empty folder is fine
    assert run_cli("--db", sample_db, "export", "--format", "parquet", "--out", out, "--rule", "cardinal-r018-single-bid")[0] == 0
    first = manifest(out)
    code, _, err = run_cli("--db", sample_db, "export", "--format", "csv", "--out", out, "--kind", "opportunity")
    assert code == 2 and "--force" in err
    code, stdout, _ = run_cli("--db", sample_db, "export", "--format", "csv", "--out", out, "--kind", "opportunity", "--force")
    assert code == 0 and "exported" in stdout
    second = manifest(out)
    assert second["format"] == "csv" and second["exported_at"] >= first["exported_at"]
    assert not list(out.glob("*.parquet")), "the earlier bundle is replaced, not merged"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "evidence"]


@pytest.mark.parametrize(("until", "exclusive_end"), [
    ("2025-08-22", "2025-08-23T00:00:00+00:00"),
    ("20250822", "2025-08-23T00:00:00+00:00"),          # basic ISO form: still the whole day
    ("2025-W34-5", "2025-08-23T00:00:00+00:00"),        # ISO week date of the same Friday
    ("2025-08-22T02:46:56.192+00:00", "2025-08-22T02:46:56.192001+00:00"),  # the instant itself is in
    ("2025-08-22T05:46:56+03:00", "2025-08-22T05:46:56.000001+03:00"),
])
def test_until_is_inclusive_in_every_iso_form(until, exclusive_end):
    filters = make_filters(since="2025-08-01", until=until)
    assert filters.until.isoformat() == exclusive_end
    assert filters.as_dict()["until_exclusive"] == exclusive_end
