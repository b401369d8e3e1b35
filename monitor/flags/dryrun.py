"""Every rule evaluated on an empty database of the current schema, as ``monitor flag`` evaluates it
(sandbox, shared sets, params, the columns a flag needs): what ``monitor rules check`` reports beyond
the rule files' own checks. A misspelt table or column, a function with the wrong arguments, a
missing ``subject_id`` then fails at check time, with the file and line of the query, instead of at
the first evaluation."""

from __future__ import annotations

import tempfile
from pathlib import Path

from monitor.flags.engine import run_sandboxed
from monitor.flags.rules import Rule
from monitor.rulefiles import query_line
from monitor.store import connect


def dry_run_problems(rules: list[Rule]) -> list[str]:
    """``file:line: query: message`` for each rule that fails on an empty database."""
    if not rules:
        return []
    with tempfile.TemporaryDirectory(prefix="monitor-rules-check-") as tmp:
        empty = Path(tmp) / "empty.duckdb"
        connect(empty).close()  # the schema of this version, every migration applied
        _, outcomes = run_sandboxed(empty, rules)
    paths = {rule.id: rule.path for rule in rules}
    return [f"{paths[o.rule_id]}:{query_line(paths[o.rule_id]) or 1}: query: it fails on the monitor's tables "
            f"(an empty database of this version): {o.error} - fix the query (tables and columns: README, Tables)"
            for o in outcomes if o.error]
