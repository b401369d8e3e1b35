"""The sources an ingest can run: ProZorro feeds and configured OCDS publishers.

Configuration (all optional; environment variables override the file)::

    [http]
    contact = "analyst@example.org"   # sent in the User-Agent so the publisher can reach you
    rate_limit = 20                   # requests/s (ProZorro publishes 140/s as its limit)
    concurrency = 8
    timeout = 30
    http2 = false                     # true needs the h2 package: procurement-monitor[http2]

    [prozorro]
    api_url = "https://public-api.prozorro.gov.ua/api/2.5"   # env MONITOR_PROZORRO_API_URL
    feeds = ["tenders", "contracts", "plans"]                # enabled feeds
    since_days = 7                                           # first run starts this far back
    page_limit = 500

    [[ocds.publishers]]
    name = "example-publisher"   # an illustration, not a checked endpoint
    url = "https://ocds.example.org/api/releases"
    package_type = "record"        # release | record
    since_param = "since"          # query parameter taking the start date, if any
    enabled = true
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from connectors.base import Connector, KnownLookup
from connectors.http import HTTP2_MISSING, HttpClient, HttpSettings, http2_available
from connectors.ocds_api import OcdsPackageApi
from connectors.prozorro import DEFAULT_API_URL, RESOURCES, ProzorroFeed, start_offset
from monitor.config import ConfigError, Settings


@dataclasses.dataclass
class SourceConfig:
    """Everything needed to build the connectors of one run."""

    http: HttpSettings
    prozorro_api_url: str
    prozorro_feeds: list[str]
    since_days: float
    page_limit: int
    publishers: list[dict[str, Any]]

    def names(self) -> list[str]:
        """Names of the enabled sources, in run order."""
        return [f"prozorro-{feed}" for feed in self.prozorro_feeds] + [
            p["name"] for p in self.publishers if p.get("enabled", True)
        ]

    def all_names(self) -> list[str]:
        return [f"prozorro-{feed}" for feed in RESOURCES] + [p["name"] for p in self.publishers]


def _table(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table")
    return value


def source_config(settings: Settings) -> SourceConfig:
    """Read ``[http]``, ``[prozorro]`` and ``[[ocds.publishers]]`` from the settings."""
    raw = settings.raw
    http_table = _table(raw, "http")
    known = {f.name for f in dataclasses.fields(HttpSettings)}
    unknown = set(http_table) - known
    if unknown:
        raise ConfigError(f"[http]: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    http = HttpSettings(**{key: _http_value(key, value) for key, value in http_table.items()})
    if http.http2 and not http2_available():
        raise ConfigError(HTTP2_MISSING)
    prozorro = _table(raw, "prozorro")
    feeds = prozorro.get("feeds", list(RESOURCES))
    bad = [f for f in feeds if f not in RESOURCES]
    if bad:
        raise ConfigError(f"[prozorro] feeds: unknown {bad}; choose from {list(RESOURCES)}")
    publishers = _table(raw, "ocds").get("publishers", [])
    for index, publisher in enumerate(publishers):
        if not isinstance(publisher, dict) or not publisher.get("name") or not publisher.get("url"):
            raise ConfigError(f"[[ocds.publishers]] #{index + 1}: needs name and url")
    api_url = os.environ.get("MONITOR_PROZORRO_API_URL") or prozorro.get("api_url", DEFAULT_API_URL)
    if not isinstance(api_url, str) or not api_url.startswith(("http://", "https://")):
        raise ConfigError(f"[prozorro] api_url (or MONITOR_PROZORRO_API_URL) must be an http(s) URL, not {api_url!r}")
    return SourceConfig(
        http=http,
        prozorro_api_url=api_url,
        prozorro_feeds=list(feeds),
        since_days=_number("[prozorro] since_days", prozorro.get("since_days", 7), minimum=0),
        page_limit=int(_number("[prozorro] page_limit", prozorro.get("page_limit", 500), minimum=1, maximum=1000,
                               whole=True)),
        publishers=list(publishers),
    )


def _number(name: str, value: Any, *, minimum: float, maximum: float | None = None, whole: bool = False,
            above: bool = False) -> float:
    """``value`` as a number in range, else a ConfigError naming the setting."""
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and not float(value).is_integer()):
        raise ConfigError(f"{name} must be {kind}, not {value!r}")
    if value < minimum or (above and value == minimum) or (maximum is not None and value > maximum):
        bounds = f"above {minimum:g}" if above else f"at least {minimum:g}"
        raise ConfigError(f"{name} must be {kind} {bounds}" + (f" and at most {maximum:g}" if maximum else "")
                          + f", not {value!r}")
    return value


def _http_value(key: str, value: Any) -> Any:
    """An ``[http]`` setting checked against its kind: text, true/false, a whole number from 1, or a number
    from 0 (above 0 for the timeouts and the rate)."""
    default = getattr(HttpSettings, key)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"[http] {key} must be true or false, not {value!r}")
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"[http] {key} must be text, not {value!r}")
        return value
    if isinstance(default, int):
        return int(_number(f"[http] {key}", value, minimum=1, whole=True))
    # a timeout or a rate of 0 would never let a request go (the run would hang); waits may be 0
    return _number(f"[http] {key}", value, minimum=0, above=key in ("timeout", "connect_timeout", "rate_limit"))


def check_names(config: SourceConfig, names: list[str]) -> None:
    """Refuse unknown source names before anything runs."""
    unknown = [name for name in names if name not in config.all_names()]
    if unknown:
        known = ', '.join(config.all_names())
        raise ConfigError(f"unknown source(s) {', '.join(map(repr, unknown))}; configured: {known}")


def build_connectors(
    config: SourceConfig,
    client: HttpClient,
    names: list[str],
    *,
    since: datetime | None,
    full: bool,
    known: KnownLookup,
    cursor_start: Callable[[str], str | None] = lambda name: None,
) -> list[Connector]:
    """Connectors for ``names``; ``since``/``full`` decide where a run without a cursor starts.

    ``cursor_start(name)`` is the configured start of the run that began the source's stored cursor
    (None: no stored cursor). A run that resumes keeps that start: paging from a NULL cursor starts
    there, and a cursor the server rejects (404) restarts there, so nothing after it can be missed.
    An explicit ``--since`` or ``--full`` starts a new chain from its own start.
    """
    start_at = None if full else (since or datetime.now(timezone.utc) - timedelta(days=config.since_days))
    resume = not full and since is None
    connectors: list[Connector] = []
    by_name = {p["name"]: p for p in config.publishers}
    for name in names:
        if name.startswith("prozorro-") and name.removeprefix("prozorro-") in RESOURCES:
            inherited = cursor_start(name) if resume else None
            start = start_offset(start_at) if inherited is None else inherited
            connectors.append(
                ProzorroFeed(
                    client,
                    name.removeprefix("prozorro-"),
                    api_url=config.prozorro_api_url,
                    start=start,
                    page_limit=config.page_limit,
                    known=known,
                )
            )
        elif name in by_name:
            publisher = by_name[name]
            inherited = cursor_start(name) if resume else None
            connectors.append(
                OcdsPackageApi(
                    client,
                    name,
                    publisher["url"],
                    package_type=publisher.get("package_type", "release"),
                    since_param=publisher.get("since_param"),
                    since=start_at,
                    # a chain whose start was not recorded restarts from the feed's beginning (no since)
                    start=None if inherited is None else (inherited or publisher["url"]),
                )
            )
        else:
            raise ConfigError(f"unknown source {name!r}; configured: {', '.join(config.all_names())}")
    return connectors
