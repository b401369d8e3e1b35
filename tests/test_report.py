"""The weekly report: figures equal to SQL, flag rows and links, escaping, self-containedness, weeks.

The database is the shipped sample (classified), with ingestion times and flags set here so that the
week 2026-W47 (Monday 16 to Sunday 22 November 2026, Kyiv time) has known new, still open and
resolved flags, a hostile title and a formula in a buyer name.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
import structlog

from monitor.config import Settings, parse_datetime
from monitor.formulas import neutralise
from monitor.report import last_complete_week, parse_week, week_containing, write_report
from monitor.report.data import HTML_OPPORTUNITIES, parse_moment
from monitor.report.render import HTML_ROWS_PER_RULE
from monitor.report.weeks import KYIV

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"
WEEK = "2026-W47"
IN_WEEK = "2026-11-18 10:00:00+00"
HOSTILE_TITLE = "<script>alert(1)</script> Послуги соціального супроводу"
FORMULA_BUYER = '=HYPERLINK("http://evil.example/x","click")'
BULK_RULE = "cardinal-r018-single-bid"
BULK_ROWS = HTML_ROWS_PER_RULE + 7


class Tables(HTMLParser):
    """Cell texts of every <table id=...> of a page, and every attribute value seen."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.links: list[str] = []
        self.tags: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append(tag)
        if tag == "table":
            self._table = attributes.get("id")
            if self._table:
                self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []
        elif tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> Tables:
    parser = Tables()
    parser.feed(html)
    return parser


def grouped(number: int) -> str:
    """A number as the report groups it (its no-break spaces read as spaces by ``Tables``)."""
    return f"{number:,}".replace(",", " ")


def _flag(con, rule_id, kind, severity, ocid, evidence, first_seen, resolved_at=None, subject_type="process",
          subject_id=None, value=1.0):
    con.execute("INSERT INTO flags VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [rule_id, kind, severity, subject_type, subject_id or ocid, ocid, value, json.dumps(evidence),
                 first_seen, first_seen, resolved_at])


@pytest.fixture
def sample_db(load_once, db_path: Path, _devnull) -> dict:
    """The sample, classified; a third of the ProZorro tenders ingested in 2026-W47; flags of every status."""
    code, out, err = load_once(SAMPLE)
    assert code == 0, err
    # the load pointed the logs at this test's captured stderr; the report is called directly below
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=_devnull))
    con = duckdb.connect(str(db_path))
    try:
        con.execute("UPDATE raw_records SET fetched_at = TIMESTAMPTZ '2026-10-01 10:00:00+00'")
        con.execute(f"UPDATE raw_records SET fetched_at = TIMESTAMPTZ '{IN_WEEK}' "
                    "WHERE source = 'prozorro' AND kind = 'tender' AND hash(id) % 3 = 0")
        picked = con.execute(
            """SELECT ocid, tender_public_id, region, buyer_name FROM processes
               WHERE tender_public_id IS NOT NULL AND region IS NOT NULL AND value_amount > 0 AND NOT is_masked
               ORDER BY ocid LIMIT 70""").fetchall()
        # a process with a value that ProZorro masks: counted, never summed
        masked_ocid = picked[-1][0]
        con.execute("UPDATE processes SET is_masked = true WHERE ocid = ?", [masked_ocid])
        open_tender, early_tender, resolved_tender, previous_tender = picked[0], picked[1], picked[2], picked[3]
        _flag(con, "opportunity-open-social-tender", "opportunity", "high", open_tender[0],
              {"tender_public_id": open_tender[1], "title": HOSTILE_TITLE, "buyer_name": FORMULA_BUYER,
               "region": open_tender[2], "amount": 1250000.5, "currency": "UAH",
               "deadline": "2026-11-27 18:00 Kyiv time", "days_left": 7},
              "2026-11-18 09:00:00+00")
        _flag(con, "opportunity-open-social-tender", "opportunity", "high", early_tender[0],
              {"tender_public_id": early_tender[1], "title": "Догляд вдома\x1b[2J", "region": early_tender[2],
               "amount": 300000, "currency": "UAH", "deadline": "2026-11-25T10:00:00+02:00"},
              "2026-11-02 09:00:00+00")
        _flag(con, "anomaly-contract-value-increase", "anomaly", "high", resolved_tender[0],
              {"tender_public_id": resolved_tender[1], "increase_percent": 25.0},
              "2026-11-01 09:00:00+00", resolved_at="2026-11-19 09:00:00+00")
        _flag(con, "anomaly-contract-value-increase", "anomaly", "high", previous_tender[0],
              {"tender_public_id": previous_tender[1], "increase_percent": 12.5}, "2026-11-10 09:00:00+00")
        _flag(con, "anomaly-contract-value-increase", "anomaly", "high", picked[4][0],
              {"tender_public_id": picked[4][1]}, "2026-10-01 09:00:00+00", resolved_at="2026-11-05 09:00:00+00")
        for ocid, tender_public_id, region, buyer in picked[5:5 + BULK_ROWS]:
            _flag(con, BULK_RULE, "anomaly", "medium", ocid,
                  {"tender_public_id": tender_public_id, "buyer_name": buyer, "region": region,
                   "number_of_tenderers": 1}, IN_WEEK)
        # an OCDS publisher's process without a ProZorro tenderID
        con.execute("INSERT INTO processes (ocid, process_key, source, raw_key, title, region) "
                    "VALUES ('ocds-kg0001-000042', 9042, 'kyrgyzstan', 'kyrgyzstan:record:ocds-kg0001-000042', "
                    "'Дитячий садок', 'Бішкек')")
        _flag(con, "anomaly-split-purchases-below-threshold", "anomaly", "medium", "ocds-kg0001-000042",
              {"buyer_name": "Мерія"}, IN_WEEK)
    finally:
        con.close()
    return {"open": open_tender, "early": early_tender, "resolved": resolved_tender, "previous": previous_tender,
            "masked": masked_ocid}


def settings_for(db_path: Path, **changes) -> Settings:
    settings = Settings(db_path=db_path, as_of=parse_datetime("2026-11-23T07:00:00+02:00"))
    for key, value in changes.items():
        setattr(settings, key, value)
    return settings


@pytest.fixture
def report(sample_db, db_path: Path, tmp_path: Path):
    result = write_report(settings_for(db_path), out_dir=tmp_path / "out")
    return result, result.html.read_text(encoding="utf-8")


def test_default_week_is_the_last_complete_iso_week_in_kyiv():
    assert last_complete_week(parse_datetime("2026-11-23T07:00:00+02:00")).label == "2026-W47"
    assert last_complete_week(parse_datetime("2026-11-22T23:59:00+02:00")).label == "2026-W46"
    # Monday 00:30 in Kyiv is still Sunday in UTC: the week that just ended counts
    assert last_complete_week(parse_datetime("2026-11-22T22:30:00+00:00")).label == "2026-W47"
    assert last_complete_week(parse_datetime("2026-11-20T12:00:00+02:00")).label == "2026-W46"
    assert last_complete_week(parse_datetime("2027-01-04T08:00:00+02:00")).label == "2026-W53"
    assert last_complete_week(parse_datetime("2026-01-05T08:00:00+02:00")).label == "2026-W01"
    assert week_containing(parse_datetime("2026-11-20T12:00:00+02:00")).label == "2026-W47"
    week = parse_week("2026-W47")
    assert (week.start.isoformat(), week.end.isoformat()) == ("2026-11-16T00:00:00+02:00", "2026-11-23T00:00:00+02:00")
    for bad in ("2026-47", "2026-W54", "2025-W53", "W47"):
        with pytest.raises(ValueError):
            parse_week(bad)


def test_default_week_and_folder_follow_the_clock(sample_db, db_path: Path):
    result = write_report(settings_for(db_path))
    assert result.week == WEEK
    assert result.out_dir == Path("data/reports/2026-W47")
    assert {p.name for p in result.out_dir.iterdir()} == {"report.html", "report.md", "flags.csv"}


def test_headline_counts_equal_sql(report, query):
    result, html = report
    week = ["2026-11-16 00:00:00+02", "2026-11-23 00:00:00+02"]
    in_week = ("r.fetched_at >= ?::TIMESTAMPTZ AND r.fetched_at < ?::TIMESTAMPTZ")
    joined = ("FROM processes p LEFT JOIN raw_records r ON r.source || ':' || r.kind || ':' || r.id = p.raw_key "
              "WHERE NOT p.is_test")
    total, this_week = query(f"SELECT count(*), count(*) FILTER ({in_week}) {joined}", week)[0]
    assert 0 < this_week < total
    assert (result.counts["processes_week"], result.counts["processes_total"]) == (this_week, total)
    value_week = query(f"SELECT round(sum(p.value_amount) FILTER ({in_week} AND NOT p.is_masked)) {joined} "
                       "AND p.value_currency = 'UAH'", week)[0][0]
    tables = parse(html).tables
    rows = {row[0]: row for row in tables["headline-table"][1:]}
    assert rows["All processes"][1:4:2] == [grouped(this_week), grouped(total)]
    assert rows["All processes"][2].startswith(grouped(int(value_week)) + " UAH")
    health_week, health_total = query(
        f"SELECT count(*) FILTER ({in_week}), count(*) {joined} "
        "AND p.ocid IN (SELECT ocid FROM classifications WHERE category = 'health')", week)[0]
    assert rows["Health care health"][1] == grouped(health_week)
    assert rows["Health care health"][3] == grouped(health_total)


def test_masked_values_are_never_summed(sample_db, report, query):
    result, html = report
    masked_value = query("SELECT value_amount FROM processes WHERE ocid = ?", [sample_db["masked"]])[0][0]
    summed = query("SELECT round(sum(value_amount)) FROM processes WHERE NOT is_masked AND NOT is_test "
                   "AND value_currency = 'UAH'")[0][0]
    assert masked_value > 0
    total_cell = parse(html).tables["headline-table"][1][4]
    assert total_cell.startswith(grouped(int(summed)) + " UAH")
    assert total_cell.endswith("1 masked, no value")


def test_flags_this_week_versus_previous_week(report):
    result, html = report
    counts = result.counts
    # new: the open tender, the bulk rule, the OCDS one; still open: early deadline, previous week's anomaly;
    # resolved: one; the flag resolved before the week is not in the report at all
    assert counts["flags_new"] == 1 + BULK_ROWS + 1
    assert counts["flags_still_open"] == 2
    assert counts["flags_resolved"] == 1
    assert counts["flags_new_previous_week"] == 1
    assert counts["csv_rows"] == counts["flags_new"] + counts["flags_still_open"] + counts["flags_resolved"]
    summary = {(row[0]): row[1:] for row in parse(html).tables["flag-summary"][1:]}
    assert summary["high anomaly"] == ["0", "1", "1", "1", "1"]  # new, new before, still open, resolved, open
    assert summary["high opportunity"] == ["1", "0", "1", "0", "2"]


def test_opportunities_first_soonest_deadline_first_with_tender_links(sample_db, report):
    result, html = report
    page = parse(html)
    rows = page.tables["opportunities-table"][1:]
    assert [row[1].split()[0] for row in rows] == [sample_db["early"][1], sample_db["open"][1]]
    assert rows[0][0].startswith("2026-11-25 10:00")
    assert rows[1][0].startswith("2026-11-27 18:00") and "4 days" in rows[1][0]
    assert html.index('id="opportunities"') < html.index('id="rules"')
    for key in ("open", "early", "resolved"):
        assert f"https://prozorro.gov.ua/tender/{sample_db[key][1]}" in page.links


def test_per_rule_tables_cap_rows_and_the_csv_has_them_all(report):
    result, html = report
    assert f"and {BULK_ROWS - HTML_ROWS_PER_RULE} more: see flags.csv" in html
    section = html[html.index(f'id="rule-{BULK_RULE}"'):]
    section = section[:section.index("</details>")]
    assert section.count("<tr>") == HTML_ROWS_PER_RULE + 1  # header + capped rows
    rows = list(csv.DictReader(io.StringIO(result.csv.read_text(encoding="utf-8-sig"))))
    assert sum(1 for r in rows if r["rule_id"] == BULK_RULE) == BULK_ROWS
    assert {r["status"] for r in rows} == {"new", "open", "resolved"}
    increase = next(r for r in rows if r["status"] == "resolved")
    assert json.loads(increase["evidence"])["increase_percent"] == 25.0
    assert increase["link"].startswith("https://prozorro.gov.ua/tender/UA-")


def test_many_opportunities_show_the_soonest_and_count_them_all(sample_db, db_path, tmp_path):
    # more open opportunities than the page shows, several times over, deadlines in no particular order
    extra = 2 * HTML_OPPORTUNITIES + 37
    con = duckdb.connect(str(db_path))
    try:
        tenders = con.execute("SELECT ocid, tender_public_id FROM processes WHERE tender_public_id IS NOT NULL "
                              f"ORDER BY ocid LIMIT {extra}").fetchall()
        for index, (ocid, tender_public_id) in enumerate(tenders):
            deadline = (datetime(2026, 11, 24, tzinfo=KYIV)
                        + timedelta(days=(index * 7919) % 40, hours=(index * 31) % 24)).isoformat()
            _flag(con, "opportunity-planned-not-procured", "opportunity", "medium", ocid,
                  {"tender_public_id": tender_public_id, "deadline": deadline, "amount": 1000 + index}, IN_WEEK)
        every_deadline = sorted(parse_moment(json.loads(evidence)["deadline"]) for (evidence,) in con.execute(
            "SELECT evidence::VARCHAR FROM flags WHERE kind = 'opportunity' AND resolved_at IS NULL").fetchall())
    finally:
        con.close()
    assert len(every_deadline) == extra + 2  # the sample's two open opportunities have deadlines too
    result = write_report(settings_for(db_path), WEEK, tmp_path / "many")
    html = result.html.read_text(encoding="utf-8")
    rows = parse(html).tables["opportunities-table"][1:]
    assert len(rows) == HTML_OPPORTUNITIES
    shown = [datetime.strptime(row[0][:16], "%Y-%m-%d %H:%M").replace(tzinfo=KYIV) for row in rows]
    assert shown == every_deadline[:HTML_OPPORTUNITIES]  # the soonest of all, in order
    assert result.counts["opportunities_open"] == len(every_deadline)
    assert f"and {grouped(len(every_deadline) - HTML_OPPORTUNITIES)} more: see flags.csv" in html.replace("\u00a0", " ")
    flags_csv = list(csv.DictReader(io.StringIO(result.csv.read_text(encoding="utf-8-sig"))))
    assert sum(1 for r in flags_csv if r["rule_id"] == "opportunity-planned-not-procured") == extra


def test_flags_csv_is_in_report_order_and_the_same_every_time(sample_db, db_path, tmp_path):
    con = duckdb.connect(str(db_path))
    try:  # two rules flag one process at the same moment with the same amount: a tie broken by rule id
        ocid, tender_public_id = con.execute("SELECT ocid, tender_public_id FROM processes "
                                             "WHERE tender_public_id IS NOT NULL ORDER BY ocid DESC LIMIT 1").fetchone()
        for rule_id in ("cardinal-r036-lowest-bid-disqualified", "cardinal-r018-single-bid"):
            _flag(con, rule_id, "anomaly", "medium", ocid, {"tender_public_id": tender_public_id, "amount": 777},
                  IN_WEEK)
    finally:
        con.close()
    first = write_report(settings_for(db_path), WEEK, tmp_path / "first").csv.read_bytes()
    second = write_report(settings_for(db_path), WEEK, tmp_path / "second").csv.read_bytes()
    assert first == second
    rows = list(csv.DictReader(io.StringIO(first.decode("utf-8-sig"))))
    status_order = {"new": 0, "open": 1, "resolved": 2}
    keys = [(status_order[r["status"]], -float(r["amount"] or 0), r["first_seen"], r["subject_id"], r["rule_id"])
            for r in rows]
    assert keys == sorted(keys)
    tied = [r["rule_id"] for r in rows if r["subject_id"] == ocid and r["amount"] == "777.0"]
    assert tied == ["cardinal-r018-single-bid", "cardinal-r036-lowest-bid-disqualified"]


def test_a_failure_while_writing_leaves_the_earlier_report_whole(sample_db, db_path, tmp_path, monkeypatch):
    out = tmp_path / "kept"
    write_report(settings_for(db_path), WEEK, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(data):
        raise RuntimeError("template error")

    monkeypatch.setattr("monitor.report.render_markdown", broken)
    with pytest.raises(RuntimeError, match="template error"):
        write_report(settings_for(db_path), WEEK, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no half-written file, no temporary left
    with pytest.raises(RuntimeError, match="template error"):  # a first report: no empty folder left behind
        write_report(settings_for(db_path), WEEK, tmp_path / "new" / "report")
    assert not (tmp_path / "new" / "report").exists()


def test_ocds_process_without_tender_id_is_shown_without_a_link(sample_db, db_path, report, tmp_path):
    result, html = report
    section = html[html.index('id="rule-anomaly-split-purchases-below-threshold"'):]
    section = section[:section.index("</details>")]
    assert "ocds-kg0001-000042" in section and "<a class=\"subject\"" not in section
    raw = {"ocds": {"publishers": [{"name": "kyrgyzstan", "url": "https://api.example.org/releases",
                                    "page_url": "https://tenders.example.org/ocid/{ocid}"}]}}
    configured = write_report(settings_for(db_path, raw=raw), WEEK, tmp_path / "configured")
    assert 'href="https://tenders.example.org/ocid/ocds-kg0001-000042"' in configured.html.read_text(encoding="utf-8")


def test_a_plan_flag_links_to_its_plan_not_to_the_tender_that_failed(sample_db, db_path, tmp_path):
    """A plan whose only tender was cancelled names that tender in its evidence; the row is the plan's."""
    con = duckdb.connect(str(db_path))
    try:
        _flag(con, "opportunity-planned-not-procured", "opportunity", "medium", None,
              {"plan_public_id": "UA-P-2026-03-02-000123-a", "tender_public_id": "UA-2026-04-01-000456-a",
               "linked_tender_status": "cancelled", "title": "Соціальні послуги", "amount": 50000, "currency": "UAH"},
              IN_WEEK, subject_type="plan", subject_id="5a1e0c0ffee0000000000000000000a1")
    finally:
        con.close()
    result = write_report(settings_for(db_path), WEEK, tmp_path / "out")
    rows = [r for r in csv.DictReader(io.StringIO(result.csv.read_text(encoding="utf-8-sig")))
            if r["subject_type"] == "plan"]
    assert [(r["link"], r["plan_public_id"], r["tender_public_id"]) for r in rows] == [
        ("https://prozorro.gov.ua/plan/UA-P-2026-03-02-000123-a", "UA-P-2026-03-02-000123-a", "UA-2026-04-01-000456-a")]
    assert 'href="https://prozorro.gov.ua/plan/UA-P-2026-03-02-000123-a"' in result.html.read_text(encoding="utf-8")


def test_flags_have_the_buyer_and_region_the_export_gives_them(sample_db, db_path, tmp_path, run_cli):
    """A buyer/tenderer pair is in its buyer's region and has that buyer; a tenderer alone has neither
    (where it is registered is not where the money goes); a process flag has its process's buyer, whatever
    buyer its evidence names (a contract's). The report said otherwise than the export for each."""
    con = duckdb.connect(str(db_path))
    try:
        ocid, process_region, buyer, supplier = con.execute(
            """SELECT p.ocid, p.region, p.buyer_id, a.supplier_id FROM processes p JOIN awards a USING (ocid)
               JOIN organizations b ON b.org_id = p.buyer_id JOIN organizations s ON s.org_id = a.supplier_id
               WHERE b.region IS NOT NULL AND s.region IS NOT NULL AND b.region <> s.region
               ORDER BY p.ocid LIMIT 1""").fetchone()
        buyer_region = con.execute("SELECT region FROM organizations WHERE org_id = ?", [buyer]).fetchone()[0]
        _flag(con, "anomaly-supplier-dominates-buyer-spend", "anomaly", "medium", None, {"share_pct": 91.0},
              IN_WEEK, subject_type="buyer-tenderer", subject_id=f"{buyer}/{supplier}")
        _flag(con, "cardinal-r038-excessive-disqualified-bids-tenderer", "anomaly", "medium", None,
              {"disqualified": 7}, IN_WEEK, subject_type="tenderer", subject_id=supplier)
        _flag(con, "opportunity-service-discontinuity", "opportunity", "medium", ocid,
              {"buyer_id": "UA-EDR-99999999", "situation": "gap"}, IN_WEEK)
    finally:
        con.close()
    result = write_report(settings_for(db_path), WEEK, tmp_path / "out")
    ours = (f"{buyer}/{supplier}", supplier, ocid)
    rules = ("anomaly-supplier-dominates-buyer-spend", "cardinal-r038-excessive-disqualified-bids-tenderer",
             "opportunity-service-discontinuity")
    reported = {(r["subject_type"], r["region"], r["buyer_id"]) for r in csv.DictReader(io.StringIO(
        result.csv.read_text(encoding="utf-8-sig"))) if r["subject_id"] in ours and r["rule_id"] in rules}
    assert reported == {("buyer-tenderer", buyer_region, buyer), ("tenderer", "", ""),
                        ("process", process_region, buyer)}
    out = tmp_path / "export"
    assert run_cli("--db", db_path, "export", "--format", "csv", "--out", out,
                   *(arg for rule in rules for arg in ("--rule", rule)))[0] == 0
    with (out / "flags.csv").open(encoding="utf-8-sig") as handle:
        exported = {(r["subject_type"], r["region"], r["buyer_id"]) for r in csv.DictReader(handle)
                    if r["subject_id"] in ours}
    assert exported == reported


def test_untrusted_text_is_escaped_and_formulas_neutralised(report):
    result, html = report
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Послуги соціального супроводу" in html
    markdown = result.md.read_text(encoding="utf-8")
    assert "<script" not in markdown and "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown
    raw = result.csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    hostile = next(r for r in rows if r["title"].startswith("<script>"))
    assert hostile["buyer_name"] == "'" + FORMULA_BUYER
    assert all(not str(v).startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for v in r.values())
    assert [neutralise(v) for v in ("=1+1", "+3", "-2", "@SUM(A1)", "\tx", "\rx", "ok", -2.5)] == \
        ["'=1+1", "'+3", "'-2", "'@SUM(A1)", "'\tx", "'\rx", "ok", -2.5]


def test_html_is_self_contained(report):
    result, html = report
    page = parse(html)
    assert not {"link", "script", "img", "iframe", "object", "embed"} & set(page.tags)
    assert "src=" not in html and "url(" not in html and "@import" not in html
    # every reference is a link to prozorro.gov.ua or within the page (the hostile buyer name's URL is text)
    references = re.findall(r"""\b(?:href|src|srcset|action|poster|data|formaction)\s*=\s*["']?([^"'\s>]*)""", html)
    assert references and {r for r in references
                           if not r.startswith(("https://prozorro.gov.ua/", "#"))} == set()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "default-src 'none'" in html
    assert len(re.findall(r"<svg ", html)) == 3


def test_ukrainian_text_and_sections(report):
    result, html = report
    assert html.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in html
    assert "область" in html and "Послуги соціального супроводу" in html
    order = [html.index(f'<section id="{s}">') for s in ("headline", "flags", "opportunities", "spending", "rules")]
    assert order == sorted(order)
    markdown = result.md.read_text(encoding="utf-8")
    assert markdown.startswith("# Weekly procurement report 2026-W47") and "область" in markdown
    assert "(https://prozorro.gov.ua/tender/" in markdown
    for footer in ("Generated at", "Clock", "Database", "Schema version"):
        assert f"<dt>{footer}</dt>" in html


def test_report_command(sample_db, run_cli, db_path: Path, tmp_path: Path):
    out = tmp_path / "cli"
    code, stdout, stderr = run_cli("--db", db_path, "report", "--week", WEEK, "--out", out)
    assert code == 0, stderr
    assert f"report {WEEK}:" in stdout and str(out / "report.html") in stdout
    assert run_cli("--db", db_path, "report", "--week", "2026-47")[0] == 2
    assert run_cli("--db", tmp_path / "missing.duckdb", "report")[0] == 2


def test_a_week_without_anything(sample_db, db_path: Path, tmp_path: Path):
    result = write_report(settings_for(db_path), "2019-W02", tmp_path / "old")
    html = result.html.read_text(encoding="utf-8")
    assert result.counts["flags_new"] == result.counts["csv_rows"] == 0
    assert "No advocacy opportunity is open at the end of this week." in html
    assert "Monday 2019-01-07 to Sunday 2019-01-13" in html


def test_processes_merged_from_ocds_releases_count_as_ingested_in_their_week(run_cli, db_path):
    """Their raw_key (<source>:release_set:<ocid>) names no single raw record: each of their releases counts."""
    releases = Path(__file__).resolve().parent / "fixtures" / "prozorro-real" / "ocds-releases-10-2018.json"
    assert run_cli("--db", db_path, "load", releases)[0] == 0
    con = duckdb.connect(str(db_path))
    try:
        con.execute(f"UPDATE raw_records SET fetched_at = TIMESTAMPTZ '{IN_WEEK}'")
        assert con.execute("SELECT count(*) FROM processes WHERE starts_with(raw_key, 'ocds:release_set:')"
                           ).fetchone() == (10,)
    finally:
        con.close()
    result = write_report(settings_for(db_path))
    assert (result.counts["processes_week"], result.counts["processes_total"]) == (10, 10)


def test_a_release_set_counts_as_ingested_when_the_record_it_was_merged_on_arrived(run_cli, db_path, tmp_path):
    """A process merged from a record and a later release: the record received in the week updated it,
    though the process's raw_key names the release set (it was counted only for its releases)."""
    fixtures = Path(__file__).resolve().parent / "fixtures" / "prozorro-real"
    records = fixtures / "ocds-records-10-2017-2018.json"
    package = json.loads((fixtures / "ocds-releases-10-2018.json").read_text(encoding="utf-8"))
    ocid = json.loads(records.read_text(encoding="utf-8"))["records"][0]["ocid"]
    later = {**next(r for r in package["releases"] if r["ocid"] == ocid), "id": "later-1",
             "date": "2018-07-02T09:00:00+03:00"}
    (tmp_path / "later.json").write_text(json.dumps({**package, "releases": [later]}), encoding="utf-8")
    for path in (records, tmp_path / "later.json"):
        assert run_cli("--db", db_path, "load", path)[0] == 0
    con = duckdb.connect(str(db_path))
    try:
        assert con.execute("SELECT raw_key FROM processes WHERE ocid = ?", [ocid]).fetchall() == [
            (f"ocds:release_set:{ocid}",)]
        con.execute("UPDATE raw_records SET fetched_at = TIMESTAMPTZ '2026-10-01 10:00:00+00'")
        con.execute(f"UPDATE raw_records SET fetched_at = TIMESTAMPTZ '{IN_WEEK}' WHERE kind = 'record' AND ocid = ?",
                    [ocid])
    finally:
        con.close()
    result = write_report(settings_for(db_path))
    assert (result.counts["processes_week"], result.counts["processes_total"]) == (1, 10)
