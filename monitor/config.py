"""Settings from an optional TOML file, environment variables and command-line options.

Precedence: command-line option > environment variable > config file > default. Every setting
works without a config file.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

DEFAULT_DB = "data/monitor.duckdb"
DEFAULT_CONFIG_FILES = ("monitor.toml",)


class ConfigError(Exception):
    """The config file is missing, unreadable or has a wrong value."""


@dataclasses.dataclass
class Settings:
    db_path: Path = Path(DEFAULT_DB)
    memory_limit: str | None = "2GB"
    threads: int | None = None
    max_record_mb: float = 8.0
    batch_rows: int = 50_000
    # what load and ingest run after storing: classify, flag (both by default); a bulk backfill can
    # skip the flags and run `monitor flag` once at the end
    after_store: tuple[str, ...] = ("classify", "flag")
    # the clock the flag rules read as $as_of (deadlines, "last 12 months"); None = now. Pinned for
    # replays of old data and for the demo's sample, whose world stands still at its snapshot date
    as_of: datetime | None = None
    config_path: Path | None = None
    raw: dict[str, Any] = dataclasses.field(default_factory=dict)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc


def _section(data: dict[str, Any], name: str, path: Path | None) -> dict[str, Any]:
    section = data.get(name, {})
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [{name}] must be a table")
    return section


def load_settings(config_path: str | None = None, db_option: str | None = None) -> Settings:
    """Resolve the settings for this run."""
    path: Path | None = Path(config_path) if config_path else None
    if path is None:
        env_config = os.environ.get("MONITOR_CONFIG")
        if env_config:
            path = Path(env_config)
        else:
            path = next((Path(p) for p in DEFAULT_CONFIG_FILES if Path(p).is_file()), None)
    data = _read_toml(path) if path else {}
    store = _section(data, "store", path)
    load = _section(data, "load", path)
    settings = Settings(config_path=path, raw=data)
    db = db_option or os.environ.get("MONITOR_DB") or store.get("path") or DEFAULT_DB
    settings.db_path = Path(db)
    settings.memory_limit = store.get("memory_limit", settings.memory_limit)
    settings.threads = store.get("threads", settings.threads)
    pipeline = _section(data, "pipeline", path)
    steps = os.environ.get("MONITOR_AFTER_STORE")
    steps = [s.strip() for s in steps.split(",") if s.strip()] if steps is not None else \
        pipeline.get("after_store", list(settings.after_store))
    unknown = [s for s in steps if s not in ("classify", "flag", "none")]
    if unknown:
        raise ConfigError(f"[pipeline] after_store / MONITOR_AFTER_STORE: unknown step(s) {unknown}; "
                          "use classify, flag or none")
    settings.after_store = tuple(s for s in steps if s != "none")
    try:
        settings.max_record_mb = float(load.get("max_record_mb", settings.max_record_mb))
        settings.batch_rows = int(load.get("batch_rows", settings.batch_rows))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config file {path}: [load] {exc}") from exc
    flags = _section(data, "flags", path)
    as_of = os.environ.get("MONITOR_AS_OF") or flags.get("as_of")
    if as_of:
        try:
            settings.as_of = parse_datetime(str(as_of))
        except ValueError as exc:
            raise ConfigError(f"MONITOR_AS_OF / [flags] as_of: {exc}") from exc
    return settings


def parse_datetime(text: str) -> datetime:
    """An ISO date or date-time (the clock, --since, export periods); a date means its start, a time
    without offset means UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date or date-time such as 2026-11-20 or 2026-11-20T09:00+02:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
