"""``monitor rules ...``: validate the rule files analysts write."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.classify.categories import DEFAULT_DIR, CategoryError, load_categories


@click.group()
def rules() -> None:
    """Check the category files (rules/classify/)."""


@rules.command("check")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
def check(path: Path | None) -> None:
    """Validate category files (a file or folder; default rules/classify/); exit 2 on any problem.

    Every problem is listed as file:line: key: message.
    """
    try:
        categories = load_categories(path or DEFAULT_DIR)
    except CategoryError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        raise click.exceptions.Exit(2) from exc
    click.echo(f"{len(categories)} category file(s) OK: {', '.join(c.id for c in categories)}")
