"""What the weekly report shows, read from the database in a handful of set-based queries.

Definitions (the report states them under each heading):

- *ingested in the week*: the stored copy of the process was received (fetched or loaded) during the
  week, Monday 00:00 to Monday 00:00 Kyiv time; that is new and updated processes.
- values are summed per currency, never across currencies, and never for masked processes (their
  values are hidden by ProZorro); test processes are left out everywhere.
- a flag is *new* when first raised in the week, *still open* when raised before the week and not
  resolved by its end, *resolved* when it stopped firing during the week.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, TextIO
from urllib.parse import quote

import duckdb
import orjson

from monitor.formulas import neutralise
from monitor.report.meta import KINDS, SEVERITIES, CategoryInfo, RuleInfo
from monitor.report.weeks import KYIV, Week

PROZORRO_TENDER_URL = "https://prozorro.gov.ua/tender/{}"
PROZORRO_PLAN_URL = "https://prozorro.gov.ua/plan/{}"
CHART_QUARTERS = 8
CHART_WEEKS = 12
CHART_REGIONS = 10
HTML_ROWS_PER_RULE = 50      # rows of each rule's table on the page; flags.csv has them all
HTML_OPPORTUNITIES = 100     # rows of the opportunities table on the page
_BATCH = 10_000              # flags read from the database at a time: the report never holds them all

CSV_COLUMNS = (
    "week", "status", "rule_id", "rule_title", "kind", "severity", "subject_type", "subject_id", "ocid",
    "tender_public_id", "plan_public_id", "link", "title", "buyer_name", "buyer_id", "region", "amount",
    "currency", "masked", "flag_value", "deadline", "first_seen", "last_seen", "resolved_at", "evidence",
)

# evidence keys shown in their own columns (or used for the link), so not repeated under "evidence"
_SHOWN_KEYS = {
    "tender_public_id", "plan_public_id", "title", "buyer_name", "buyer_id", "buyer_edrpou", "region",
    "amount", "currency", "value_amount", "value_currency",
}


@dataclasses.dataclass
class CategoryRow:
    """One line of the headline table: processes and value per currency, this week and in total."""

    id: str | None
    name: str
    depth: int
    processes_week: int = 0
    processes_total: int = 0
    masked_week: int = 0
    masked_total: int = 0
    value_week: dict[str, float] = dataclasses.field(default_factory=dict)
    value_total: dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class FlagRow:
    """A flag as the report shows it: evidence plus the process behind it, with a link where there is one."""

    rule_id: str
    rule_title: str
    kind: str
    severity: str
    subject_type: str
    subject_id: str
    ocid: str | None
    flag_value: float | None
    evidence: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    status: str  # new | open | resolved (in the report's week)
    tender_public_id: str | None
    plan_public_id: str | None
    title: str | None
    buyer_name: str | None
    buyer_id: str | None
    region: str | None
    amount: float | None
    currency: str | None
    masked: bool
    deadline: datetime | None
    link: str | None
    subject_label: str  # what the link (or plain text) says: tenderID, planID, ocid, organization id

    @property
    def extra_evidence(self) -> list[tuple[str, Any]]:
        """Evidence the fixed columns do not already show, plus the flag's own value when it says something."""
        items = [(k, v) for k, v in self.evidence.items() if k not in _SHOWN_KEYS and v not in (None, "", [])]
        if self.flag_value is not None and self.flag_value != 1.0 and self.flag_value != self.amount:
            items.append(("flag value", self.flag_value))
        return items


@dataclasses.dataclass
class SummaryRow:
    kind: str
    severity: str
    new: int = 0
    new_previous: int = 0
    still_open: int = 0
    resolved: int = 0
    open_at_end: int = 0


@dataclasses.dataclass
class RuleSection:
    """One rule's table: its first HTML_ROWS_PER_RULE flags in report order, and counts over all of them."""

    rule: RuleInfo
    rows: list[FlagRow] = dataclasses.field(default_factory=list)
    total: int = 0
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    columns: set[str] = dataclasses.field(default_factory=set)  # the optional columns any of its flags fills

    def count(self, status: str) -> int:
        return self.counts.get(status, 0)

    def add(self, row: FlagRow) -> None:
        self.total += 1
        self.counts[row.status] = self.counts.get(row.status, 0) + 1
        if len(self.rows) < HTML_ROWS_PER_RULE:
            self.rows.append(row)
        if row.subject_type != "region":  # a rule about regions has no buyer and no value to show
            self.columns.add("subject")
        if row.buyer_name or row.buyer_id:
            self.columns.add("buyer")
        if row.region:
            self.columns.add("region")
        if row.amount is not None or row.masked:
            self.columns.add("value")


@dataclasses.dataclass
class ReportData:
    week: Week
    previous: Week
    clock: datetime
    clock_pinned: bool
    generated_at: datetime
    db_path: str
    schema_version: int
    version: str
    main_currency: str
    categories: list[CategoryRow]
    summary: list[SummaryRow]
    flag_count: int  # flags of the week: the rows of flags.csv
    opportunities: list[FlagRow]  # the first HTML_OPPORTUNITIES open ones, soonest deadline first
    opportunity_count: int
    sections: list[RuleSection]
    quiet_rules: list[RuleInfo]
    failed_rules: list[tuple[str, str]]
    spend_by_quarter: tuple[list[str], list[tuple[str, str, list[float]]]]  # quarter labels; (id, name, values)
    spend_by_region: list[tuple[str, float, int]]  # region, value, processes
    flags_by_week: tuple[list[Week], dict[str, list[int]]]  # weeks; kind → new flags per week
    newest_record: datetime | None
    last_run: tuple[str, str, datetime | None] | None

    @property
    def week_complete(self) -> bool:
        return self.clock >= self.week.end

    @property
    def next_deadline(self) -> datetime | None:
        return next((r.deadline for r in self.opportunities if r.deadline), None)

    def summary_total(self, field: str, kind: str | None = None) -> int:
        return sum(getattr(r, field) for r in self.summary if kind is None or r.kind == kind)


def _publisher_pages(raw_config: dict[str, Any]) -> dict[str, str]:
    """Publisher name → ``page_url`` template (``{ocid}``) from ``[[ocds.publishers]]``, when configured."""
    pages = {}
    ocds = raw_config.get("ocds") if isinstance(raw_config, dict) else None
    for publisher in (ocds or {}).get("publishers", []) if isinstance(ocds, dict) else []:
        if isinstance(publisher, dict) and isinstance(publisher.get("page_url"), str) and "{ocid}" in publisher["page_url"] \
                and publisher["page_url"].startswith(("https://", "http://")):
            pages[str(publisher.get("name"))] = publisher["page_url"]
    return pages


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


_LOCAL_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2})?))?(?:\s*Kyiv time)?$")


def parse_moment(value: Any) -> datetime | None:
    """A date-time written by a rule: ISO with an offset, or Kyiv local time (``2026-11-27 18:00 Kyiv time``);
    a bare date means the end of that day in Kyiv."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        match = _LOCAL_TIME.match(text)
        if not match:
            return None
        day, clock = match.groups()
        try:
            moment = datetime.fromisoformat(f"{day} {clock or '23:59:59'}")
        except ValueError:
            return None
    if moment.tzinfo is None:
        if len(text) == 10:
            moment = moment.replace(hour=23, minute=59, second=59)
        moment = moment.replace(tzinfo=KYIV)
    return moment


def _deadline(evidence: dict[str, Any]) -> datetime | None:
    """The evidence's ``deadline`` (or, failing that, ``tender_end``), as an aware date-time."""
    return parse_moment(evidence.get("deadline")) or parse_moment(evidence.get("tender_end"))


def _status(first_seen: datetime, resolved_at: datetime | None, week: Week) -> str:
    if resolved_at is not None and week.start <= resolved_at < week.end:
        return "resolved"
    if first_seen >= week.start:
        return "new"
    return "open"


# the evidence's amount (or, when it has no "amount" key, its value_amount) as a number: read once, here,
# for the row (_flag_row) and for the report order (else the process's value; none for masked processes)
_EVIDENCE_NUMBER = """CASE json_type(f.evidence, '{path}')
    WHEN 'VARCHAR' THEN TRY_CAST(json_extract_string(f.evidence, '{path}') AS DOUBLE)
    WHEN 'BIGINT' THEN json_extract(f.evidence, '{path}')::DOUBLE
    WHEN 'UBIGINT' THEN json_extract(f.evidence, '{path}')::DOUBLE
    WHEN 'DOUBLE' THEN json_extract(f.evidence, '{path}')::DOUBLE END"""
_EVIDENCE_AMOUNT = f"""TRY(CASE WHEN json_exists(f.evidence, '$.amount') THEN {_EVIDENCE_NUMBER.format(path="$.amount")}
                                ELSE {_EVIDENCE_NUMBER.format(path="$.value_amount")} END)"""
_FLAGS_SQL = f"""
SELECT f.rule_id, f.kind, f.severity, f.subject_type, f.subject_id, f.ocid, f.value, f.evidence::VARCHAR,
       f.first_seen, f.last_seen, f.resolved_at,
       p.tender_public_id, p.title, p.buyer_id, p.buyer_name, p.region, p.value_amount, p.value_currency,
       coalesce(p.is_masked, false), p.source, o.name, f.subject_buyer, ob.region,
       {_EVIDENCE_AMOUNT} AS evidence_amount
FROM (SELECT *,  -- a buyer, a procuring entity or the buyer of a buyer/tenderer pair, as the export takes it
             CASE WHEN subject_type IN ('buyer', 'procuring-entity') THEN subject_id
                  WHEN subject_type = 'buyer-tenderer' THEN regexp_extract(subject_id, '^([^ /]+)', 1) END AS subject_buyer
      FROM flags WHERE first_seen < $end AND (resolved_at IS NULL OR resolved_at >= $start)) f
LEFT JOIN processes p ON p.ocid = f.ocid
LEFT JOIN organizations o ON o.org_id = f.subject_id
LEFT JOIN organizations ob ON ob.org_id = f.subject_buyer
ORDER BY CASE WHEN f.resolved_at >= $start AND f.resolved_at < $end THEN 2
              WHEN f.first_seen >= $start THEN 0 ELSE 1 END,   -- as _status: new, still open, resolved
         -coalesce(CASE WHEN NOT coalesce(p.is_masked, false) THEN coalesce(evidence_amount, p.value_amount) END, 0),
         f.first_seen, f.subject_id, f.rule_id, f.ocid
"""


def _flag_row(record: tuple, week: Week, rules: dict[str, RuleInfo], pages: dict[str, str]) -> FlagRow:
    (rule_id, kind, severity, subject_type, subject_id, ocid, value, evidence_text, first_seen, last_seen,
     resolved_at, p_tender, p_title, p_buyer_id, p_buyer_name, p_region, p_amount, p_currency, masked, source,
     org_name, subject_buyer, buyer_region, amount) = record
    try:
        evidence = orjson.loads(evidence_text) if evidence_text else {}
    except orjson.JSONDecodeError:
        evidence = {"evidence": evidence_text}
    if not isinstance(evidence, dict):
        evidence = {"evidence": evidence}
    tender_public_id = _text(evidence.get("tender_public_id")) or _text(p_tender)
    plan_public_id = _text(evidence.get("plan_public_id"))
    currency = _text(evidence.get("currency", evidence.get("value_currency")))
    if amount is None and not masked:
        amount, currency = p_amount, _text(p_currency) or currency
    # the subject's own page: a plan flag's evidence may name a tender of the plan as well
    if plan_public_id and (subject_type == "plan" or not tender_public_id):
        link, label = PROZORRO_PLAN_URL.format(quote(plan_public_id, safe="-")), plan_public_id
    elif tender_public_id:
        link, label = PROZORRO_TENDER_URL.format(quote(tender_public_id, safe="-")), tender_public_id
    elif ocid and source in pages:
        link, label = pages[source].replace("{ocid}", quote(ocid, safe="-")), ocid
    else:
        link, label = None, ocid or subject_id
    rule = rules.get(rule_id)
    return FlagRow(
        rule_id=rule_id, rule_title=rule.title if rule else rule_id, kind=kind, severity=severity,
        subject_type=subject_type, subject_id=subject_id, ocid=ocid, flag_value=value, evidence=evidence,
        first_seen=first_seen, last_seen=last_seen, resolved_at=resolved_at,
        status=_status(first_seen, resolved_at, week),
        tender_public_id=tender_public_id, plan_public_id=plan_public_id,
        title=_text(evidence.get("title")) or _text(p_title),
        buyer_name=_text(evidence.get("buyer_name")) or _text(p_buyer_name)
        or (_text(org_name) if subject_type in ("buyer", "procuring-entity") else None),
        # buyer and region in the export's order (monitor/export/selection.py). Buyer: the process's, the
        # subject's buyer, the evidence's (a plan rule puts the plan's buyer there). Region: the process's,
        # the region subject, the buyer organization's, the evidence's (a plan rule puts the plan's region
        # there); a tenderer has none of its own: where it is registered is not where the money is spent
        buyer_id=_text(p_buyer_id) or _text(subject_buyer) or _text(evidence.get("buyer_id")),
        region=_text(p_region) or (subject_id if subject_type == "region" else None) or _text(buyer_region)
        or _text(evidence.get("region")),
        amount=None if masked else amount, currency=currency, masked=bool(masked),
        deadline=_deadline(evidence),
        link=link,
        subject_label=(f"{org_name} ({subject_id})" if subject_type == "tenderer" and org_name else label),
    )


def _flag_rows(con: duckdb.DuckDBPyConnection, week: Week, rules: dict[str, RuleInfo],
               pages: dict[str, str]) -> Iterator[FlagRow]:
    """The week's flags in report order (new, still open, resolved; largest amount first; oldest first),
    read a batch at a time."""
    cursor = con.execute(_FLAGS_SQL, {"start": week.start, "end": week.end})
    while batch := cursor.fetchmany(_BATCH):
        for record in batch:
            yield _flag_row(record, week, rules, pages)


def _kyiv_iso(moment: datetime | None) -> str:
    return moment.astimezone(KYIV).isoformat() if moment else ""


def csv_row(week: Week, row: FlagRow) -> list[Any]:
    """The flags.csv line of ``row``: text a spreadsheet would run as a formula gets a leading apostrophe."""
    return [neutralise(v) for v in (
        week.label, row.status, row.rule_id, row.rule_title, row.kind, row.severity, row.subject_type,
        row.subject_id, row.ocid or "", row.tender_public_id or "", row.plan_public_id or "", row.link or "",
        row.title or "", row.buyer_name or "", row.buyer_id or "", row.region or "",
        "" if row.amount is None else row.amount, row.currency or "", "yes" if row.masked else "no",
        "" if row.flag_value is None else row.flag_value, _kyiv_iso(row.deadline), _kyiv_iso(row.first_seen),
        _kyiv_iso(row.last_seen), _kyiv_iso(row.resolved_at),
        orjson.dumps(row.evidence).decode() if row.evidence else "",
    )]


def _categories(con: duckdb.DuckDBPyConnection, week: Week, infos: list[CategoryInfo]) -> list[CategoryRow]:
    found = con.execute(
        """
        WITH fetched AS (
            SELECT source, kind, id, ocid FROM raw_records WHERE fetched_at >= $start AND fetched_at < $end
        ), fetched_keys AS (  -- a process compiled from OCDS releases comes from every release of its ocid
            SELECT DISTINCT CASE WHEN kind = 'release' THEN source || ':release_set:' || ocid
                                 ELSE source || ':' || kind || ':' || id END AS raw_key
            FROM fetched
        ), p AS (
            SELECT p.ocid, p.is_masked, p.value_amount, p.value_currency,
                   p.raw_key IN (SELECT raw_key FROM fetched_keys)
                   -- ... and from the compiled release (alone or in a record) they were merged on
                   OR (p.raw_key LIKE '%:release_set:%'
                       AND p.ocid IN (SELECT ocid FROM fetched WHERE kind IN ('compiled_release', 'record')))
                   AS in_week
            FROM processes p
            WHERE NOT p.is_test
        ), tagged AS (
            SELECT NULL::VARCHAR AS category, * FROM p
            UNION ALL
            SELECT c.category, p.* FROM p JOIN (SELECT DISTINCT ocid, category FROM classifications) c USING (ocid)
        )
        SELECT category, value_currency, count(*), count(*) FILTER (in_week),
               count(*) FILTER (is_masked), count(*) FILTER (is_masked AND in_week),
               sum(value_amount) FILTER (NOT is_masked), sum(value_amount) FILTER (NOT is_masked AND in_week)
        FROM tagged GROUP BY ALL
        """,
        {"start": week.start, "end": week.end},
    ).fetchall()
    rows: dict[str | None, CategoryRow] = {None: CategoryRow(None, "All processes", 0)}
    for info in infos:
        rows[info.id] = CategoryRow(info.id, info.name, info.depth)
    for category, currency, total, in_week, masked, masked_week, value, value_week in found:
        row = rows.setdefault(category, CategoryRow(category, category, 1))
        row.processes_total += total
        row.processes_week += in_week
        row.masked_total += masked
        row.masked_week += masked_week
        if currency and value is not None:
            row.value_total[currency] = row.value_total.get(currency, 0.0) + value
        if currency and value_week is not None:
            row.value_week[currency] = row.value_week.get(currency, 0.0) + value_week
    for row in rows.values():  # the largest currency first
        row.value_total = dict(sorted(row.value_total.items(), key=lambda kv: -kv[1]))
        row.value_week = dict(sorted(row.value_week.items(), key=lambda kv: -kv[1]))
    return list(rows.values())


def _count_in_summary(lines: dict[tuple[str, str], SummaryRow], row: FlagRow, week: Week) -> None:
    line = lines.setdefault((row.kind, row.severity), SummaryRow(row.kind, row.severity))
    line.new += row.first_seen >= week.start  # resolved the same week included, unlike status "new"
    line.still_open += row.status == "open"
    line.resolved += row.status == "resolved"
    if row.resolved_at is None or row.resolved_at >= week.end:
        line.open_at_end += 1


def _summary(con: duckdb.DuckDBPyConnection, previous: Week,
             lines: dict[tuple[str, str], SummaryRow]) -> list[SummaryRow]:
    """The week's lines (counted while the flags were read) with the previous week's new flags beside them."""
    for kind, severity, count in con.execute(
            "SELECT kind, severity, count(*) FROM flags WHERE first_seen >= $start AND first_seen < $end GROUP BY ALL",
            {"start": previous.start, "end": previous.end}).fetchall():
        lines.setdefault((kind, severity), SummaryRow(kind, severity)).new_previous = count
    return [r for r in lines.values() if r.new or r.new_previous or r.still_open or r.resolved or r.open_at_end]


def _main_currency(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute(
        "SELECT value_currency FROM processes WHERE value_currency IS NOT NULL AND NOT is_masked AND NOT is_test "
        "AND ocid IN (SELECT ocid FROM classifications) GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1").fetchone()
    return row[0] if row else "UAH"


_PUBLISHED = "coalesce(p.date_published, p.date_created, p.tender_start)"


def _quarter_start(day: datetime) -> datetime:
    return datetime(day.year, 3 * ((day.month - 1) // 3) + 1, 1, tzinfo=KYIV)


def _spend_by_quarter(con: duckdb.DuckDBPyConnection, week: Week, currency: str,
                      infos: list[CategoryInfo]) -> tuple[list[str], list[tuple[str, str, list[float]]]]:
    last = _quarter_start(week.start)
    starts = [last]
    for _ in range(CHART_QUARTERS - 1):
        starts.insert(0, _quarter_start(starts[0] - timedelta(days=1)))
    labels = [f"{s.year} Q{(s.month - 1) // 3 + 1}" for s in starts]
    index = {(s.year, s.month): i for i, s in enumerate(starts)}
    sectors = [c for c in infos if c.depth == 0]
    series = {c.id: [0.0] * len(starts) for c in sectors}
    for category, quarter, value in con.execute(
            f"""
            SELECT c.category, date_trunc('quarter', timezone('Europe/Kyiv', {_PUBLISHED})) AS quarter,
                   sum(p.value_amount)
            FROM processes p JOIN (SELECT DISTINCT ocid, category FROM classifications) c USING (ocid)
            WHERE NOT p.is_masked AND NOT p.is_test AND p.value_currency = $currency
              AND {_PUBLISHED} >= $start AND {_PUBLISHED} < $end AND list_contains($sectors, c.category)
            GROUP BY ALL
            """,
            {"currency": currency, "start": starts[0], "end": week.end,
             "sectors": [c.id for c in sectors]}).fetchall():
        position = index.get((quarter.year, quarter.month))
        if position is not None and value is not None:
            series[category][position] += value
    return labels, [(c.id, c.name, series[c.id]) for c in sectors]


def _spend_by_region(con: duckdb.DuckDBPyConnection, week: Week, currency: str) -> list[tuple[str, float, int]]:
    start = week.end - timedelta(days=365)
    return [(region, value, count) for region, value, count in con.execute(
        f"""
        SELECT coalesce(p.region, 'region unknown'), sum(p.value_amount), count(*)
        FROM processes p
        WHERE NOT p.is_masked AND NOT p.is_test AND p.value_currency = $currency AND p.value_amount IS NOT NULL
          AND {_PUBLISHED} >= $start AND {_PUBLISHED} < $end
          AND p.ocid IN (SELECT ocid FROM classifications)
        GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {CHART_REGIONS}
        """,
        {"currency": currency, "start": start, "end": week.end}).fetchall()]


def _flags_by_week(con: duckdb.DuckDBPyConnection, week: Week) -> tuple[list[Week], dict[str, list[int]]]:
    weeks = [week.shifted(-i) for i in range(CHART_WEEKS - 1, -1, -1)]
    counts = {kind: [0] * len(weeks) for kind in KINDS}
    for index, kind, count in con.execute(
            """
            SELECT w.i, f.kind, count(*)
            FROM (SELECT unnest($starts) AS s, unnest($ends) AS e, unnest($idx) AS i) w
            JOIN flags f ON f.first_seen >= w.s AND f.first_seen < w.e
            GROUP BY ALL
            """,
            {"starts": [w.start for w in weeks], "ends": [w.end for w in weeks],
             "idx": list(range(len(weeks)))}).fetchall():
        counts.setdefault(kind, [0] * len(weeks))[index] = count
    return weeks, counts


def _failed_rules(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT rule_id, arg_max(error, evaluated_at) FROM rule_runs GROUP BY rule_id "
        "HAVING arg_max(status, evaluated_at) = 'failed' ORDER BY rule_id").fetchall()


def collect(con: duckdb.DuckDBPyConnection, *, week: Week, clock: datetime, clock_pinned: bool,
            generated_at: datetime, db_path: str, schema_version: int, version: str,
            rules: dict[str, RuleInfo], categories: list[CategoryInfo], raw_config: dict[str, Any],
            flags_csv: TextIO | None = None) -> ReportData:
    """Everything the report shows for ``week``, read through ``con`` (read-only is enough).

    The week's flags are read once, in report order, a batch at a time: each goes to ``flags_csv`` (the
    header first) when given, and to the counts; only the rows the page shows are kept.
    """
    previous = week.shifted(-1)
    writer = csv.writer(flags_csv, lineterminator="\r\n") if flags_csv is not None else None
    if writer:
        writer.writerow(CSV_COLUMNS)
    infos = dict(rules)
    sections: dict[str, RuleSection] = {}
    lines = {(k, s): SummaryRow(k, s) for k in KINDS for s in SEVERITIES}
    opportunities: list[FlagRow] = []
    opportunity_count = flag_count = 0

    def opportunity_order(row: FlagRow) -> tuple:  # soonest deadline first; those without one after, largest first
        return (row.deadline is None, row.deadline or clock, -(row.amount or 0), row.subject_id)

    for row in _flag_rows(con, week, rules, _publisher_pages(raw_config)):
        flag_count += 1
        if writer:
            writer.writerow(csv_row(week, row))
        _count_in_summary(lines, row, week)
        if row.rule_id not in infos:  # its rule file is gone: keep the flags, name them by id
            infos[row.rule_id] = RuleInfo(row.rule_id, row.rule_id, row.kind, row.severity, "")
        sections.setdefault(row.rule_id, RuleSection(infos[row.rule_id])).add(row)
        if row.kind == "opportunity" and row.status != "resolved":
            opportunity_count += 1
            opportunities.append(row)
            if len(opportunities) >= 2 * HTML_OPPORTUNITIES:  # a stable sort keeps the read order on ties
                opportunities = sorted(opportunities, key=opportunity_order)[:HTML_OPPORTUNITIES]
    opportunities = sorted(opportunities, key=opportunity_order)[:HTML_OPPORTUNITIES]
    severity_order = {s: i for i, s in enumerate(SEVERITIES)}
    kind_order = {k: i for i, k in enumerate(KINDS)}

    def rule_order(rule: RuleInfo) -> tuple:
        return (kind_order.get(rule.kind, 9), severity_order.get(rule.severity, 9), rule.id)

    quiet = sorted((r for r in rules.values() if r.id not in sections), key=rule_order)
    currency = _main_currency(con)
    newest = con.execute("SELECT max(date_modified) FROM raw_records").fetchone()[0]
    last_run = con.execute(
        "SELECT command, status, coalesce(finished_at, started_at) FROM runs "
        "WHERE command IN ('ingest', 'load', 'nightly') ORDER BY run_id DESC LIMIT 1").fetchone()
    return ReportData(
        week=week, previous=previous, clock=clock, clock_pinned=clock_pinned, generated_at=generated_at,
        db_path=db_path, schema_version=schema_version, version=version, main_currency=currency,
        categories=_categories(con, week, categories),
        summary=_summary(con, previous, lines),
        flag_count=flag_count, opportunities=opportunities, opportunity_count=opportunity_count,
        sections=sorted(sections.values(), key=lambda section: rule_order(section.rule)), quiet_rules=quiet,
        failed_rules=_failed_rules(con),
        spend_by_quarter=_spend_by_quarter(con, week, currency, categories),
        spend_by_region=_spend_by_region(con, week, currency),
        flags_by_week=_flags_by_week(con, week),
        newest_record=newest, last_run=tuple(last_run) if last_run else None,
    )
