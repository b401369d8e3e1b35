"""-q and -v, before or after the command name: quiet keeps warnings and errors, verbose adds debug lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "plan-complete.json"


def _run(db: Path, before: list[str], command: list[str]) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "monitor", *before, "--log-format", "json", "--db", str(db), *command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MONITOR_AFTER_STORE": "classify"})


def test_quiet_on_either_side_of_the_command_keeps_results_and_drops_info_lines(tmp_path):
    normal = _run(tmp_path / "a.duckdb", [], ["load", str(SAMPLE)])
    assert normal.returncode == 0 and '"level": "info"' in normal.stderr
    for before, command in ((["-q"], ["load", str(SAMPLE)]), ([], ["load", "-q", str(SAMPLE)])):
        result = _run(tmp_path / f"q{len(before)}.duckdb", before, command)
        assert result.returncode == 0, result.stderr
        assert '"level": "info"' not in result.stderr
        assert "loaded 1 file(s): 1 new" in result.stdout  # the result still goes to stdout


def test_verbose_adds_the_debug_lines(tmp_path):
    db = tmp_path / "v.duckdb"
    assert '"level": "debug"' not in _run(db, [], ["flag"]).stderr
    verbose = _run(db, [], ["flag", "-v"]).stderr
    assert '"level": "debug"' in verbose and '"event": "rule evaluated"' in verbose
