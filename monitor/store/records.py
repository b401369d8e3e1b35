"""Store a batch of raw records: validate, quarantine the bad, upsert the raw store, normalize.

A batch is an Arrow table of candidate records (see ``BATCH_SCHEMA``), produced by the file
readers or a connector. Everything happens in one transaction set-based in DuckDB: one JSON
parse per record for the keys, one for the mapping; no Python loop over good records.

Newer wins: a stored record is replaced only by a copy with a later date_modified (on an equal
date, by the copy with the larger content hash, so loading the same files in any order twice gives
the same store); a copy that loses is counted as ``older`` and dropped; identical content is
``unchanged``. Only new and updated records are normalized.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import structlog

from monitor.normalize import NORM_IN_COLUMNS, PROCESS_KINDS, create_norm_in, normalize_changed
from monitor.ocds_merge import MergeError, compile_releases
from monitor.store.db import transaction

log = structlog.get_logger(__name__)

# hint says how to read ``text``: prozorro (native object or API envelope), ocds-compiled
# (a compiled release), ocds-record (a record), ocds-release (an individual release).
BATCH_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),  # position in the batch
        ("source", pa.string()),
        ("hint", pa.string()),
        ("origin", pa.string()),
        ("line", pa.int64()),
        ("locator", pa.string()),
        ("text", pa.string()),
        ("sha256", pa.string()),  # of the UTF-8 text, computed by the reader (hashlib beats SQL here)
        ("error", pa.string()),  # a problem found before SQL (bad UTF-8, too large, merge failure)
    ]
)

QUARANTINE_RAW_LIMIT = 1 << 20  # keep the first MiB of an oversized raw text

_STRING_NUMBER = r'"(amount|amountNet|quantity|numberOfTenderers|numberOfBids)"\s*:\s*"[^"]*"'
_HAS_ZONE = r"(Z|[+-]\d{2}:?\d{2})$"
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}"  # DuckDB's cast alone also takes "infinity", "epoch", ...
# A versioning date that is not an ISO date-time (a number, "yesterday", "2023-02-30"): the reason
# shows the JSON value as given (see _show_unreadable_date), not a timezone complaint.
_UNREADABLE = "unreadable dateModified: "
_UNREADABLE_RELEASE = "unreadable release date: "


class BatchBuilder:
    """Accumulates candidate records and hands out Arrow batches (``BATCH_SCHEMA``) of bounded size."""

    def __init__(self, source: str, origin: str, max_rows: int, max_bytes: int) -> None:
        self.source, self.origin = source, origin
        self.max_rows, self.max_bytes = max_rows, max_bytes
        self._columns: dict[str, list[Any]] = {name: [] for name in BATCH_SCHEMA.names}
        self._bytes = 0
        self.total = 0

    def add(self, hint: str, text: str | None, *, line: int | None = None, locator: str | None = None,
            error: str | None = None, source: str | None = None, origin: str | None = None) -> pa.Table | None:
        columns = self._columns
        columns["seq"].append(len(columns["seq"]))
        columns["sha256"].append(hashlib.sha256(text.encode()).hexdigest() if text is not None else None)
        columns["source"].append(source or self.source)
        columns["hint"].append(hint)
        columns["origin"].append(origin or self.origin)
        columns["line"].append(line)
        columns["locator"].append(locator)
        columns["text"].append(text)
        columns["error"].append(error)
        self._bytes += len(text) if text else 0
        self.total += 1
        if len(columns["text"]) >= self.max_rows or self._bytes >= self.max_bytes:
            return self.flush()
        return None

    def flush(self) -> pa.Table | None:
        if not self._columns["text"]:
            return None
        table = pa.table(self._columns, schema=BATCH_SCHEMA)
        self._columns = {name: [] for name in BATCH_SCHEMA.names}
        self._bytes = 0
        return table


@dataclasses.dataclass
class BatchCounts:
    """What happened to the records of one or more batches."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    older: int = 0
    quarantined: int = 0
    skipped: int = 0

    def add(self, other: BatchCounts) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


# One JSON parse per record for its keys; TRY() turns malformed JSON into NULL. The text itself
# stays in the Arrow batch (batch_in) and is joined back by seq only where it is written.
_STAGE_SQL = r"""
CREATE OR REPLACE TEMP TABLE stage_env AS
SELECT seq, source, hint, origin, line, locator, sha256, error,
       CASE WHEN error IS NULL AND hint = 'prozorro'
            THEN TRY(json_extract(text, ['$.data', '$.config.restricted', '$.next_page', '$.page'])) END AS env,
       CASE WHEN error IS NULL AND hint = 'ocds-record'
            THEN TRY(json_extract(text, ['$.compiledRelease', '$.ocid', '$.releases'])) END AS renv,
       CASE WHEN error IS NULL AND hint IN ('ocds-compiled', 'ocds-release')
            THEN TRY(json_extract_string(text, ['$.ocid', '$.id', '$.date'])) END AS of,
       CASE WHEN error IS NULL THEN left(ltrim(text), 1) END AS first_char,
       CASE WHEN error IS NULL AND hint = 'prozorro' AND env IS NOT NULL
                 AND NOT coalesce(starts_with(env[1], '{'), false) THEN text END AS bare_text,
       CASE WHEN error IS NULL AND regexp_matches(text, '@STRING_NUMBER@')
            THEN regexp_extract(text, '@STRING_NUMBER@') END AS string_number
FROM batch_in;

CREATE OR REPLACE TEMP TABLE stage AS
SELECT s.* EXCLUDE (bare_text),
       CASE WHEN hint = 'prozorro' THEN coalesce(CASE WHEN starts_with(env[1], '{') THEN env[1]::VARCHAR END, bare_text)
            WHEN hint = 'ocds-record' AND json_type(renv[1]) = 'OBJECT' THEN renv[1]::VARCHAR END AS body,
       CASE WHEN hint = 'prozorro' THEN coalesce(TRY_CAST(env[2] AS BOOLEAN), false) END AS restricted,
       CASE WHEN hint = 'prozorro' THEN env IS NOT NULL
            WHEN hint = 'ocds-record' THEN renv IS NOT NULL
            ELSE of IS NOT NULL END AS valid
FROM stage_env s;

CREATE OR REPLACE TEMP TABLE stage_f AS
SELECT s.*,
       CASE WHEN hint = 'prozorro' AND valid THEN TRY(json_extract_string(body,
                ['$.id', '$._id', '$.tenderID', '$.contractID', '$.planID', '$.dateModified',
                 '$.monitoring_id', '$.complaintID', '$.rationaleTypes', '$.tender_id', '$.awardID',
                 '$.reasonType', '$.tenderers', '$.suppliers']))
            WHEN hint = 'ocds-record' AND valid THEN [json_extract_string(renv[2], '$'), NULL, NULL, NULL, NULL,
                json_extract_string(body, '$.date')]
            ELSE of
       END AS f
FROM stage s;
""".replace("@STRING_NUMBER@", _STRING_NUMBER)

# The first reason that applies, or NULL for a good record; skip_reason for recognised non-records.
_CLASSIFY_SQL = rf"""
CREATE OR REPLACE TEMP TABLE stage_classified AS
WITH c AS (
    SELECT s.*,
        CASE
            WHEN hint <> 'prozorro' THEN NULL
            WHEN starts_with(env[1], '[') AND env[3] IS NOT NULL THEN 'a feed page (list of ids), not a record'
            WHEN starts_with(env[1], '[') AND env[4] IS NOT NULL
                 THEN 'a page-numbered list (e.g. monitorings of a tender), not a record'
            WHEN f[7] IS NOT NULL THEN 'a State Audit monitoring object, not a tender, contract or plan'
            WHEN starts_with(env[1], '[') AND (json_extract_string(env[1], '$[0].complaintID') IS NOT NULL
                 OR json_extract_string(env[1], '$[0].rationaleTypes') IS NOT NULL)
                 THEN 'a sub-resource list (complaints, changes, ...), not a record'
            WHEN valid AND first_char = '{{' AND f[3] IS NULL AND f[4] IS NULL AND f[5] IS NULL
                 AND (f[8] IS NOT NULL OR f[9] IS NOT NULL OR f[12] IS NOT NULL OR f[13] IS NOT NULL
                      OR f[14] IS NOT NULL)
                 THEN 'a sub-resource object (complaint, cancellation, bid, award, change), not a record'
            WHEN f[4] IS NOT NULL AND f[10] IS NULL AND f[11] IS NOT NULL AND f[6] IS NULL
                 THEN 'an in-tender contract (GET /tenders/{{id}}/contracts/{{cid}}), not a contract object; '
                      || 'load the tender or GET /contracts/{{cid}}'
        END AS skip_reason
    FROM stage_f s
)
SELECT c.*,
    CASE
        WHEN error IS NOT NULL THEN error
        WHEN skip_reason IS NOT NULL THEN NULL
        WHEN NOT valid THEN 'invalid JSON'
        WHEN first_char <> '{{' THEN 'not a JSON object'
        WHEN hint = 'prozorro' AND starts_with(env[1], '[') THEN '"data" is a list, expected one tender, contract or plan object'
        WHEN hint = 'prozorro' AND f[1] IS NULL AND f[2] IS NULL THEN 'missing id'
        WHEN hint = 'prozorro' AND f[3] IS NULL AND f[4] IS NULL AND f[5] IS NULL
             THEN 'not a tender, contract or plan (no tenderID, contractID or planID)'
        WHEN hint <> 'prozorro' AND f[1] IS NULL THEN 'missing ocid'
        WHEN hint = 'ocds-release' AND f[2] IS NULL THEN 'release without id'
        WHEN hint = 'ocds-release' AND f[3] IS NULL
             THEN 'release without date (OCDS requires it; the releases of an ocid cannot be merged without it)'
        WHEN hint = 'ocds-record' AND body IS NULL AND json_extract_string(renv[3], '$[0].ocid') IS NULL
             THEN 'record has no compiledRelease and its releases are only links; cannot compile it'
        WHEN hint = 'ocds-record' AND body IS NULL
             THEN 'record has no compiledRelease and its releases are not all release objects; cannot compile it'
        WHEN string_number IS NOT NULL THEN 'a number given as a string: ' || string_number
        WHEN hint = 'prozorro' AND f[6] IS NULL THEN 'missing dateModified'
        WHEN hint IN ('prozorro', 'ocds-record')
             AND (NOT regexp_matches(f[6], '{_ISO_DATE}') OR TRY_CAST(f[6] AS TIMESTAMPTZ) IS NULL)
             THEN '{_UNREADABLE}' || f[6]
        WHEN hint IN ('prozorro', 'ocds-record') AND NOT regexp_matches(f[6], '{_HAS_ZONE}')
             THEN 'dateModified without timezone: "' || f[6] || '" (cannot tell which copy is newer)'
        WHEN hint IN ('ocds-compiled', 'ocds-release') AND f[3] IS NOT NULL
             AND (NOT regexp_matches(f[3], '{_ISO_DATE}') OR TRY_CAST(f[3] AS TIMESTAMPTZ) IS NULL)
             THEN '{_UNREADABLE_RELEASE}' || f[3]
        WHEN hint IN ('ocds-compiled', 'ocds-release') AND f[3] IS NOT NULL AND NOT regexp_matches(f[3], '{_HAS_ZONE}')
             THEN 'release date without timezone: "' || f[3] || '" (cannot tell which copy is newer)'
    END AS reason,
    CASE WHEN hint = 'prozorro' THEN
            CASE WHEN f[3] IS NOT NULL THEN 'tender' WHEN f[4] IS NOT NULL THEN 'contract' ELSE 'plan' END
         WHEN hint = 'ocds-compiled' THEN 'compiled_release'
         WHEN hint = 'ocds-record' THEN 'record'
         ELSE 'release' END AS kind,
    CASE WHEN hint = 'prozorro' THEN coalesce(f[1], f[2])
         WHEN hint = 'ocds-release' THEN f[1] || '/' || f[2]
         ELSE f[1] END AS id,
    CASE WHEN hint = 'prozorro' AND f[3] IS NOT NULL THEN 'ocds-be6bcu-' || f[3]
         WHEN hint = 'prozorro' AND f[4] IS NOT NULL THEN 'ocds-be6bcu-' || regexp_replace(f[4], '-[a-z]\d+$', '')
         WHEN hint = 'prozorro' THEN NULL
         ELSE f[1] END AS ocid,
    TRY_CAST(CASE WHEN hint IN ('prozorro', 'ocds-record') THEN f[6] ELSE f[3] END AS TIMESTAMPTZ) AS date_modified
FROM c;
"""

# Newest copy per key within the batch, compared with what is stored.
_COMPARE_SQL = """
CREATE OR REPLACE TEMP TABLE stage_good AS
SELECT seq, source, kind, id, ocid, date_modified, sha256 AS sha
FROM stage_classified
WHERE reason IS NULL AND skip_reason IS NULL
QUALIFY row_number() OVER (PARTITION BY source, kind, id ORDER BY date_modified DESC NULLS LAST, sha256 DESC) = 1;

CREATE OR REPLACE TEMP TABLE stage_cmp AS
SELECT g.*,
       CASE WHEN r.id IS NULL THEN 'new'
            WHEN r.sha256 = g.sha THEN 'unchanged'
            WHEN r.date_modified IS NOT NULL AND g.date_modified IS NULL THEN 'older'
            WHEN g.date_modified < r.date_modified THEN 'older'
            -- same date, different content: the larger hash wins, so repeated loads are stable
            WHEN g.date_modified IS NOT DISTINCT FROM r.date_modified AND g.sha < r.sha256 THEN 'older'
            ELSE 'updated' END AS outcome
FROM stage_good g
LEFT JOIN raw_records r ON r.source = g.source AND r.kind = g.kind AND r.id = g.id;
"""


def _json_error(text: str | None) -> str:
    if text is None:
        return "invalid JSON"
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return f"invalid JSON: {exc}"
    return "invalid JSON"


def _show_unreadable_date(reason: str, text: str | None) -> str:
    """The reason with the date as its JSON value: ``12345`` for a number, ``"yesterday"`` for a string.

    The SQL only has the value as text; the raw record says which JSON type it was.
    """
    prefix = _UNREADABLE if reason.startswith(_UNREADABLE) else _UNREADABLE_RELEASE
    try:
        document = orjson.loads(text) if text is not None else None
    except orjson.JSONDecodeError:
        document = None
    value: Any = None
    if isinstance(document, dict):
        if prefix == _UNREADABLE_RELEASE:
            value = document.get("date")
        elif isinstance(document.get("compiledRelease"), dict):  # an OCDS record
            value = document["compiledRelease"].get("date")
        else:  # a ProZorro object, bare or in its API envelope
            body = document["data"] if isinstance(document.get("data"), dict) else document
            value = body.get("dateModified")
    if value is None:
        return prefix + orjson.dumps(reason[len(prefix):]).decode()
    return prefix + orjson.dumps(value).decode()


def _quarantine(con: duckdb.DuckDBPyConnection, now: datetime) -> int:
    rows = con.execute(
        "SELECT c.source, c.origin, c.line, c.locator, coalesce(c.id, c.f[1]), c.reason, b.text "
        "FROM stage_classified c JOIN batch_in b USING (seq) WHERE c.reason IS NOT NULL ORDER BY seq"
    ).fetchall()
    records = []
    for source, origin, line, locator, record_id, reason, text in rows:
        if reason == "invalid JSON":
            reason = _json_error(text)
        elif reason.startswith((_UNREADABLE, _UNREADABLE_RELEASE)):
            reason = _show_unreadable_date(reason, text)
        if text is not None and len(text) > QUARANTINE_RAW_LIMIT:
            text = text[:QUARANTINE_RAW_LIMIT]
            reason += " (raw text cut to its first MiB here)"
        records.append((now, source, origin, line, locator, record_id, reason, text))
        log.warning("record quarantined", origin=origin, line=line, locator=locator, record=record_id, reason=reason)
    if records:
        con.executemany("INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?, ?, ?)", records)
    return len(records)


# The ocids whose releases must be (re)merged: a release of theirs, or a compiled release of theirs
# (alone or in a record), is new or updated. Each is merged on top of its newest compiled release, if
# any (the one ``_beats`` would pick: newest, then the kind first in PROCESS_KINDS, then larger raw key),
# with the releases after it; an ocid with no release after its compiled release is left to that.
_RELEASE_SETS_SQL = f"""
WITH touched AS (
    SELECT DISTINCT ocid FROM raw_records
    WHERE kind = 'release' AND ocid IN (SELECT ocid FROM stage_cmp WHERE outcome IN ('new', 'updated')
                                        AND kind IN ('release', 'compiled_release', 'record'))
), bases AS (
    SELECT ocid, date_modified AS base_date,
           CASE WHEN kind = 'record' THEN json_extract(json, '$.compiledRelease')::VARCHAR ELSE json END AS base
    FROM raw_records
    WHERE kind IN ('compiled_release', 'record') AND ocid IN (SELECT ocid FROM touched)
    QUALIFY row_number() OVER (PARTITION BY ocid ORDER BY date_modified DESC NULLS LAST,
                               list_position({list(PROCESS_KINDS)!r}, kind), source || ':' || kind || ':' || id DESC) = 1
)
SELECT r.source, r.ocid, any_value(b.base),
       list(r.json ORDER BY r.date_modified, r.id), max(r.date_modified), list(r.origin ORDER BY r.date_modified, r.id),
       EXISTS (SELECT 1 FROM processes p WHERE p.raw_key = r.source || ':release_set:' || r.ocid) AS is_update
FROM raw_records r LEFT JOIN bases b USING (ocid)
WHERE r.kind = 'release' AND r.ocid IN (SELECT ocid FROM touched)
  AND (b.base_date IS NULL OR r.date_modified > b.base_date)
GROUP BY r.source, r.ocid
"""


def _compile_release_sets(con: duckdb.DuckDBPyConnection, now: datetime) -> int:
    """Merge the stored releases of each ocid that got a new release, or a new compiled release, into
    one compiled release (kind ``release_set``), on top of the ocid's newest compiled release.

    A release package often carries only what changed (a contract's amendment): merged alone, it
    would replace the tender, items and awards a record package gave the process. Returns how many
    ocids could not be merged (quarantined with the merge error).
    """
    rows, failures = [], []
    for source, ocid, base, texts, newest, origins, is_update in con.execute(_RELEASE_SETS_SQL).fetchall():
        raw_key = f"{source}:release_set:{ocid}"
        try:
            compiled = compile_releases([orjson.loads(text) for text in texts],
                                        orjson.loads(base) if base is not None else None)
        except MergeError as exc:
            failures.append((now, source, origins[-1], None, None, ocid, f"releases cannot be merged: {exc}", None))
            log.warning("releases cannot be merged", ocid=ocid, reason=str(exc))
            continue
        rows.append((raw_key, source, "release_set", ocid, ocid, orjson.dumps(compiled).decode(), None, newest,
                     is_update))
    if rows:
        con.executemany(f"INSERT INTO norm_in VALUES ({', '.join('?' * 9)})", rows)
    if failures:
        con.executemany("INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?, ?, ?)", failures)
    return len(failures)


# A record that carries its releases and no compiled release (OCDS allows it) is stored as those releases.
_NULL_COMPILED = r'"compiledRelease"\s*:\s*null'


def _embedded_releases(text: str) -> list[dict[str, Any]] | None:
    """The releases of a record without compiledRelease, when they are all release objects; else None."""
    try:
        record = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict) or record.get("compiledRelease"):
        return None
    releases = record.get("releases")
    if isinstance(releases, list) and releases and all(isinstance(r, dict) and "ocid" in r for r in releases):
        return releases
    return None


def expand_embedded_records(batch: pa.Table) -> pa.Table:
    """``batch`` with each OCDS record that has no compiledRelease but embeds its releases replaced by
    those releases (hint ``ocds-release``, locator ``.../releases/N``), which are then merged with the
    ocid's other releases like any release. Files and connectors hand records over as they are; this is
    the one place that opens them. A batch without such a record is returned as it is, unread."""
    candidate = pc.and_(pc.equal(batch["hint"], "ocds-record"), pc.is_null(batch["error"]))
    if not pc.any(candidate).as_py():
        return batch
    text = batch["text"]
    no_compiled = pc.or_(pc.invert(pc.match_substring(text, '"compiledRelease"')),
                         pc.match_substring_regex(text, _NULL_COMPILED))
    wanted = pc.and_(candidate, no_compiled).to_pylist()
    if not any(wanted):
        return batch
    rows: list[dict[str, Any]] = []
    for row, expand in zip(batch.to_pylist(), wanted):
        releases = _embedded_releases(row["text"]) if expand else None
        if releases is None:
            rows.append(row)
            continue
        for index, release in enumerate(releases):
            release_text = orjson.dumps(release).decode()
            rows.append({**row, "hint": "ocds-release", "locator": f"{row['locator'] or ''}/releases/{index}",
                         "text": release_text, "sha256": hashlib.sha256(release_text.encode()).hexdigest()})
    for seq, row in enumerate(rows):
        row["seq"] = seq
    return pa.Table.from_pylist(rows, schema=BATCH_SCHEMA)


def save_cursor(con: duckdb.DuckDBPyConnection, name: str, cursor: str | None, now: datetime) -> None:
    """Upsert a connector's cursor (call inside the transaction that stores its page)."""
    con.execute(
        "INSERT INTO cursors VALUES (?, ?, ?) ON CONFLICT (source) DO UPDATE "
        "SET cursor = excluded.cursor, updated_at = excluded.updated_at",
        [name, cursor, now],
    )


def store_batch(
    con: duckdb.DuckDBPyConnection,
    batch: pa.Table,
    *,
    fetched_at: datetime | None = None,
    cursor: tuple[str, str | None] | None = None,
    also: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> BatchCounts:
    """Validate, store and normalize one batch in one transaction; return what happened.

    ``cursor`` (connector name, cursor value) is saved in the same transaction, so a page's records
    and the position after it are committed together or not at all; so is whatever ``also`` writes
    (the page's retry-queue changes).
    """
    now = fetched_at or datetime.now(timezone.utc)
    counts = BatchCounts()
    if batch.num_rows == 0:
        if cursor is not None or also is not None:
            with transaction(con):
                if also is not None:
                    also(con)
                if cursor is not None:
                    save_cursor(con, cursor[0], cursor[1], now)
        return counts
    batch = expand_embedded_records(batch)
    con.register("batch_in", batch)
    try:
        with transaction(con):
            con.execute(_STAGE_SQL)
            con.execute(_CLASSIFY_SQL)
            counts.skipped = con.execute(
                "SELECT count(*) FROM stage_classified WHERE skip_reason IS NOT NULL AND reason IS NULL"
            ).fetchone()[0]
            for origin, line, locator, why in con.execute(
                "SELECT origin, line, locator, skip_reason FROM stage_classified "
                "WHERE skip_reason IS NOT NULL AND reason IS NULL ORDER BY seq"
            ).fetchall():
                log.info("skipped", origin=origin, line=line, locator=locator, why=why)
            counts.quarantined = _quarantine(con, now)
            con.execute(_COMPARE_SQL)
            outcome = dict(con.execute("SELECT outcome, count(*) FROM stage_cmp GROUP BY outcome").fetchall())
            counts.new = outcome.get("new", 0)
            counts.updated = outcome.get("updated", 0)
            counts.older = outcome.get("older", 0)
            # copies inside the batch that lost to another copy: the same text is unchanged, another is older
            same, other = con.execute(
                "SELECT count(*) FILTER (k.sha256 = g.sha), count(*) FILTER (k.sha256 <> g.sha) "
                "FROM stage_classified k JOIN stage_good g USING (source, kind, id) "
                "WHERE k.reason IS NULL AND k.skip_reason IS NULL AND k.seq <> g.seq"
            ).fetchone()
            counts.unchanged = outcome.get("unchanged", 0) + same
            counts.older += other
            if counts.updated:
                con.execute(
                    "DELETE FROM raw_records r USING stage_cmp c "
                    "WHERE c.outcome = 'updated' AND r.source = c.source AND r.kind = c.kind AND r.id = c.id"
                )
            if counts.new or counts.updated:
                con.execute(
                    "INSERT INTO raw_records SELECT c.source, c.kind, c.id, c.ocid, c.date_modified, ?, c.sha, "
                    "CASE WHEN k.line IS NULL THEN k.origin ELSE k.origin || ':' || k.line END, b.text "
                    "FROM stage_cmp c JOIN stage_classified k USING (seq) JOIN batch_in b USING (seq) "
                    "WHERE c.outcome IN ('new', 'updated')",
                    [now],
                )
                create_norm_in(con)
                con.execute(
                    "INSERT INTO norm_in SELECT c.source || ':' || c.kind || ':' || c.id, c.source, c.kind, c.id, c.ocid, "
                    "coalesce(k.body, b.text), k.restricted, c.date_modified, c.outcome = 'updated' "
                    "FROM stage_cmp c JOIN stage_classified k USING (seq) JOIN batch_in b USING (seq) "
                    "WHERE c.outcome IN ('new', 'updated') AND c.kind <> 'release'"
                )
                counts.quarantined += _compile_release_sets(con, now)
                normalize_changed(con)
            if also is not None:
                also(con)
            if cursor is not None:
                save_cursor(con, cursor[0], cursor[1], now)
    finally:
        con.unregister("batch_in")
    return counts


__all__ = ["BATCH_SCHEMA", "BatchBuilder", "BatchCounts", "NORM_IN_COLUMNS", "save_cursor", "store_batch"]
