"""The one HTTP client every connector uses: timeouts, keep-alive, User-Agent, rate and
concurrency limits, and one retry policy.

Retried: 429 (waiting ``Retry-After`` clamped between a floor and a cap, so ``Retry-After: 0`` is
not a hot loop), 412 (the server sets a session cookie; the client's cookie jar sends it back),
5xx, connect/read/write timeouts, connection resets and other transport errors, and 200 responses
whose body is truncated or not JSON. Not retried: other 4xx (404 raises ``NotFound``). httpx's
own transport retries only connection attempts; everything else is tenacity's job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import importlib.util
import random
import time
from collections import Counter
from typing import Any

import httpx
import orjson
import structlog
from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from monitor import __version__

log = structlog.get_logger(__name__)

# 412 (the SERVER_ID cookie), 429 and every server error but 501 (not implemented: asking again will not help)
RETRY_STATUSES = frozenset({412, 429, *range(500, 600)}) - {501}


@dataclasses.dataclass
class HttpSettings:
    """Politeness and robustness knobs, from ``[http]`` in the config file."""

    contact: str = "no contact configured"
    timeout: float = 30.0
    connect_timeout: float = 10.0
    rate_limit: float = 20.0  # requests per second; ProZorro publishes 140/s as its limit
    concurrency: int = 8
    http2: bool = False
    max_attempts: int = 8
    backoff_initial: float = 0.5
    backoff_max: float = 60.0
    retry_after_floor: float = 0.5
    retry_after_cap: float = 120.0

    @property
    def user_agent(self) -> str:
        return f"procurement-monitor/{__version__} (NGO procurement monitoring; contact: {self.contact})"


HTTP2_MISSING = ("[http] http2 = true needs the h2 package, which is not installed: "
                 "pip install 'procurement-monitor[http2]', or set http2 = false")


def http2_available() -> bool:
    """Whether httpx can speak HTTP/2 here (the optional ``h2`` package is installed)."""
    return importlib.util.find_spec("h2") is not None


class HttpError(Exception):
    """A request that failed: with a status that is not retried, or a body that was never JSON, or
    (``exhausted``) every retry of a server fault, rate limit or network error failed, which says nothing
    about the object and may pass."""

    def __init__(self, url: str, reason: str, status: int | None = None, exhausted: bool = False) -> None:
        super().__init__(f"{reason} ({url})")
        self.url, self.reason, self.status, self.exhausted = url, reason, status, exhausted


class NotFound(HttpError):
    """404: unknown object, or an offset the server does not accept."""


class _Retryable(Exception):
    """A response worth trying again; ``retry_after`` in seconds when the server said so. ``of_the_server``:
    a status that says the server could not answer (not a body that could not be read)."""

    def __init__(self, reason: str, retry_after: float | None = None, of_the_server: bool = True) -> None:
        super().__init__(reason)
        self.retry_after, self.of_the_server = retry_after, of_the_server


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, (_Retryable, httpx.TimeoutException, httpx.TransportError))


class HttpClient:
    """Async JSON GETs with rate limit, bounded concurrency and retries; counts what it did."""

    def __init__(self, settings: HttpSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        timeout = httpx.Timeout(settings.timeout, connect=settings.connect_timeout)
        limits = httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency)
        self._client = httpx.AsyncClient(
            timeout=timeout,
            limits=limits,
            headers={"User-Agent": settings.user_agent, "Accept": "application/json"},
            http2=settings.http2,
            transport=transport,
            follow_redirects=True,
        )
        # one request per 1/rate s: no burst of rate_limit requests in the first second
        self._limiter = AsyncLimiter(1, 1.0 / settings.rate_limit)
        self._slots = asyncio.Semaphore(settings.concurrency)
        self.requests = 0
        self.retries = 0
        self.statuses: Counter[int] = Counter()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(max(exc.retry_after, self.settings.retry_after_floor), self.settings.retry_after_cap)
        exponential = self.settings.backoff_initial * 2 ** (state.attempt_number - 1)
        return min(self.settings.backoff_max, exponential + random.uniform(0, self.settings.backoff_initial))

    def _before_sleep(self, state: RetryCallState) -> None:
        self.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        log.debug("retrying", attempt=state.attempt_number, error=str(exc) or type(exc).__name__,
                  wait=round(state.next_action.sleep, 2) if state.next_action else None)

    async def _attempt(self, url: str, params: dict[str, Any] | None) -> tuple[Any, str]:
        async with self._slots:
            await self._limiter.acquire()
            self.requests += 1
            response = await self._client.get(url, params=params)
        self.statuses[response.status_code] += 1
        status = response.status_code
        if status in RETRY_STATUSES:
            raise _Retryable(f"HTTP {status}", parse_retry_after(response.headers.get("Retry-After")))
        if status == 404:
            raise NotFound(str(response.url), "HTTP 404 " + _error_text(response), status)
        if status >= 400:
            raise HttpError(str(response.url), f"HTTP {status} " + _error_text(response), status)
        try:
            parsed = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            kind = response.headers.get("Content-Type", "?")
            raise _Retryable(f"body is not JSON ({kind}, {len(response.content)} bytes): {exc}",
                             of_the_server=False) from exc
        return parsed, response.content.decode("utf-8", errors="replace")

    async def get_json(self, url: str, params: dict[str, Any] | None = None) -> tuple[Any, str]:
        """GET ``url`` and return (parsed JSON, body text), retrying per the policy.

        Raises ``NotFound`` for 404 and ``HttpError`` for other failures, including exhausted retries.
        """
        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_retryable),
            wait=self._wait,
            stop=stop_after_attempt(self.settings.max_attempts),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(url, params)
        except _Retryable as exc:
            raise HttpError(url, f"gave up after {self.settings.max_attempts} attempts: {exc}",
                            exhausted=exc.of_the_server) from exc
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            reason = str(exc) or type(exc).__name__
            raise HttpError(url, f"gave up after {self.settings.max_attempts} attempts: {reason}",
                            exhausted=True) from exc
        raise AssertionError("unreachable")  # pragma: no cover


def _error_text(response: httpx.Response) -> str:
    """The description of a ProZorro JSON error, or the start of the body."""
    try:
        errors = orjson.loads(response.content).get("errors") or []
        return "; ".join(str(e.get("description", e)) for e in errors)[:300]
    except (orjson.JSONDecodeError, AttributeError):
        return response.text[:200]
