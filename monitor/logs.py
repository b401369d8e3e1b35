"""structlog set-up: readable lines on a terminal, JSON lines under cron (``--log-format``)."""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Iterator

import structlog


# -q / -v: quiet shows warnings and errors only (and no progress bars), verbose adds debug lines
_LEVELS = {-1: "WARNING", 0: "INFO", 1: "DEBUG"}
_state = {"format": "auto", "verbosity": 0}


def set_verbosity(verbosity: int) -> None:
    """Apply -q (-1) or -v (1) after the fact, keeping the log format chosen earlier."""
    _state["verbosity"] = max(-1, min(1, verbosity))
    configure_logging(_state["format"], _LEVELS[_state["verbosity"]])


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def terminal_safe(text: str) -> str:
    """Untrusted text (titles, names) for a terminal line: control characters, escape sequences
    included, become a space."""
    return _CONTROL.sub(" ", text)


@contextlib.contextmanager
def side_work_quiet(level: str = "WARNING") -> Iterator[None]:
    """Within it, only lines from ``level`` up are shown: for work done on the side of what a command reports,
    such as the scratch databases of ``monitor rules test`` (their migrations, classification and evaluation
    would bury the results). With -v every line is."""
    if _state["verbosity"] >= 1:
        yield
        return
    configure_logging(_state["format"], level)
    try:
        yield
    finally:
        configure_logging(_state["format"], _LEVELS[_state["verbosity"]])


def reset_verbosity() -> None:
    _state["verbosity"] = 0


def verbosity() -> int:
    return _state["verbosity"]


def show_progress() -> bool:
    """Progress bars only on a terminal, and not with -q."""
    return sys.stderr.isatty() and _state["verbosity"] >= 0


def configure_logging(log_format: str = "auto", level: str | None = None) -> None:
    """Log to stderr; ``auto`` means console on a terminal, JSON otherwise."""
    _state["format"] = log_format
    level = level or _LEVELS[_state["verbosity"]]
    if log_format == "auto":
        log_format = "console" if sys.stderr.isatty() else "json"
    renderer: structlog.typing.Processor
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
