"""``monitor flag [--rule ID ...]``: evaluate the flag rules (normally run by load and ingest)."""

from __future__ import annotations

from datetime import datetime

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from monitor.classify.categories import category_files
from monitor.cli import BadInput, pass_app
from monitor.config import Settings, parse_datetime
from monitor.logs import show_progress
from monitor.flags.engine import Evaluation, evaluate
from monitor.flags.rules import RuleError, load_rules


def known_categories() -> set[str]:
    """The ids of the category files (each file's id is its name; the files themselves are checked by
    the classification step and ``monitor rules check``), which a rule's scope may name."""
    return {path.stem for path in category_files()}


def evaluate_rules(settings: Settings, rule_ids: list[str] | None = None,
                   as_of: datetime | None = None, full: bool = False) -> Evaluation:
    """Load, validate and evaluate the rules (all, or ``rule_ids``) on the database of ``settings``, within
    its memory limit and threads, with ``as_of`` (default the configured clock); incremental rules on the
    processes changed since their last evaluation unless ``full``. Invalid rule files are bad input."""
    try:
        rules = load_rules(known_categories=known_categories())
    except RuleError as exc:
        raise BadInput("rule files are invalid, no flags evaluated (the data is stored):\n" + str(exc)) from exc
    if rule_ids:
        unknown = sorted(set(rule_ids) - {r.id for r in rules})
        if unknown:
            raise BadInput(f"unknown rule(s) {', '.join(unknown)}; see monitor rules list")
        rules = [r for r in rules if r.id in rule_ids]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), disable=not show_progress(), transient=True) as progress:
        task = progress.add_task("flag rules", total=len(rules))
        return evaluate(settings.db_path, rules, memory_limit=settings.memory_limit, threads=settings.threads,
                        as_of=as_of or settings.as_of, full=full, all_rules=not rule_ids,
                        on_rule=lambda outcome: progress.update(task, advance=1, description=outcome.rule_id))


@click.command()
@click.option("--rule", "rule_ids", multiple=True, metavar="ID", help="Evaluate only this rule (repeatable).")
@click.option("--as-of", "as_of", metavar="DATE",
              help="The clock the rules read as $as_of (open deadlines, 'last 12 months'); default now, "
                   "or MONITOR_AS_OF / [flags] as_of.")
@click.option("--full", is_flag=True,
              help="Evaluate every rule on every process: incremental ones not only on the processes changed since "
                   "their last evaluation, and rules nothing changed for too.")
@pass_app
def flag(app, rule_ids: tuple[str, ...], as_of: str | None, full: bool) -> None:
    """Evaluate the rules in rules/flags/ and update the flags table (new, changed, resolved).

    Rules marked incremental are evaluated on the processes changed since their last evaluation (all of
    them the first time, after a change of the rule, or with --full); the others on the whole database.
    A rule reading process rows alone (no clock, plans or organizations) is not evaluated again while no
    process changed (unless --full): its flags stand.
    """
    try:
        clock = parse_datetime(as_of) if as_of else app.settings.as_of
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--as-of") from exc
    result = evaluate_rules(app.settings, list(rule_ids), clock, full)
    for outcome in result.failed:
        click.echo(f"rule {outcome.rule_id} failed: {outcome.error}", err=True)
    incremental = sum(o.changed_only for o in result.outcomes)
    scope = (f" ({incremental} incremental on the {result.changed_processes:,} changed process(es))"
             if incremental else "")
    unchanged = (f", {len(result.unchanged)} not evaluated (no process changed since their last evaluation)"
                 if result.unchanged else "")
    click.echo(f"{len(result.outcomes) - len(result.unchanged)} rule(s) evaluated{scope}{unchanged}, "
               f"{len(result.failed)} failed: {result.new} new, "
               f"{result.changed} changed, {result.resolved} resolved, {result.open} open flags")
    if result.failed:
        raise click.exceptions.Exit(1)
