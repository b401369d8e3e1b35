"""``monitor classify [--full]``: categories for the processes that changed (normally run by load/ingest)."""

from __future__ import annotations

import click

from monitor.classify.categories import CategoryError
from monitor.classify.run import classify_changed
from monitor.cli import BadInput, pass_app
from monitor.runs import finish_run, start_run
from monitor.store import connect


@click.command()
@click.option("--full", is_flag=True, help="Re-classify every process (automatic when a category file changed).")
@pass_app
def classify(app, full: bool) -> None:
    """Classify processes into health, social and programme categories (rules/classify/*.yaml)."""
    con = connect(app.settings.db_path, memory_limit=app.settings.memory_limit, threads=app.settings.threads)
    run_id = start_run(con, "classify", "classify --full" if full else "classify")
    try:
        result = classify_changed(con, full=full)
    except CategoryError as exc:
        finish_run(con, run_id, "failed", error=str(exc))
        con.close()
        raise BadInput(str(exc)) from exc
    except BaseException as exc:
        finish_run(con, run_id, "failed", error=str(exc))
        con.close()
        raise
    finish_run(con, run_id, "complete", {"processes": result.processes, "classifications": result.classifications,
                                         "plans": result.plans, "plan_classifications": result.plan_classifications,
                                         "full": result.full, "seconds": result.seconds})
    con.close()
    click.echo(f"classified {result.processes} process(es) and {result.plans} plan(s): "
               f"{result.classifications + result.plan_classifications} categories assigned"
               f"{' (full)' if result.full else ''} in {result.seconds:.1f} s")
