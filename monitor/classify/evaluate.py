"""Measure the classifier on a labelled set: per-category precision, recall and the errors behind them.

The labelled set is a CSV (``tests/fixtures/classify/labelled.csv``): one row per mini-process with
a title and/or one item (description, cpv, inn, atc), the buyer kind, and the expected categories
separated by ``;``.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import polars as pl

from monitor.classify.categories import Category
from monitor.classify.engine import classify


@dataclasses.dataclass
class CategoryScore:
    category: str
    true_positives: int
    false_positives: int
    false_negatives: int
    errors: list[str]  # "FP L123: text" / "FN L045: text"

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        expected = self.true_positives + self.false_negatives
        return self.true_positives / expected if expected else 1.0


def _empty_to_none(value: str) -> str | None:
    return value.strip() or None


def read_labelled(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def evaluate(rows: list[dict[str, str]], categories: list[Category]) -> list[CategoryScore]:
    """Classify every labelled row and compare with its expected categories."""
    processes = pl.DataFrame({
        "ocid": [r["id"] for r in rows],
        "title": [_empty_to_none(r["title"]) for r in rows],
        "description": [None] * len(rows),
        "buyer_kind": [_empty_to_none(r["buyer_kind"]) for r in rows],
    }, schema={"ocid": pl.String, "title": pl.String, "description": pl.String, "buyer_kind": pl.String})
    with_item = [r for r in rows if r["item"].strip() or r["cpv"].strip() or r["inn"].strip() or r["atc"].strip()]
    items = pl.DataFrame({
        "ocid": [r["id"] for r in with_item],
        "cpv": [_empty_to_none(r["cpv"]) for r in with_item],
        "description": [_empty_to_none(r["item"]) for r in with_item],
        "inn": [_empty_to_none(r["inn"]) for r in with_item],
        "atc": [_empty_to_none(r["atc"]) for r in with_item],
    }, schema={"ocid": pl.String, "cpv": pl.String, "description": pl.String, "inn": pl.String, "atc": pl.String})
    result = classify(processes, items, categories)
    got: dict[str, set[str]] = {}
    for ocid, category in result.select("ocid", "category").iter_rows():
        got.setdefault(ocid, set()).add(category)
    scores = []
    for category in sorted(c.id for c in categories):
        tp = fp = fn = 0
        errors = []
        for row in rows:
            expected = category in {c.strip() for c in row["expected"].split(";") if c.strip()}
            found = category in got.get(row["id"], set())
            text = " | ".join(x for x in (row["title"], row["item"], row["cpv"], row["inn"], row["atc"]) if x)
            if expected and found:
                tp += 1
            elif found:
                fp += 1
                errors.append(f"FP {row['id']}: {text}")
            elif expected:
                fn += 1
                errors.append(f"FN {row['id']}: {text}")
        scores.append(CategoryScore(category, tp, fp, fn, errors))
    return scores
