"""Which flags an export takes, and the rows behind them.

Filters combine with AND; the values of one repeated option combine with OR. Each flag has a
*context* derived once, which the filters read and the exported ``flags`` table shows beside the
flag's own columns:

- ``region``: the region of the flag's process (``processes.region`` via ``ocid``), else of its plan
  (``plans.region``, plan subjects), else the subject itself (region subjects), else the region of
  the subject's buyer organization (buyer, procuring-entity and buyer-tenderer subjects), else the
  ``region`` the rule put in its evidence.
- ``buyer_id``: the buyer of the process (its procuring entity matches too), else of the plan,
  else the subject (buyer and procuring-entity subjects; the buyer half of a buyer-tenderer pair),
  else the evidence's ``buyer_id``.
- categories: the classifications of the flag's process, else the plan classifications of its
  plan, else the ``categories`` list of the evidence. ``--category health`` also takes the
  sub-categories (``health.medicines``...).
- ``procurement_date``: when the process was published (``date_published``, else ``tender_start``,
  ``date_created``, ``date_modified``), or the plan (``date_published``, else ``date_modified``).

Rows behind the flags: the flags' processes, the processes a flag about a buyer or tenderer names in
its evidence (``ocids``, ``tender_public_id``) and the tenders made from flagged plans, with all their
lots, items, bids, awards, contracts, contract items and changes and classifications; the flagged
plans and the plans of those processes, with their classifications; the organizations they name
(buyers, procuring entities, tenderers, suppliers) and the organizations flagged.

Dates (``--since``/``--until``, both inclusive, UTC; a bare date means that whole day):
``--dates procurement`` (default) selects flags whose procurement_date lies in the period; a flag
without one (a buyer, tenderer or region) is selected when it was open at some moment of the period.
``--dates flagged`` uses that rule for every flag: raised (first_seen) before the period ended and
not resolved before it began.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

import duckdb

from monitor.config import parse_datetime

KINDS = ("anomaly", "opportunity")
DATE_BASES = ("procurement", "flagged")


class FilterError(ValueError):
    """A filter that cannot be applied: a bad date, an unknown rule, region, category or buyer."""


@dataclasses.dataclass(frozen=True)
class Filters:
    rules: tuple[str, ...] = ()
    kind: str | None = None
    categories: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    buyers: tuple[str, ...] = ()
    since: datetime | None = None       # inclusive
    until: datetime | None = None       # exclusive (a bare --until date is moved to the next day)
    dates: str = "procurement"
    open_only: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": list(self.rules), "kind": self.kind, "category": list(self.categories),
            "region": list(self.regions), "buyer": list(self.buyers),
            "since": self.since.isoformat() if self.since else None,
            "until_exclusive": self.until.isoformat() if self.until else None,
            "dates": self.dates, "open_only": self.open_only,
        }


def parse_date(text: str, *, end: bool) -> datetime:
    """An ISO date or date-time (UTC unless it has an offset). The end of a period is returned exclusive:
    a bare date (in any ISO form: 2025-08-22, 20250822, 2025-W34-5) moves to the next day, a date-time
    to the next microsecond (the stored precision), so the instant it names is included."""
    text = text.strip()
    try:
        moment = parse_datetime(text)
    except ValueError as exc:
        raise FilterError(str(exc)) from None
    if end:
        moment += timedelta(days=1) if _is_bare_date(text) else timedelta(microseconds=1)
    return moment


def _is_bare_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def make_filters(*, rules=(), kind=None, categories=(), regions=(), buyers=(), since: str | None = None,
                 until: str | None = None, dates: str = "procurement", open_only: bool = False) -> Filters:
    """Filters from command-line values (strings); raises FilterError on a bad value."""
    if kind is not None and kind not in KINDS:
        raise FilterError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if dates not in DATE_BASES:
        raise FilterError(f"--dates must be one of {', '.join(DATE_BASES)}, not {dates!r}")
    start = parse_date(since, end=False) if since else None
    stop = parse_date(until, end=True) if until else None
    if start and stop and stop <= start:
        raise FilterError(f"--until {until} is before --since {since}")
    return Filters(_distinct(rules), kind, _distinct(categories), _distinct(regions), _distinct(buyers), start, stop,
                   dates, open_only)


def _distinct(values) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in values if v and v.strip()))


# -- resolving the values against the database -------------------------------------------------


def _region_aliases() -> dict[str, str]:
    """Lower-cased spelling (alias, canonical name, English name, ISO code) → canonical ProZorro region."""
    from monitor.reference import regions_csv

    aliases: dict[str, str] = {}
    try:
        with regions_csv().open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                for key in ("alias", "region", "region_en", "iso_code"):
                    if row.get(key):
                        aliases[row[key].strip().lower()] = row["region"]
    except FileNotFoundError:
        pass
    return aliases


def _column(con: duckdb.DuckDBPyConnection, sql: str) -> list[Any]:
    return [row[0] for row in con.execute(sql).fetchall()]


def _unknown(kind: str, value: str, known: list[str], hint: str) -> FilterError:
    close = difflib.get_close_matches(value, known, n=3, cutoff=0.6)
    suggestion = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return FilterError(f"unknown {kind} {value!r}{suggestion} ({hint})")


def resolve(con: duckdb.DuckDBPyConnection, filters: Filters) -> tuple[Filters, dict[str, Any]]:
    """Check the values against the database and rule files; canonical region names, buyer ids.

    Returns the resolved filters and what each given value was read as (for the manifest).
    """
    read_as: dict[str, Any] = {}
    if filters.rules:
        known = set(_column(con, "SELECT DISTINCT rule_id FROM flags"))
        from monitor.flags.rules import RuleError, load_rules

        try:
            known |= {rule.id for rule in load_rules()}
        except (RuleError, OSError):  # invalid or missing rule files: the flags table still names the rules that ran
            pass
        for rule in filters.rules:
            if rule not in known:
                raise _unknown("rule", rule, sorted(known), "see monitor rules list")
    if filters.categories:
        known = set(_column(con, "SELECT DISTINCT category FROM classifications UNION "
                                 "SELECT DISTINCT category FROM plan_classifications"))
        from monitor.classify.categories import CategoryError, load_categories

        try:
            known |= {c.id for c in load_categories()}
        except (CategoryError, OSError):  # invalid or missing category files: the classifications still name the categories
            pass
        for category in filters.categories:
            if category not in known:
                raise _unknown("category", category, sorted(known), "categories are the files of rules/classify/")
    regions = []
    if filters.regions:
        aliases = _region_aliases()
        known = [r for r in _column(con, """
            SELECT region FROM processes WHERE region IS NOT NULL UNION SELECT region FROM plans WHERE region IS NOT NULL
            UNION SELECT subject_id FROM flags WHERE subject_type = 'region'
            UNION SELECT region FROM organizations WHERE region IS NOT NULL""")]
        known_lower = {r.lower(): r for r in [*aliases.values(), *known]}
        for given in filters.regions:
            canonical = aliases.get(given.lower()) or known_lower.get(given.lower())
            if canonical is None:
                raise _unknown("region", given, sorted(known_lower.values()),
                               "a ProZorro region name such as 'Львівська область' or 'м. Київ', an English name, "
                               "or an ISO code such as UA-46")
            regions.append(canonical)
            read_as.setdefault("region", {})[given] = canonical
    buyers = []
    for given in filters.buyers:
        buyer = f"UA-EDR-{given}" if re.fullmatch(r"\d{5,10}", given) else given
        found = con.execute("""
            SELECT (SELECT count(*) FROM processes WHERE upper(buyer_id) = upper($b) OR upper(procuring_entity_id) = upper($b))
                 + (SELECT count(*) FROM plans WHERE upper(buyer_id) = upper($b))
                 + (SELECT count(*) FROM organizations WHERE upper(org_id) = upper($b))
                 + (SELECT count(*) FROM flags WHERE upper(subject_id) = upper($b))""", {"b": buyer}).fetchall()[0][0]
        if not found:
            raise FilterError(f"unknown buyer {given!r}: no process, plan or organization has the id {buyer!r} "
                              "(give an organization id such as UA-EDR-01994000 or a bare EDRPOU code)")
        buyers.append(buyer.upper())
        read_as.setdefault("buyer", {})[given] = buyer
    resolved = dataclasses.replace(filters, regions=tuple(dict.fromkeys(regions)), buyers=tuple(dict.fromkeys(buyers)))
    return resolved, read_as


# -- the selection ------------------------------------------------------------------------------

# One row per flag with the context the filters read. Processes and plans are reduced to one row
# per key first (the newest), so a flag never turns into two rows.
_CONTEXT = r"""
CREATE OR REPLACE TEMP TABLE x_flag_context AS
WITH p AS (
    SELECT ocid, arg_max(region, coalesce(date_modified, '-infinity'::TIMESTAMPTZ)) AS region,
           arg_max(buyer_id, coalesce(date_modified, '-infinity'::TIMESTAMPTZ)) AS buyer_id,
           arg_max(procuring_entity_id, coalesce(date_modified, '-infinity'::TIMESTAMPTZ)) AS procuring_entity_id,
           arg_max(coalesce(date_published, tender_start, date_created, date_modified), coalesce(date_modified, '-infinity'::TIMESTAMPTZ)) AS date,
           arg_max(tender_public_id, coalesce(date_modified, '-infinity'::TIMESTAMPTZ)) AS tender_public_id,
           bool_or(source = 'prozorro' OR ocid LIKE 'ocds-be6bcu-%') AS is_prozorro
    FROM processes WHERE ocid IN (SELECT ocid FROM flags) GROUP BY ocid
),
pl AS (
    SELECT plan_id, plan_public_id, region, buyer_id, coalesce(date_published, date_modified) AS date
    FROM plans WHERE plan_id IN (SELECT subject_id FROM flags WHERE subject_type = 'plan')
                  OR plan_public_id IN (SELECT subject_id FROM flags WHERE subject_type = 'plan')
),
plan_of AS (SELECT subject_id, arg_max(pl, coalesce(pl.date, '-infinity'::TIMESTAMPTZ)) AS pl FROM flags f
            JOIN pl ON f.subject_type = 'plan' AND f.subject_id IN (pl.plan_id, pl.plan_public_id) GROUP BY subject_id),
f AS (
    SELECT f.*,
           CASE WHEN f.subject_type IN ('buyer', 'procuring-entity') THEN f.subject_id
                WHEN f.subject_type = 'buyer-tenderer' THEN regexp_extract(f.subject_id, '^([^ /]+)', 1) END AS subject_buyer,
           TRY(json_extract_string(f.evidence, '$.region')) AS evidence_region,
           TRY(json_extract_string(f.evidence, '$.buyer_id')) AS evidence_buyer,
           TRY(json_extract_string(f.evidence, '$.categories[*]')) AS evidence_categories
    FROM flags f
)
SELECT f.rule_id, f.kind, f.severity, f.subject_type, f.subject_id, f.ocid, f.value, f.evidence,
       f.first_seen, f.last_seen, f.resolved_at,
       p.tender_public_id, (plan_of.pl).plan_public_id AS plan_public_id,
       coalesce(p.buyer_id, (plan_of.pl).buyer_id, f.subject_buyer, f.evidence_buyer) AS buyer_id,
       coalesce(p.region, (plan_of.pl).region, CASE WHEN f.subject_type = 'region' THEN f.subject_id END,
                o.region, f.evidence_region) AS region,
       coalesce(p.date, (plan_of.pl).date) AS procurement_date,
       CASE WHEN p.tender_public_id IS NOT NULL AND p.is_prozorro
                 THEN 'https://prozorro.gov.ua/tender/' || p.tender_public_id
            WHEN (plan_of.pl).plan_public_id LIKE 'UA-P-%'
                 THEN 'https://prozorro.gov.ua/plan/' || (plan_of.pl).plan_public_id END AS url,
       -- for the filters only (not exported)
       p.procuring_entity_id AS x_procuring_entity_id, (plan_of.pl).plan_id AS x_plan_id,
       f.evidence_categories AS x_evidence_categories
FROM f
LEFT JOIN p ON p.ocid = f.ocid
LEFT JOIN plan_of ON f.subject_type = 'plan' AND plan_of.subject_id = f.subject_id
LEFT JOIN organizations o ON o.org_id = f.subject_buyer
"""

def _category_match(column: str) -> str:
    """SQL: ``column`` is one of $categories or a sub-category of one (health → health.medicines)."""
    return (f"({column} = ANY($categories) OR EXISTS (SELECT 1 FROM unnest($categories) t(want) "
            f"WHERE starts_with({column}, want || '.')))")


def _where(filters: Filters) -> tuple[str, dict[str, Any]]:
    clauses, params = [], {}
    if filters.rules:
        clauses.append("f.rule_id = ANY($rules)")
        params["rules"] = list(filters.rules)
    if filters.kind:
        clauses.append("f.kind = $kind")
        params["kind"] = filters.kind
    if filters.open_only:
        clauses.append("f.resolved_at IS NULL")
    if filters.regions:
        clauses.append("f.region = ANY($regions)")
        params["regions"] = list(filters.regions)
    if filters.buyers:
        clauses.append("(upper(f.buyer_id) = ANY($buyers) OR upper(f.x_procuring_entity_id) = ANY($buyers))")
        params["buyers"] = list(filters.buyers)
    if filters.categories:
        # the process's classifications decide when it has any, else the plan's, else the evidence's list
        clauses.append(f"""(
            CASE WHEN f.ocid IS NOT NULL AND EXISTS (SELECT 1 FROM classifications k WHERE k.ocid = f.ocid)
                      THEN EXISTS (SELECT 1 FROM classifications k WHERE k.ocid = f.ocid AND {_category_match('k.category')})
                 WHEN f.x_plan_id IS NOT NULL AND EXISTS (SELECT 1 FROM plan_classifications k WHERE k.plan_id = f.x_plan_id)
                      THEN EXISTS (SELECT 1 FROM plan_classifications k
                                   WHERE k.plan_id = f.x_plan_id AND {_category_match('k.category')})
                 ELSE coalesce(EXISTS (SELECT 1 FROM unnest(f.x_evidence_categories) e(c)
                                       WHERE {_category_match('e.c')}), false) END)""")
        params["categories"] = list(filters.categories)
    if filters.since or filters.until:
        activity = []
        if filters.until:
            activity.append("f.first_seen < $until")
        if filters.since:
            activity.append("(f.resolved_at IS NULL OR f.resolved_at >= $since)")
            params["since"] = filters.since
        if filters.until:
            params["until"] = filters.until
        activity_sql = " AND ".join(activity)
        if filters.dates == "flagged":
            clauses.append(f"({activity_sql})")
        else:
            period = []
            if filters.since:
                period.append("f.procurement_date >= $since")
            if filters.until:
                period.append("f.procurement_date < $until")
            clauses.append(f"(CASE WHEN f.procurement_date IS NOT NULL THEN {' AND '.join(period)} "
                           f"WHEN f.ocid IS NULL AND f.subject_type <> 'plan' THEN {activity_sql} ELSE false END)")
    return (" AND ".join(clauses) or "true"), params


# The flags exported, in this column order (the flag's columns, then its context).
FLAG_COLUMNS = ("rule_id", "kind", "severity", "subject_type", "subject_id", "ocid", "value", "evidence",
                "first_seen", "last_seen", "resolved_at", "tender_public_id", "plan_public_id", "buyer_id",
                "region", "procurement_date", "url")


def select(con: duckdb.DuckDBPyConnection, filters: Filters, *, raw: bool = False) -> None:
    """Create the temp tables the export reads: x_flags (the selected flags), x_ocids, x_plans, x_orgs
    and, with ``raw``, x_raw_keys."""
    con.execute(_CONTEXT)
    where, params = _where(filters)
    columns = ", ".join(f"f.{c}" for c in FLAG_COLUMNS)
    con.execute(f"CREATE OR REPLACE TEMP TABLE x_flags AS SELECT {columns}, f.x_plan_id "
                f"FROM x_flag_context f WHERE {where}", params)
    con.execute("DROP TABLE x_flag_context")
    # processes: those of the flags, those a flag about a buyer or tenderer names in its evidence
    # (ocids, tender_public_id), and those made from flagged plans
    con.execute("""
        CREATE OR REPLACE TEMP TABLE x_ocids AS
        SELECT DISTINCT ocid FROM (
            SELECT ocid FROM x_flags WHERE ocid IS NOT NULL
            UNION ALL
            SELECT unnest(TRY(json_extract_string(evidence, '$.ocids[*]'))) FROM x_flags
            WHERE ocid IS NULL AND json_exists(evidence, '$.ocids')
            UNION ALL
            SELECT p.ocid FROM processes p JOIN x_flags f
                ON f.ocid IS NULL AND f.subject_type <> 'plan'
               AND p.tender_public_id = TRY(json_extract_string(f.evidence, '$.tender_public_id'))
            UNION ALL
            SELECT p.ocid FROM processes p JOIN plans pl ON p.tender_id = pl.tender_id
            WHERE pl.plan_id IN (SELECT x_plan_id FROM x_flags WHERE x_plan_id IS NOT NULL)
            UNION ALL
            SELECT p.ocid FROM (SELECT ocid, unnest(plan_ids) AS plan_ref FROM processes) p
            JOIN plans pl ON p.plan_ref IN (pl.plan_id, pl.plan_public_id)
            WHERE pl.plan_id IN (SELECT x_plan_id FROM x_flags WHERE x_plan_id IS NOT NULL)
        ) WHERE ocid IN (SELECT ocid FROM processes)""")
    # plans: the flagged ones, and those linked to the processes
    con.execute("""
        CREATE OR REPLACE TEMP TABLE x_plans AS
        SELECT DISTINCT plan_id FROM (
            SELECT x_plan_id AS plan_id FROM x_flags WHERE x_plan_id IS NOT NULL
            UNION ALL
            SELECT pl.plan_id FROM plans pl JOIN processes p ON p.tender_id = pl.tender_id
            WHERE pl.tender_id IS NOT NULL AND p.ocid IN (SELECT ocid FROM x_ocids)
            UNION ALL
            SELECT pl.plan_id FROM (SELECT unnest(plan_ids) AS plan_ref FROM processes
                                    WHERE ocid IN (SELECT ocid FROM x_ocids)) p
            JOIN plans pl ON p.plan_ref IN (pl.plan_id, pl.plan_public_id)
        )""")
    # organizations: buyers, procuring entities, tenderers, suppliers of those rows, and flag subjects
    con.execute("""
        CREATE OR REPLACE TEMP TABLE x_orgs AS
        SELECT DISTINCT org_id FROM (
            SELECT unnest([buyer_id, procuring_entity_id]) AS org_id FROM processes WHERE ocid IN (SELECT ocid FROM x_ocids)
            UNION ALL SELECT unnest(list_concat([tenderer_id], tenderer_ids)) FROM bids WHERE ocid IN (SELECT ocid FROM x_ocids)
            UNION ALL SELECT unnest(list_concat([supplier_id], supplier_ids)) FROM awards WHERE ocid IN (SELECT ocid FROM x_ocids)
            UNION ALL SELECT unnest([buyer_id, supplier_id]) FROM contracts WHERE ocid IN (SELECT ocid FROM x_ocids)
            UNION ALL SELECT buyer_id FROM plans WHERE plan_id IN (SELECT plan_id FROM x_plans)
            UNION ALL SELECT buyer_id FROM x_flags
            UNION ALL SELECT subject_id FROM x_flags WHERE subject_type IN ('buyer', 'procuring-entity', 'tenderer')
            UNION ALL SELECT unnest([regexp_extract(subject_id, '^([^ /]+)[ /](.+)$', 1),
                                     regexp_extract(subject_id, '^([^ /]+)[ /](.+)$', 2)])
                      FROM x_flags WHERE subject_type = 'buyer-tenderer'
        ) WHERE org_id IS NOT NULL AND org_id IN (SELECT org_id FROM organizations)""")
    if raw:
        con.execute("""
            CREATE OR REPLACE TEMP TABLE x_raw_keys AS
            SELECT DISTINCT raw_key FROM (
                SELECT raw_key FROM processes WHERE ocid IN (SELECT ocid FROM x_ocids)
                UNION ALL SELECT raw_key FROM lots WHERE ocid IN (SELECT ocid FROM x_ocids)
                UNION ALL SELECT raw_key FROM items WHERE ocid IN (SELECT ocid FROM x_ocids)
                UNION ALL SELECT raw_key FROM bids WHERE ocid IN (SELECT ocid FROM x_ocids)
                UNION ALL SELECT raw_key FROM awards WHERE ocid IN (SELECT ocid FROM x_ocids)
                UNION ALL SELECT raw_key FROM contracts WHERE ocid IN (SELECT ocid FROM x_ocids)
                UNION ALL SELECT raw_key FROM contract_items WHERE ocid IN (SELECT ocid FROM x_ocids)
                UNION ALL SELECT raw_key FROM contract_changes WHERE ocid IN (SELECT ocid FROM x_ocids)
                UNION ALL SELECT raw_key FROM complaints WHERE ocid IN (SELECT ocid FROM x_ocids)
                UNION ALL SELECT raw_key FROM bid_documents WHERE ocid IN (SELECT ocid FROM x_ocids)
                UNION ALL SELECT raw_key FROM plans WHERE plan_id IN (SELECT plan_id FROM x_plans)
            )""")


# What each exported table holds: (name, query without order, sort keys). Rows are written in that
# order, so the same database and filters give the same rows in the same order.
def table_queries() -> list[tuple[str, str, str]]:
    in_ocids = "WHERE ocid IN (SELECT ocid FROM x_ocids)"
    # process_key numbers processes inside one database only: the evidence names them by ocid
    keyed = "* EXCLUDE (process_key)"
    return [
        ("flags", f"SELECT {', '.join(FLAG_COLUMNS)} FROM x_flags",
         "rule_id, subject_type, subject_id, ocid NULLS FIRST, first_seen"),
        ("processes", f"SELECT {keyed} FROM processes {in_ocids}", "ocid, source, raw_key"),
        ("lots", f"SELECT {keyed} FROM lots {in_ocids}", "ocid, raw_key, lot_id"),
        ("items", f"SELECT {keyed} FROM items {in_ocids}",
         "ocid, raw_key, lot_id NULLS FIRST, item_id NULLS FIRST, cpv NULLS FIRST, description NULLS FIRST"),
        ("bids", f"SELECT {keyed} FROM bids {in_ocids}", "ocid, raw_key, bid_id NULLS FIRST, lot_id NULLS FIRST"),
        ("awards", f"SELECT {keyed} FROM awards {in_ocids}", "ocid, raw_key, award_id NULLS FIRST, lot_id NULLS FIRST"),
        ("contracts", f"SELECT {keyed} FROM contracts {in_ocids}", "ocid, raw_key, contract_id NULLS FIRST, origin"),
        ("contract_items", f"SELECT {keyed} FROM contract_items {in_ocids}",
         "ocid, raw_key, contract_id NULLS FIRST, item_id NULLS FIRST, description NULLS FIRST"),
        ("contract_changes", f"SELECT {keyed} FROM contract_changes {in_ocids}",
         "ocid, raw_key, contract_id NULLS FIRST, change_id NULLS FIRST"),
        ("complaints", f"SELECT {keyed} FROM complaints {in_ocids}",
         "ocid, raw_key, parent_type NULLS FIRST, parent_id NULLS FIRST, complaint_id NULLS FIRST, "
         "date_submitted NULLS FIRST"),
        ("bid_documents", f"SELECT {keyed} FROM bid_documents {in_ocids}",
         "ocid, raw_key, bid_id NULLS FIRST, container NULLS FIRST, document_id NULLS FIRST, "
         "date_modified NULLS FIRST, date_published NULLS FIRST"),
        ("plans", "SELECT * FROM plans WHERE plan_id IN (SELECT plan_id FROM x_plans)", "plan_id, source, raw_key"),
        ("organizations", "SELECT * FROM organizations WHERE org_id IN (SELECT org_id FROM x_orgs)", "org_id"),
        ("classifications", f"SELECT {keyed} FROM classifications {in_ocids}", "ocid, category"),
        ("plan_classifications", "SELECT * FROM plan_classifications WHERE plan_id IN (SELECT plan_id FROM x_plans)",
         "plan_id, category"),
    ]


# The verbatim records behind the exported rows: a row's raw_key is source:kind:id of its record;
# a process compiled from OCDS releases (kind release_set) comes from every release of its ocid and
# from the compiled releases (alone or in a record) of the ocid they were merged on.
RAW_QUERY = r"""
SELECT r.source, r.kind, r.id, r.ocid, r.date_modified, r.fetched_at, r.origin, r.sha256, r.json AS record
FROM raw_records r
WHERE r.source || ':' || r.kind || ':' || r.id IN (SELECT raw_key FROM x_raw_keys)
   OR (r.kind = 'release' AND r.source || ':release_set:' || r.ocid IN (SELECT raw_key FROM x_raw_keys))
   OR (r.kind IN ('compiled_release', 'record')
       AND r.ocid IN (SELECT ocid FROM processes
                      WHERE raw_key IN (SELECT raw_key FROM x_raw_keys) AND raw_key LIKE '%:release_set:%'))
ORDER BY r.source, r.kind, r.id
"""


LATEST_MODIFIED = """
SELECT max(d) FROM (
    SELECT max(date_modified) AS d FROM processes WHERE ocid IN (SELECT ocid FROM x_ocids)
    UNION ALL SELECT max(date_modified) FROM contracts WHERE ocid IN (SELECT ocid FROM x_ocids)
    UNION ALL SELECT max(date_modified) FROM plans WHERE plan_id IN (SELECT plan_id FROM x_plans)
)"""


def utc_iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
