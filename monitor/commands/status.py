"""``monitor status``: schema version, row counts, open flags, change log, cursors, last runs, quarantine,
retry queue."""

from __future__ import annotations

from typing import Any

import click
import orjson

from monitor.classify.categories import CategoryError, load_categories
from monitor.cli import pass_app
from monitor.store import connect_read_only, latest_schema_version
from monitor.store.changes import latest_batch
from monitor.store.db import current_schema_version


def collect_status(con) -> dict[str, Any]:
    """Everything ``monitor status`` shows, as plain data."""
    tables = {name for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
              for t in sorted(tables) if t != "schema_migrations"}
    raw_by_source = [
        {"source": s, "kind": k, "records": n, "newest": d.isoformat() if d else None}
        for s, k, n, d in con.execute(
            "SELECT source, kind, count(*), max(date_modified) FROM raw_records GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    ]
    cursors = [
        {"source": s, "cursor": c, "updated_at": u.isoformat()}
        for s, c, u in con.execute("SELECT source, cursor, updated_at FROM cursors ORDER BY source").fetchall()
    ]
    runs = [
        {
            "run_id": r,
            "command": c,
            "started_at": s.isoformat(),
            "finished_at": f.isoformat() if f else None,
            "status": st,
            "counts": orjson.loads(n) if n else None,
            "error": e,
        }
        for r, c, s, f, st, n, e in con.execute(
            "SELECT run_id, command, started_at, finished_at, status, counts, error "
            "FROM runs ORDER BY run_id DESC LIMIT 5"
        ).fetchall()
    ]
    retry_queue = [
        {"feed": feed, "url": url, "failures": failures, "first_failed_at": first.isoformat(),
         "last_error": error, "deferred": deferred}
        for feed, url, failures, first, error, deferred in con.execute(
            "SELECT feed, url, failures, first_failed_at, last_error, deferred FROM fetch_retries "
            "ORDER BY first_failed_at, feed, id LIMIT 20"
        ).fetchall()
    ] if "fetch_retries" in tables else []
    quarantine_reasons = [
        {"reason": reason, "records": n}
        for reason, n in con.execute(
            "SELECT regexp_replace(reason, ':.*', '') AS reason, count(*) FROM quarantine "
            "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10"
        ).fetchall()
    ]
    names = _category_names() if "classifications" in tables else {}
    categories = [
        {"category": cat, "name": names.get(cat), "processes": n, "value": value, "currency": currency}
        for cat, n, value, currency in con.execute(
            """
            SELECT c.category, count(DISTINCT c.ocid), round(sum(p.value_amount), 2), p.value_currency
            FROM classifications c JOIN processes p USING (ocid)
            WHERE NOT p.is_masked AND NOT p.is_test
            GROUP BY ALL ORDER BY c.category, p.value_currency NULLS LAST
            """
        ).fetchall()
    ] if "classifications" in tables else []
    open_flags = [
        {"rule_id": rule, "kind": kind, "severity": severity, "open": n, "new_last_7_days": recent}
        for rule, kind, severity, n, recent in con.execute(
            """
            SELECT rule_id, kind, severity, count(*),
                   count(*) FILTER (WHERE first_seen >= now() - INTERVAL 7 DAY)
            FROM flags WHERE resolved_at IS NULL GROUP BY rule_id, kind, severity
            ORDER BY CASE severity WHEN 'high' THEN 0 WHEN 'medium' THEN 1 WHEN 'low' THEN 2 ELSE 3 END, rule_id
            """
        ).fetchall()
    ] if "flags" in tables else []
    failed_rules = [
        {"rule_id": rule, "error": error}
        for rule, error in con.execute(
            "SELECT rule_id, arg_max(error, evaluated_at) FROM rule_runs GROUP BY rule_id "
            "HAVING arg_max(status, evaluated_at) = 'failed' ORDER BY rule_id"
        ).fetchall()
    ] if "rule_runs" in tables else []
    return {
        "schema_version": current_schema_version(con),
        "change_log": _change_log(con) if "flag_watermarks" in tables else None,
        "categories": categories,
        "open_flags": open_flags,
        "failed_rules": failed_rules,
        "latest_schema_version": latest_schema_version(),
        "tables": counts,
        "raw_records_by_source": raw_by_source,
        "cursors": cursors,
        "last_runs": runs,
        "quarantine": {"records": counts.get("quarantine", 0), "by_reason": quarantine_reasons},
        "retry_queue": {"objects": counts.get("fetch_retries", 0), "oldest": retry_queue},
    }


def _change_log(con) -> dict[str, Any]:
    """The processes logged as changed and not yet seen by every rule with a watermark, and the rule that
    saw the least (a rule left behind keeps the log from being pruned)."""
    processes, batches = con.execute(
        "SELECT count(DISTINCT ocid), count(DISTINCT change_seq) FROM process_changes").fetchall()[0]
    oldest = con.execute("SELECT rule_id, change_seq, evaluated_at FROM flag_watermarks "
                         "ORDER BY change_seq, rule_id LIMIT 1").fetchall()
    return {
        "processes": processes, "batches": batches, "latest_batch": latest_batch(con),  # also when the log was pruned
        "watermarks": con.execute("SELECT count(*) FROM flag_watermarks").fetchall()[0][0],
        "oldest_watermark": {"rule_id": oldest[0][0], "batch": oldest[0][1], "evaluated_at": oldest[0][2].isoformat()}
        if oldest else None,
    }


def _category_names() -> dict[str, str]:
    """Readable category names (the ``name`` of each category file); none when the files are invalid
    (``monitor rules check`` says why) or missing."""
    try:
        return {c.id: c.name for c in load_categories()}
    except (CategoryError, OSError):
        return {}


def _render_text(info: dict[str, Any], db_path) -> str:
    lines = [f"database        {db_path}", f"schema version  {info['schema_version']}", "", "tables"]
    lines += [f"  {name:<18}{count:>12,}" for name, count in info["tables"].items()]
    if info["raw_records_by_source"]:
        lines += ["", "raw records by source"]
        lines += [
            f"  {r['source']:<12}{r['kind']:<18}{r['records']:>10,}  newest {r['newest'] or '-'}"
            for r in info["raw_records_by_source"]
        ]
    lines += ["", "processes and value per category (masked and test processes excluded)"]
    lines += [
        f"  {c['category']:<30}{c['processes']:>9,}  {c['value'] or 0:>20,.2f} {c['currency'] or '':<4}"
        + (f"  {c['name']}" if c.get("name") else "")
        for c in info["categories"]
    ] or ["  (nothing classified yet)"]
    lines += ["", "open flags by rule (new in the last 7 days)"]
    lines += [
        f"  {f['severity']:<7}{f['kind']:<12}{f['rule_id']:<52}{f['open']:>9,}  ({f['new_last_7_days']:,} new)"
        for f in info["open_flags"]
    ] or ["  (none)"]
    lines += [f"  FAILED at the last run: {f['rule_id']}: {f['error']}" for f in info["failed_rules"]]
    log = info["change_log"]
    if log is not None:
        lines += ["", f"change log      {log['processes']:,} changed process(es) in {log['batches']:,} batch(es) not yet "
                  f"seen by every rule; {log['watermarks']:,} rule(s) with a watermark"]
        if log["oldest_watermark"]:
            mark = log["oldest_watermark"]
            lines += [f"  oldest: {mark['rule_id']} at batch {mark['batch']:,} (evaluated {mark['evaluated_at']})"]
    lines += ["", "cursors"]
    lines += [f"  {c['source']:<22}{c['cursor'] if c['cursor'] is not None else '(start of the feed)'}  "
              f"({c['updated_at']})" for c in info["cursors"]] or ["  (none yet)"]
    lines += ["", "last runs"]
    lines += [
        f"  #{r['run_id']:<5}{r['command']:<10}{r['status']:<12}{r['started_at']}  "
        + ", ".join(f"{k} {v}" for k, v in (r["counts"] or {}).items())
        for r in info["last_runs"]
    ] or ["  (none yet)"]
    lines += ["", f"quarantine      {info['quarantine']['records']:,} record(s)"]
    lines += [f"  {q['records']:>8,}  {q['reason']}" for q in info["quarantine"]["by_reason"]]
    queue = info["retry_queue"]
    lines += ["", f"retry queue     {queue['objects']:,} object(s) the server failed to give, fetched again "
              "at each ingest"]
    lines += [f"  {q['feed']:<20}{q['url']}  {q['failures']} failed run(s) since {q['first_failed_at']}"
              f"{'' if q['deferred'] else ' (not yet passed)'}: {q['last_error']}" for q in queue["oldest"]]
    return "\n".join(lines)


@click.command()
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@pass_app
def status(app, output_format: str) -> None:
    """Show schema version, row counts per table, cursors, last runs, quarantine and the retry queue."""
    con = connect_read_only(app.settings.db_path)
    try:
        info = collect_status(con)
    finally:
        con.close()
    if output_format == "json":
        click.echo(orjson.dumps(info, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(_render_text(info, app.settings.db_path))
