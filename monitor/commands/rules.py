"""``monitor rules list | check [PATH] | test [PATH]``: the rule files analysts write."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.classify.categories import DEFAULT_DIR as CATEGORY_DIR
from monitor.classify.categories import CategoryError, load_categories
from monitor.commands.flag import known_categories
from monitor.flags.examples import run_examples
from monitor.flags.rules import DEFAULT_DIR as FLAG_DIR
from monitor.flags.rules import RuleError, load_rules


@click.group()
def rules() -> None:
    """List, check and test the flag rules (rules/flags/) and category files (rules/classify/)."""


def _is_category_path(path: Path) -> bool:
    return "classify" in path.resolve().parts


@rules.command("list")
@click.option("--kind", type=click.Choice(["anomaly", "opportunity"]), help="Only rules of this kind.")
def list_rules(kind: str | None) -> None:
    """Every flag rule with its kind, severity, subject and references."""
    try:
        loaded = load_rules(known_categories=known_categories())
    except RuleError as exc:
        raise click.ClickException("rule files are invalid; run monitor rules check\n" + str(exc)) from exc
    shown = [r for r in loaded if kind is None or r.kind == kind]
    width = max((len(r.id) for r in shown), default=10)
    click.echo(f"{'id':<{width}}  {'kind':<11} {'severity':<8} {'subject':<16} references / title")
    for rule in shown:
        click.echo(f"{rule.id:<{width}}  {rule.kind:<11} {rule.severity:<8} {rule.subject:<16} "
                   f"{'; '.join(rule.references) or '-'} / {rule.title}")
    click.echo(f"({len(shown)} rule{'s' if len(shown) != 1 else ''})")


@rules.command("check")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
def check(path: Path | None) -> None:
    """Validate flag rules and category files (or only PATH); every problem as file:line: key: message, exit 2."""
    problems: list[str] = []
    summary = []
    if path is None or _is_category_path(path):
        try:
            categories = load_categories(path if path is not None else CATEGORY_DIR)
            summary.append(f"{len(categories)} category file(s) OK: {', '.join(c.id for c in categories)}")
        except CategoryError as exc:
            problems += exc.problems
    if path is None or not _is_category_path(path):
        try:
            loaded = load_rules(path if path is not None else FLAG_DIR, known_categories())
            summary.append(f"{len(loaded)} flag rule(s) OK")
        except RuleError as exc:
            problems += exc.problems
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        raise click.exceptions.Exit(2)
    click.echo("\n".join(summary))


@rules.command("test")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
def test(path: Path | None) -> None:
    """Run each rule's examples: fixtures that must and must not be flagged; exit 1 if any fails."""
    try:
        loaded = load_rules(path or FLAG_DIR, known_categories())
    except RuleError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        raise click.exceptions.Exit(2) from exc
    failures = total = 0
    for rule in loaded:
        for result in run_examples(rule):
            total += 1
            mark = "ok  " if result.passed else "FAIL"
            failures += not result.passed
            detail = result.error or (f"flagged {', '.join(result.flagged_subjects)}" if result.flagged_subjects
                                      else "nothing flagged")
            click.echo(f"{mark} {rule.id}: {result.expected} {Path(result.fixture).name} ({detail})")
    without = [r.id for r in loaded if not r.examples]
    if without:
        click.echo(f"rules without examples: {', '.join(without)}")
    click.echo(f"{total - failures} of {total} example(s) passed")
    if failures:
        raise click.exceptions.Exit(1)
