"""Run the ``examples`` of rule files: fixtures that must, and must not, be flagged by their rule."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import duckdb

from monitor.classify.run import classify_changed
from monitor.flags.engine import evaluate
from monitor.flags.rules import Rule
from monitor.loading.files import FileResult, ReadOptions, find_files, read_file
from monitor.store import connect
from monitor.store.records import store_batch


@dataclasses.dataclass
class ExampleResult:
    rule_id: str
    fixture: str
    expected: str  # flagged | not_flagged
    flagged_subjects: list[str]
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.flagged_subjects) == (self.expected == "flagged")


def load_into(db_path: Path, paths: list[Path]) -> None:
    """Load fixture files into a fresh database and classify them, as ``monitor load`` would."""
    con = connect(db_path)
    try:
        for path in find_files([str(p) for p in paths]):
            for batch in read_file(path, ReadOptions(), FileResult(str(path))):
                store_batch(con, batch)
        classify_changed(con)
    finally:
        con.close()


def run_examples(rule: Rule) -> list[ExampleResult]:
    """Each example of ``rule`` loaded alone into a scratch database and evaluated."""
    results = []
    for example in rule.examples:
        expected = "flagged" if "flagged" in example else "not_flagged"
        fixture = rule.path.parent / example[expected]
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "example.duckdb"
            try:
                load_into(db, [fixture])
                outcome = evaluate(db, [rule], overrides={rule.id: example.get("params", {})})
                if outcome.failed:
                    results.append(ExampleResult(rule.id, str(fixture), expected, [], outcome.failed[0].error))
                    continue
                with duckdb.connect(str(db), read_only=True) as con:
                    subjects = [s for (s,) in con.execute(
                        "SELECT subject_id FROM flags WHERE rule_id = ? AND resolved_at IS NULL ORDER BY 1",
                        [rule.id]).fetchall()]
            except Exception as exc:  # a broken fixture is a failed example, reported with its reason
                results.append(ExampleResult(rule.id, str(fixture), expected, [], f"{type(exc).__name__}: {exc}"))
                continue
        results.append(ExampleResult(rule.id, str(fixture), expected, subjects))
    return results
