"""README's "Writing a rule", followed as an analyst follows it: the rule file printed there, two fixtures
(tests/fixtures/writing-a-rule/, ProZorro tenders as the API gives them), ``monitor rules check`` and
``monitor rules test``. The walkthrough cannot drift from what the tool accepts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "writing-a-rule"


def _readme_rule() -> str:
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## Writing a rule\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def _monitor(cwd: Path, *args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor", "--log-format", "json", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MONITOR_AFTER_STORE": "classify"})


def _analyst_folder(tmp_path: Path) -> tuple[str, Path]:
    """rules/flags/<id>.yaml with the README's text, and its example fixtures beside it."""
    text = _readme_rule()
    rule_id = re.search(r"^id: (\S+)", text, re.MULTILINE).group(1)
    folder = tmp_path / "rules" / "flags"
    (folder / "fixtures").mkdir(parents=True)
    for fixture in FIXTURES.glob("*.json"):
        shutil.copy(fixture, folder / "fixtures")
    path = folder / f"{rule_id}.yaml"
    path.write_text(text, encoding="utf-8")
    return rule_id, path


def test_the_readme_rule_checks_clean_and_passes_its_examples(tmp_path):
    rule_id, path = _analyst_folder(tmp_path)
    check = _monitor(tmp_path, "rules", "check", path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "1 flag rule(s) OK" in check.stdout
    tested = _monitor(tmp_path, "rules", "test", path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert tested.stdout.splitlines() == [
        f"ok   {rule_id}: flagged single-bid-social.json (flagged ocds-be6bcu-UA-2026-03-02-004211-a)",
        f"ok   {rule_id}: not_flagged two-bids-social.json (nothing flagged)",
        "2 of 2 example(s) passed",
    ]
    # the results are not buried under what each example's scratch database logs; -v shows it
    assert '"level": "info"' not in tested.stderr, tested.stderr[:500]
    verbose = _monitor(tmp_path, "-v", "rules", "test", path)
    assert verbose.returncode == 0 and '"event": "schema migrated"' in verbose.stderr


def test_the_two_fixtures_differ_in_the_bids_alone(tmp_path):
    """The tender that must not be flagged is a social-service tender too, above min_value: what spares it
    is its second bid, so the example tests the rule's point and not a missing category or value."""
    _, path = _analyst_folder(tmp_path)
    db = tmp_path / "both.duckdb"
    loaded = _monitor(tmp_path, "--db", db, "load", path.parent / "fixtures")
    assert loaded.returncode == 0, loaded.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT p.tender_public_id, p.number_of_tenderers, p.procurement_method, p.value_amount, p.value_currency, "
            "list_contains(list(c.category), 'social.services') "
            "FROM processes p JOIN classifications c USING (process_key) GROUP BY ALL ORDER BY 1").fetchall()
    assert rows == [("UA-2026-03-02-004211-a", 1, "open", 480000.0, "UAH", True),
                    ("UA-2026-03-02-004215-a", 2, "open", 480000.0, "UAH", True)]
