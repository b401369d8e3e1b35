"""The ``monitor`` command: global options, exit codes, and the command groups.

Exit codes (DESIGN.md): 0 fine, 1 failed, 2 bad usage or bad input, 3 another run holds the lock.
Each command lives in its own module under ``monitor.commands``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import click
import structlog

from monitor import __version__
from monitor.config import ConfigError, Settings, load_settings
from monitor.logs import configure_logging, reset_verbosity, set_verbosity
from monitor.store import DatabaseBusy, SchemaTooNewError, StoreError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_LOCKED = 0, 1, 2, 3


class BadInput(click.ClickException):
    """Bad usage or input: exit code 2 with the message."""

    exit_code = EXIT_BAD_INPUT


@dataclass
class AppContext:
    settings: Settings
    log_format: str


pass_app = click.make_pass_decorator(AppContext)


class _LazyGroup(click.Group):
    """The command group. A command's module (``monitor.commands.<name>``) is imported when the command
    is used or listed by --help, so ``monitor flag`` does not pay for the exporter's or the scheduler's
    imports."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _COMMANDS and cmd_name not in self.commands:
            command = getattr(importlib.import_module(f"monitor.commands.{cmd_name}"), cmd_name)
            _add_verbosity(command)
            self.add_command(command)
        return self.commands.get(cmd_name)


_COMMANDS = ("load", "ingest", "nightly", "classify", "flag", "rules", "report", "export", "schedule", "demo",
             "status", "query")


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--db", "db", metavar="PATH", help="DuckDB file [env MONITOR_DB; default data/monitor.duckdb].")
@click.option("--config", "config", metavar="PATH", help="TOML config file [env MONITOR_CONFIG; default ./monitor.toml].")
@click.option(
    "--log-format",
    type=click.Choice(["auto", "console", "json"]),
    default="auto",
    show_default=True,
    help="Log lines on stderr: console on a terminal, JSON otherwise (auto).",
)
@click.version_option(__version__, prog_name="monitor")
@click.pass_context
def cli(ctx: click.Context, db: str | None, config: str | None, log_format: str) -> None:
    """Procurement Monitor: public procurement (ProZorro, OCDS) for NGO budget analysts."""
    configure_logging(log_format)
    try:
        settings = load_settings(config, db)
    except ConfigError as exc:
        raise BadInput(str(exc)) from exc
    ctx.obj = AppContext(settings=settings, log_format=log_format)


def _verbosity(ctx: click.Context, param: click.Parameter, value: int | bool) -> None:
    if value:
        set_verbosity(-1 if param.name == "quiet" else 1)


def _verbosity_options() -> list[click.Option]:
    return [
        click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, is_eager=True, callback=_verbosity,
                     help="Only warnings and errors; no progress bars."),
        click.Option(["-v", "--verbose"], is_flag=True, expose_value=False, is_eager=True, callback=_verbosity,
                     help="Debug log lines too."),
    ]


def _add_verbosity(command: click.Command) -> None:
    """-q/-v on the group and on every command, so both `monitor -q nightly` and `monitor nightly -q` work."""
    command.params.extend(_verbosity_options())
    for sub in getattr(command, "commands", {}).values():
        _add_verbosity(sub)


_add_verbosity(cli)  # the commands get theirs when they are loaded


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the CLI and map errors to exit codes."""
    reset_verbosity()  # -q/-v apply to this invocation only (tests and the demo call main() repeatedly)
    try:
        returned = cli.main(args=argv, prog_name="monitor", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return EXIT_FAILED
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except DatabaseBusy as exc:  # another process writes the database (or reads it, for a writing command)
        click.echo(f"Error: {exc}", err=True)
        return EXIT_LOCKED
    except (SchemaTooNewError, StoreError) as exc:
        click.echo(f"Error: {exc}", err=True)
        return EXIT_BAD_INPUT
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # the last line of defence: log it with its traceback, exit 1
        structlog.get_logger("monitor").exception("command failed", error=str(exc))
        return EXIT_FAILED
    # standalone_mode=False hands back the code of a click.exceptions.Exit raised by a command
    return returned if isinstance(returned, int) else EXIT_OK

