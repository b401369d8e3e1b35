"""Normalize changed raw records into the common tables, set-based.

The caller fills the temp table ``norm_in`` with the records whose raw row changed (new or
updated) and calls :func:`normalize_changed` inside the transaction that stored them. Rows the
old copy of a record produced are replaced; a contracting process (ocid) is owned by the newest
process-level record of any source, so loading an OCDS copy of a tender already known from the
ProZorro API (or the reverse) never double-counts it. OCDS releases are merged on top of the
ocid's compiled release, if one is stored; merged alone they never replace a ProZorro tender.
"""

from __future__ import annotations

import duckdb

from monitor.normalize.common import install_macros
from monitor.normalize.ocds import normalize_ocds
from monitor.normalize.prozorro import normalize_prozorro
from monitor.store.changes import log_changed_processes

# Tables whose rows belong to exactly one raw record (raw_key).
RECORD_TABLES = (
    "processes",
    "lots",
    "items",
    "bids",
    "awards",
    "complaints",
    "bid_documents",
    "contracts",
    "contract_items",
    "contract_changes",
    "plans",
)
# Kinds whose record describes a whole contracting process.
PROCESS_KINDS = ("tender", "compiled_release", "record", "release_set")
OCDS_KINDS = ("compiled_release", "record", "release_set")

NORM_IN_COLUMNS = """
    raw_key VARCHAR, source VARCHAR, kind VARCHAR, id VARCHAR, ocid VARCHAR, body VARCHAR,
    restricted BOOLEAN, date_modified TIMESTAMPTZ, is_update BOOLEAN
"""


def create_norm_in(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create the empty ``norm_in`` temp table."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE norm_in ({NORM_IN_COLUMNS})")


def _beats(winner: str, winner_kind: str, loser: str, loser_kind: str) -> str:
    """SQL: the process record ``winner`` (alias with ocid, date_modified, raw_key) beats ``loser``.

    A ProZorro tender beats a release set of its ocid that has no compiled release under it
    (``norm_partial``, see ``_find_partial_release_sets``). Otherwise the newer record wins (no date
    counts as oldest); on an equal date the kind earlier in ``PROCESS_KINDS`` wins; then the larger
    raw_key, so that the outcome never depends on which record came first or in which batch. One row
    comparison, in that order.
    """
    def rank(alias: str, kind: str) -> str:
        return (f"({kind} = 'tender' AND {alias}.ocid IN (SELECT ocid FROM norm_partial), "
                f"coalesce({alias}.date_modified, '-infinity'::TIMESTAMPTZ), "
                f"-list_position({list(PROCESS_KINDS)!r}, {kind}), {alias}.raw_key)")
    return f"{rank(winner, winner_kind)} > {rank(loser, loser_kind)}"


def _find_partial_release_sets(con: duckdb.DuckDBPyConnection) -> None:
    """``norm_partial``: the ocids of ``norm_in`` where a ProZorro tender meets a release set merged from
    releases alone (no compiled release or record of the ocid is stored).

    Such a set is only what its releases say, often no more than a contract (ProZorro's own release
    packages are like that): it must not replace the tender, whatever its date, nor keep a tender out.
    A release set on top of a compiled release is a whole process and competes by date.
    """
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE norm_partial AS
        WITH owners AS (
            SELECT ocid, kind FROM norm_in WHERE kind IN ('tender', 'release_set')
            UNION
            SELECT ocid, split_part(raw_key, ':', 2) FROM processes
            WHERE ocid IN (SELECT ocid FROM norm_in WHERE kind IN ('tender', 'release_set'))
        )
        SELECT ocid FROM owners WHERE kind IN ('tender', 'release_set') GROUP BY ocid HAVING count(DISTINCT kind) = 2
        """
    )
    if con.execute("SELECT count(*) FROM norm_partial").fetchone()[0]:
        con.execute(
            "DELETE FROM norm_partial WHERE ocid IN "
            "(SELECT ocid FROM raw_records WHERE kind IN ('compiled_release', 'record'))"
        )


def _drop_superseded(con: duckdb.DuckDBPyConnection) -> None:
    """Skip process records that lose to another record of the same ocid, stored or in this batch (``_beats``)."""
    _find_partial_release_sets(con)
    con.execute(
        f"""
        DELETE FROM norm_in n
        WHERE n.kind IN {PROCESS_KINDS!r}
          AND (EXISTS (SELECT 1 FROM processes p
                       WHERE p.ocid = n.ocid AND p.raw_key <> n.raw_key
                         AND {_beats("p", "split_part(p.raw_key, ':', 2)", "n", "n.kind")})
               OR EXISTS (SELECT 1 FROM norm_in m
                          WHERE m.ocid = n.ocid AND m.kind IN {PROCESS_KINDS!r} AND m.raw_key <> n.raw_key
                            AND {_beats("m", "m.kind", "n", "n.kind")}))
        """
    )


def _delete_replaced_rows(con: duckdb.DuckDBPyConnection) -> None:
    """Delete rows produced by the previous copies of these records, and by other owners of their ocids."""
    updated = con.execute("SELECT count(*) FROM norm_in WHERE is_update").fetchone()[0]
    # the processes the previous copies belonged to, for the change log (a copy may name another ocid)
    con.execute("CREATE OR REPLACE TEMP TABLE norm_old_ocids (ocid VARCHAR)")
    if updated:
        con.execute(
            "INSERT INTO norm_old_ocids SELECT ocid FROM processes WHERE raw_key IN "
            "(SELECT raw_key FROM norm_in WHERE is_update) UNION SELECT ocid FROM contracts WHERE raw_key IN "
            "(SELECT raw_key FROM norm_in WHERE is_update)"
        )
        for table in RECORD_TABLES:
            con.execute(
                f"DELETE FROM {table} WHERE raw_key IN (SELECT raw_key FROM norm_in WHERE is_update)"
            )
    other_owner = con.execute(
        f"""
        SELECT count(*) FROM processes p JOIN norm_in n ON p.ocid = n.ocid
        WHERE n.kind IN {PROCESS_KINDS!r} AND p.raw_key <> n.raw_key
        """
    ).fetchone()[0]
    if other_owner:
        for table in RECORD_TABLES:
            if table == "plans":
                continue
            keep_contract_objects = "AND origin <> 'contract'" if table == "contracts" else ""
            keep_contract_objects += (
                " AND raw_key NOT LIKE '%:contract:%'" if table in ("contract_items", "contract_changes") else ""
            )
            con.execute(
                f"""
                DELETE FROM {table}
                WHERE ocid IN (SELECT ocid FROM norm_in WHERE kind IN {PROCESS_KINDS!r})
                  AND raw_key NOT IN (SELECT raw_key FROM norm_in) {keep_contract_objects}
                """
            )


def _assign_process_keys(con: duckdb.DuckDBPyConnection) -> None:
    """Give each ocid first seen here its process key; ``norm_keys`` holds the key of every ocid in ``norm_in``.

    Keys are never changed or reused (``process_keys`` only grows), so the rows of a process keep their
    key when another record of it replaces them. One writer at a time holds the store, so the next
    number is the largest so far plus one.
    """
    con.execute(
        """
        INSERT INTO process_keys
        SELECT ocid, (SELECT coalesce(max(process_key), 0) FROM process_keys) + row_number() OVER (ORDER BY ocid)
        FROM (SELECT DISTINCT ocid FROM norm_in n
              WHERE ocid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM process_keys k WHERE k.ocid = n.ocid))
        """
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE norm_keys AS "
        "SELECT k.ocid, k.process_key FROM process_keys k WHERE k.ocid IN (SELECT ocid FROM norm_in)"
    )


def _upsert_organizations(con: duckdb.DuckDBPyConnection, selects: list[str]) -> None:
    """Insert new organizations and refresh those named by a newer record.

    Each field comes from the newest mention that has it: a newer record that leaves out the address
    or the kind (a reporting tender, a contract's supplier) does not erase what an older one said. The
    address (region, its raw text, locality) is taken as one, from the newest mention with any of it."""
    if not selects:
        return
    union = "\nUNION ALL\n".join(selects)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE org_new AS
        SELECT pm_org_id(scheme, identifier) AS org_id,
               arg_max(scheme, seen_at) AS scheme, arg_max(trim(identifier), seen_at) AS identifier,
               arg_max(pm_str(name), seen_at) FILTER (WHERE pm_str(name) IS NOT NULL) AS name,
               arg_max(pm_str(legal_name), seen_at) FILTER (WHERE pm_str(legal_name) IS NOT NULL) AS legal_name,
               arg_max(kind, seen_at) FILTER (WHERE kind IS NOT NULL) AS kind,
               arg_max({{'region': ra.region, 'region_raw': pm_str(region_raw), 'locality': pm_str(locality)}},
                       seen_at) FILTER (WHERE pm_str(region_raw) IS NOT NULL OR pm_str(locality) IS NOT NULL)
                   AS address,
               max(seen_at) AS seen_at
        FROM ({union}) o
        LEFT JOIN pm_region_alias ra ON ra.alias_key = pm_region_key(o.region_raw)
        WHERE pm_org_id(scheme, identifier) IS NOT NULL
        GROUP BY ALL
        """
    )
    newer = "o.org_id = n.org_id AND (o.seen_at IS NULL OR n.seen_at IS NULL OR n.seen_at >= o.seen_at)"
    con.execute(
        f"""
        UPDATE org_new n
        SET name = coalesce(n.name, o.name), legal_name = coalesce(n.legal_name, o.legal_name),
            kind = coalesce(n.kind, o.kind),
            address = coalesce(n.address, {{'region': o.region, 'region_raw': o.region_raw, 'locality': o.locality}})
        FROM organizations o
        WHERE {newer}
        """
    )
    con.execute(f"DELETE FROM organizations o USING org_new n WHERE {newer}")
    con.execute(
        "INSERT INTO organizations BY NAME SELECT * EXCLUDE (address), unnest(address) FROM org_new n "
        "WHERE NOT EXISTS (SELECT 1 FROM organizations o WHERE o.org_id = n.org_id)"
    )


def normalize_changed(con: duckdb.DuckDBPyConnection) -> int:
    """Normalize every record in ``norm_in``; return how many were normalized."""
    install_macros(con)
    # every process a stored record names, kept or not (rules may read a record that does not own its process)
    con.execute("CREATE OR REPLACE TEMP TABLE norm_named_ocids AS SELECT DISTINCT ocid FROM norm_in")
    _drop_superseded(con)
    kinds = {row[0] for row in con.execute("SELECT DISTINCT kind FROM norm_in").fetchall()}
    if not kinds:
        log_changed_processes(con, "SELECT ocid FROM norm_named_ocids")
        return 0
    _delete_replaced_rows(con)
    _assign_process_keys(con)
    organization_selects = normalize_prozorro(con, kinds)
    if kinds & set(OCDS_KINDS):
        organization_selects += normalize_ocds(con)
    _upsert_organizations(con, organization_selects)
    log_changed_processes(con, "SELECT ocid FROM norm_named_ocids UNION ALL SELECT ocid FROM norm_old_ocids")
    return con.execute("SELECT count(*) FROM norm_in").fetchone()[0]
