"""Quality measured, not assumed: per-category precision and recall on the labelled set.

The set (tests/fixtures/classify/labelled.csv, 542 rows in uk/ru/en/ky, every trap of the taxonomy)
was written independently of the rules; the rules were then tuned on it, so these figures are
training-set figures: a held-out set is the next step (README, "Defining categories").
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.classify.categories import load_categories
from monitor.classify.evaluate import evaluate, read_labelled

LABELLED = Path(__file__).resolve().parent / "fixtures" / "classify" / "labelled.csv"
MIN_POSITIVES = 12  # labelled rows expecting each category; check_labelled.py enforces the same minimum


@pytest.fixture(scope="module")
def scores():
    return {s.category: s for s in evaluate(read_labelled(LABELLED), load_categories())}


def test_labelled_set_is_valid_and_large_enough():
    completed = subprocess.run([sys.executable, str(LABELLED.parent / "check_labelled.py")],
                               capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    rows = read_labelled(LABELLED)
    assert len(rows) >= 300
    assert sum(1 for r in rows if not r["expected"].strip()) >= 100  # traps and unrelated purchases


def test_every_category_is_measured(scores):
    assert set(scores) == {c.id for c in load_categories()}
    too_few = {c: s.true_positives + s.false_negatives for c, s in scores.items()
               if s.true_positives + s.false_negatives < MIN_POSITIVES}
    assert not too_few, f"categories with fewer than {MIN_POSITIVES} labelled positives: {too_few}"


@pytest.mark.parametrize("category", sorted(c.id for c in load_categories()))
def test_precision_and_recall_per_category(scores, category):
    score = scores[category]
    detail = "\n".join(score.errors)
    assert score.precision >= 0.95, f"{category}: precision {score.precision:.3f}\n{detail}"
    assert score.recall >= 0.90, f"{category}: recall {score.recall:.3f}\n{detail}"
