"""Print the classifier's confusion table on the labelled set (precision/recall per category).

    python bench/classify_eval.py            # table
    python bench/classify_eval.py --errors   # and every false positive / false negative
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from monitor.classify.categories import load_categories  # noqa: E402
from monitor.classify.evaluate import evaluate, read_labelled  # noqa: E402

LABELLED = HERE.parent / "tests" / "fixtures" / "classify" / "labelled.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--errors", action="store_true", help="list the misclassified rows")
    parser.add_argument("--labelled", type=Path, default=LABELLED)
    args = parser.parse_args()
    rows = read_labelled(args.labelled)
    scores = evaluate(rows, load_categories())
    print(f"{len(rows)} labelled rows ({args.labelled.name})")
    print(f"{'category':<30}{'TP':>5}{'FP':>5}{'FN':>5}{'precision':>11}{'recall':>8}")
    for s in scores:
        flag = "" if s.precision >= 0.95 and s.recall >= 0.90 else "   <- below target (P 0.95 / R 0.90)"
        print(f"{s.category:<30}{s.true_positives:>5}{s.false_positives:>5}{s.false_negatives:>5}"
              f"{s.precision:>11.3f}{s.recall:>8.3f}{flag}")
    precision = min(scores, key=lambda s: s.precision)
    recall = min(scores, key=lambda s: s.recall)
    print(f"lowest precision {precision.precision:.3f} ({precision.category}), "
          f"lowest recall {recall.recall:.3f} ({recall.category})")
    if args.errors:
        for s in scores:
            for error in s.errors:
                print(f"{s.category}: {error}")


if __name__ == "__main__":
    main()
