"""Every rule's examples, as `monitor rules test` runs them: fixtures that must and must not be flagged."""

from __future__ import annotations

import pytest

from monitor.flags.examples import run_examples
from monitor.flags.rules import load_rules

RULES = load_rules()


def test_every_rule_has_examples_that_fire_and_do_not():
    for rule in RULES:
        kinds = {"flagged" if "flagged" in e else "not_flagged" for e in rule.examples}
        assert kinds == {"flagged", "not_flagged"}, f"{rule.id} needs a flagged and a not_flagged example"


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_examples(rule):
    for result in run_examples(rule):
        assert result.passed, (f"{rule.id}: expected {result.expected} for {result.fixture}, "
                               f"got {result.flagged_subjects or result.error or 'nothing flagged'}")
