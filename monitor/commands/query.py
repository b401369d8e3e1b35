"""``monitor query SQL``: read-only SQL over the database for analysts and scripts."""

from __future__ import annotations

import csv
import sys
from datetime import date, datetime
from decimal import Decimal

import click
import duckdb
import orjson

from monitor.cli import BadInput, pass_app
from monitor.formulas import neutralise
from monitor.store import connect_read_only

TABLE_ROWS = 100  # rows the table format prints unless --limit says otherwise


def _json_default(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError


@click.command()
@click.argument("sql")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@click.option("--limit", type=click.IntRange(min=0), default=None, metavar="N",
              help="Print at most N rows, in any format; 0 prints every row. Default: 100 in table format "
                   "(the footer says when more exist), every row in csv and json.")
@pass_app
def query(app, sql: str, output_format: str, limit: int | None) -> None:
    """Run read-only SQL over the database (writes are refused).

    In csv, a text cell a spreadsheet would run as a formula (starting with =, +, -, @, a tab or a
    carriage return) gets a leading apostrophe, as in monitor export; json gives every text as stored.

    Example: monitor query "SELECT region, count(*) FROM processes GROUP BY ALL ORDER BY 2 DESC"
    """
    con = connect_read_only(app.settings.db_path)
    try:
        con.execute("SET enable_external_access = false")
        try:
            relation = con.execute(sql)
        except duckdb.Error as exc:
            message = str(exc)
            lowered = message.lower()
            if any(words in lowered for words in ("read-only", "external access", "file system operations")):
                raise BadInput(f"query refused: monitor query is read-only ({message.splitlines()[0]})") from exc
            raise BadInput(f"query failed: {message.splitlines()[0]}") from exc
        columns = [d[0] for d in relation.description or []]
        if output_format == "table":
            shown = TABLE_ROWS if limit is None else limit
            if shown == 0:
                rows, more = relation.fetchall(), False
            else:  # one row past the limit tells whether more exist, without counting the whole result
                rows = relation.fetchmany(shown + 1)
                rows, more = rows[:shown], len(rows) > shown
            _print_table(columns, rows, more)
            return
        rows = relation.fetchmany(limit) if limit else relation.fetchall()
    finally:
        con.close()
    if output_format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([neutralise(c) for c in columns])
        writer.writerows([neutralise(v) for v in row] for row in rows)
    else:
        click.echo(orjson.dumps([dict(zip(columns, r)) for r in rows], default=_json_default,
                                option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())


def _print_table(columns: list[str], rows: list[tuple], more: bool) -> None:
    cells = [[("" if v is None else str(v)).replace("\n", " ")[:60] for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    click.echo("  ".join("-" * w for w in widths))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)))
    plural = "s" if len(rows) != 1 else ""
    if more:
        click.echo(f"(first {len(rows)} row{plural} shown; more exist — use --limit 0 for all, or --format csv/json)")
    else:
        click.echo(f"({len(rows)} row{plural})")
