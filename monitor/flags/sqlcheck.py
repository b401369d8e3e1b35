"""The check every query a rule file holds must pass before it runs: one read-only SELECT reading no files."""

from __future__ import annotations

import re

import duckdb

# Functions that reach outside the database. The sandbox (read-only, external access disabled)
# refuses them at run time as well; naming them here gives the rule author an error at check time.
_FILE_FUNCTIONS = re.compile(
    r"\b(read_(csv|csv_auto|json|json_auto|json_objects|ndjson|parquet|text|blob|xlsx)|parquet_scan|glob|"
    r"sniff_csv|iceberg_scan|delta_scan|sqlite_scan|postgres_scan|mysql_scan|query_table|getenv)\s*\(",
    re.IGNORECASE)


def check_sql(sql: str) -> str | None:
    """None when ``sql`` is a single read-only SELECT reading no files, else what is wrong and the fix."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        return f"the SQL does not parse: {str(exc).splitlines()[0]}"
    if len(statements) != 1:
        return f"the query must be exactly one SELECT statement, found {len(statements)}; remove the others"
    if statements[0].type != duckdb.StatementType.SELECT:
        return (f"the query must be a read-only SELECT, not {statements[0].type.name}; rules cannot write, "
                "COPY, ATTACH or INSTALL")
    found = _FILE_FUNCTIONS.search(sql)
    if found:
        return (f"the query calls {found.group(1)}(): rules read only the monitor's tables; load outside data "
                "with monitor load instead")
    return None
