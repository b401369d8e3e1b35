"""``monitor rules list | check [PATH] | test [PATH]``: the rule files analysts write."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.classify.categories import DEFAULT_DIR as CATEGORY_DIR
from monitor.classify.categories import CategoryError, category_files, load_categories
from monitor.cli import BadInput
from monitor.commands.flag import known_categories
from monitor.flags.dryrun import dry_run_problems
from monitor.flags.examples import run_examples
from monitor.flags.rules import DEFAULT_DIR as FLAG_DIR
from monitor.flags.rules import RuleError, load_rules
from monitor.logs import side_work_quiet
from monitor.rulefiles import query_line


@click.group()
def rules() -> None:
    """List, check and test the flag rules (rules/flags/) and category files (rules/classify/)."""


def is_flag_rule_file(path: Path) -> bool:
    """A flag rule has a top-level ``query``; a category file never does. Read from the text, so a
    file with a YAML error is still told apart (and reported by the right validator)."""
    try:
        return query_line(path) is not None
    except (OSError, UnicodeDecodeError):
        return False


def _split(path: Path) -> tuple[list[Path], list[Path]]:
    """The rule files of PATH (a file, or a folder's *.yaml) as (category files, flag rules), by content."""
    files = [path] if path.is_file() else sorted(path.glob("*.yaml"))
    flags = [f for f in files if is_flag_rule_file(f)]
    return [f for f in files if f not in flags], flags


@rules.command("list")
@click.option("--kind", type=click.Choice(["anomaly", "opportunity"]), help="Only rules of this kind.")
def list_rules(kind: str | None) -> None:
    """Every flag rule with its kind, severity, subject and references; which are incremental, and which
    others are evaluated only when a process changed."""
    try:
        loaded = load_rules(known_categories=known_categories())
    except RuleError as exc:  # bad input, reported as `rules check` does: every problem, exit 2
        for problem in dict.fromkeys(exc.problems):
            click.echo(problem, err=True)
        raise BadInput("rule files are invalid (problems above); monitor rules check validates them") from exc
    shown = [r for r in loaded if kind is None or r.kind == kind]
    width = max((len(r.id) for r in shown), default=10)
    click.echo(f"{'id':<{width}}  {'kind':<11} {'severity':<8} {'subject':<16} references / title")
    for rule in shown:
        click.echo(f"{rule.id:<{width}}  {rule.kind:<11} {rule.severity:<8} {rule.subject:<16} "
                   f"{'; '.join(rule.references) or '-'} / {rule.title}")
    click.echo(f"({len(shown)} rule{'s' if len(shown) != 1 else ''})")
    uses = _shared_uses(shown)
    if uses:
        click.echo("shared sets they read (rules/flags/shared/): " + ", ".join(uses))
    incremental = [r.id for r in shown if r.incremental]
    if incremental:
        click.echo(f"incremental, evaluated on the changed processes after their first run ({len(incremental)}): "
                   + ", ".join(incremental))
    whole = [r.id for r in shown if r.data_bound and not r.incremental]
    if whole:
        click.echo(f"reading process rows alone, on every process but only when one changed ({len(whole)}): "
                   + ", ".join(whole))


def _shared_uses(loaded: list) -> list[str]:
    """'name (N rules)' for every shared set the rules read, directly or through another set."""
    counts: dict[str, int] = {}
    for rule in loaded:
        for each in rule.shared:
            counts[each.name] = counts.get(each.name, 0) + 1
    return [f"{name} ({count} rule{'s' if count != 1 else ''})" for name, count in sorted(counts.items())]


@rules.command("check")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
def check(path: Path | None) -> None:
    """Validate flag rules and category files (or only PATH: a file or a folder, wherever it is; a file
    with a top-level `query` is a flag rule, any other a category file); every problem as
    file:line: key: message, exit 2. Valid flag rules are then evaluated on an empty database of the
    current schema, so a misspelt table or column is found here, not at the first evaluation."""
    problems: list[str] = []
    summary = []
    if path is None:
        category_paths, flag_paths = CATEGORY_DIR, [FLAG_DIR]
    else:
        category_paths, flag_paths = _split(path)
        if not category_paths and not flag_paths:
            problems.append(f"{path}: no rule files (*.yaml)")
    if category_paths:
        # a file checked on its own may name a shipped category as its parent
        shipped = {p.stem for p in category_files(CATEGORY_DIR)} if path is not None else set()
        try:
            categories = load_categories(category_paths, known_parents=shipped)
            summary.append(f"{len(categories)} category file(s) OK: {', '.join(c.id for c in categories)}")
        except CategoryError as exc:
            problems += exc.problems
    if flag_paths:
        # a whole folder of flag rules is loaded as one; flag rules picked out of a mixed folder one by one
        targets = [path] if path is not None and path.is_dir() and not category_paths else flag_paths
        loaded = []
        for target in targets:
            try:
                loaded += load_rules(target, known_categories())
            except RuleError as exc:
                problems += exc.problems
        with side_work_quiet("CRITICAL"):  # the empty database's log; a rule's failure is one of the problems
            problems += dry_run_problems(loaded)
        uses = _shared_uses(loaded)
        summary.append(f"{len(loaded)} flag rule(s) OK" + (f", reading shared sets {', '.join(uses)}" if uses else ""))
    for problem in dict.fromkeys(problems):  # a bad shared set is found again by every rule file read alone
        click.echo(problem, err=True)
    if problems:
        raise click.exceptions.Exit(2)
    click.echo("\n".join(summary))


@rules.command("test")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
def test(path: Path | None) -> None:
    """Run each rule's examples: fixtures that must and must not be flagged; exit 1 if any fails.

    Each fixture is loaded alone into a scratch database; what that database logs (migrations,
    classification, evaluation) shows with -v only, warnings and errors always."""
    try:
        loaded = load_rules(path or FLAG_DIR, known_categories())
    except RuleError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        raise click.exceptions.Exit(2) from exc
    failures = total = 0
    for rule in loaded:
        with side_work_quiet():  # each example's scratch database logs its migrations, classification and flags
            results = run_examples(rule)
        for result in results:
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
