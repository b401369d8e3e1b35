"""The shared HTTP client (connectors/http.py): retry policy, errors, counters, User-Agent, limits.

Every request is served by respx; nothing touches the network. Retries never sleep for real: the
settings put the floor and the backoff at 0, and the tests about the floor and the cap record the
delays tenacity asks ``asyncio.sleep`` for instead of sleeping them.
"""

from __future__ import annotations

import asyncio
import email.utils
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from tenacity import RetryCallState

from connectors.http import (
    HttpClient,
    HttpError,
    HttpSettings,
    NotFound,
    _Retryable,
    parse_retry_after,
)
from monitor import __version__

API = "https://public-api.prozorro.gov.ua/api/2.5"
TENDER_ID = "fa2e9cbf88314cb6ae4f240dacbb041f"
URL = f"{API}/tenders/{TENDER_ID}"
OK_BODY = {"data": {"id": TENDER_ID, "dateModified": "2027-01-01T00:00:00+02:00"}, "config": {}}

NO_WAIT = {"retry_after_floor": 0.0, "backoff_initial": 0.0, "backoff_max": 0.0}


def settings(**overrides: Any) -> HttpSettings:
    """Settings that never wait between attempts and do not rate-limit a handful of requests."""
    return HttpSettings(**{**NO_WAIT, "rate_limit": 1000.0, "max_attempts": 4, **overrides})


def ok(body: Any = OK_BODY) -> httpx.Response:
    return httpx.Response(200, json=body)


def prozorro_error(status: int, description: str) -> httpx.Response:
    return httpx.Response(status, json={"status": "error", "errors": [
        {"location": "url", "name": "tender_id", "description": description}]})


async def _get(http: HttpSettings, url: str = URL, params: dict | None = None) -> tuple[Any, HttpClient]:
    """(result or the raised exception, the closed client with its counters)."""
    client = HttpClient(http)
    try:
        try:
            result: Any = await client.get_json(url, params=params)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            result = exc
    finally:
        await client.aclose()
    return result, client


def get(http: HttpSettings, url: str = URL, params: dict | None = None) -> tuple[Any, HttpClient]:
    return asyncio.run(_get(http, url, params))


@pytest.fixture
def mock():
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Delays requested from asyncio.sleep (tenacity's sleep), returned at once instead of slept."""
    delays: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float, *args: Any, **kwargs: Any) -> Any:
        delays.append(delay)
        return await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return delays


def _state_after(exc: BaseException, attempt: int = 1) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    try:
        raise exc
    except BaseException:  # noqa: BLE001
        state.set_exception(sys.exc_info())  # type: ignore[arg-type]
    return state


# --- Retry-After: floor, cap, HTTP date ------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(0.0, 0.5), (0.1, 0.5), (0.5, 0.5), (7.0, 7.0), (120.0, 120.0), (3600.0, 120.0), (1e9, 120.0)],
)
def test_wait_clamps_retry_after_between_floor_and_cap(retry_after: float, expected: float) -> None:
    client = HttpClient(HttpSettings(retry_after_floor=0.5, retry_after_cap=120.0))
    try:
        wait = client._wait(_state_after(_Retryable("HTTP 429", retry_after)))
    finally:
        asyncio.run(client.aclose())
    assert wait == pytest.approx(expected)


def test_wait_without_retry_after_is_bounded_backoff() -> None:
    client = HttpClient(HttpSettings(backoff_initial=0.5, backoff_max=3.0, retry_after_floor=10.0))
    try:
        waits = [client._wait(_state_after(_Retryable("HTTP 503"), attempt)) for attempt in range(1, 12)]
        transport = client._wait(_state_after(httpx.ConnectError("refused"), 5))
    finally:
        asyncio.run(client.aclose())
    # exponential with jitter, never above backoff_max; the Retry-After floor does not apply
    assert all(0.0 <= w <= 3.0 for w in waits), waits
    assert waits[0] < 10.0 and 0.0 <= transport <= 3.0
    assert waits[-1] == pytest.approx(3.0)  # 0.5 * 2**10 is far beyond the cap


def test_429_retry_after_zero_is_retried_after_the_floor(mock, sleeps) -> None:
    route = mock.get(URL).mock(side_effect=[httpx.Response(429, headers={"Retry-After": "0"}), ok()])
    result, client = get(settings(retry_after_floor=0.5, retry_after_cap=120.0, backoff_initial=5.0))
    assert result == (OK_BODY, route.calls.last.response.text)
    assert route.call_count == 2
    assert sleeps == [pytest.approx(0.5)]  # not a hot loop: Retry-After 0 waits the floor
    assert client.retries == 1 and client.requests == 2


def test_429_retry_after_huge_waits_the_cap(mock, sleeps) -> None:
    route = mock.get(URL).mock(side_effect=[httpx.Response(429, headers={"Retry-After": "3600"}), ok()])
    result, client = get(settings(retry_after_floor=0.5, retry_after_cap=2.0))
    assert result[0] == OK_BODY
    assert route.call_count == 2 and client.retries == 1
    assert sleeps == [pytest.approx(2.0)]


def test_429_retry_after_in_range_is_honoured(mock, sleeps) -> None:
    mock.get(URL).mock(side_effect=[httpx.Response(429, headers={"Retry-After": "7"}), ok()])
    result, _ = get(settings(retry_after_floor=0.5, retry_after_cap=120.0))
    assert result[0] == OK_BODY
    assert sleeps == [pytest.approx(7.0)]


def test_429_retry_after_as_http_date(mock, sleeps) -> None:
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    mock.get(URL).mock(side_effect=[httpx.Response(429, headers={"Retry-After": when}), ok()])
    result, client = get(settings(retry_after_floor=0.5, retry_after_cap=120.0))
    assert result[0] == OK_BODY
    assert len(sleeps) == 1 and 27.0 <= sleeps[0] <= 30.5, sleeps
    assert client.retries == 1


def test_429_retry_after_http_date_in_the_past_waits_the_floor(mock, sleeps) -> None:
    when = email.utils.format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    mock.get(URL).mock(side_effect=[httpx.Response(429, headers={"Retry-After": when}), ok()])
    result, _ = get(settings(retry_after_floor=0.5, retry_after_cap=120.0))
    assert result[0] == OK_BODY
    assert sleeps == [pytest.approx(0.5)]


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after(" 120 ") == 120.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    future = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 57.0 <= parse_retry_after(future) <= 60.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


# --- what is retried -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried_then_succeed(mock, status: int) -> None:
    route = mock.get(URL).mock(side_effect=[
        prozorro_error(status, "Service Unavailable"), httpx.Response(status, text="<html>gateway</html>"), ok()])
    result, client = get(settings())
    assert result[0] == OK_BODY
    assert route.call_count == 3
    assert client.requests == 3 and client.retries == 2
    assert client.statuses[status] == 2 and client.statuses[200] == 1


def test_412_is_retried_and_the_cookie_it_sets_is_sent_back(mock) -> None:
    route = mock.get(URL).mock(side_effect=[
        httpx.Response(412, headers={"Set-Cookie": "SERVER_ID=7f3a9c2e1b; Path=/"},
                       json={"status": "error", "errors": [{"description": "Precondition Failed"}]}),
        ok(),
    ])
    result, client = get(settings())
    assert result[0] == OK_BODY
    assert route.call_count == 2 and client.retries == 1
    first, second = (call.request for call in route.calls)
    assert "SERVER_ID" not in first.headers.get("Cookie", "")
    assert "SERVER_ID=7f3a9c2e1b" in second.headers.get("Cookie", "")


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ConnectTimeout("timed out"),
        httpx.ReadTimeout("The read operation timed out"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.ReadError("[Errno 104] Connection reset by peer"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transport_errors_are_retried(mock, error: Exception) -> None:
    route = mock.get(URL).mock(side_effect=[error, error, ok()])
    result, client = get(settings())
    assert result[0] == OK_BODY
    assert route.call_count == 3
    assert client.requests == 3 and client.retries == 2


@pytest.mark.parametrize(
    "bad",
    [
        httpx.Response(200, content=b'{"data": {"id": "fa2e9cbf88314cb6ae4f240dacbb041f", "dateMod',
                       headers={"Content-Type": "application/json"}),
        httpx.Response(200, content=b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                       headers={"Content-Type": "text/html"}),
        httpx.Response(200, content=b"", headers={"Content-Type": "application/json"}),
    ],
    ids=["truncated-json", "html", "empty"],
)
def test_200_with_a_body_that_is_not_json_is_retried(mock, bad: httpx.Response) -> None:
    route = mock.get(URL).mock(side_effect=[bad, ok()])
    result, client = get(settings())
    assert result[0] == OK_BODY
    assert route.call_count == 2 and client.retries == 1


# --- what is not retried ---------------------------------------------------------------------------


def test_404_raises_not_found_without_retry(mock, sleeps) -> None:
    route = mock.get(URL).mock(return_value=prozorro_error(404, "Not Found"))
    result, client = get(settings())
    assert isinstance(result, NotFound)
    assert result.status == 404
    assert result.url == URL and URL in str(result)
    assert "Not Found" in result.reason
    assert route.call_count == 1
    assert client.requests == 1 and client.retries == 0
    assert sleeps == []


@pytest.mark.parametrize("status", [400, 403, 410, 422])
def test_other_4xx_raise_http_error_without_retry(mock, sleeps, status: int) -> None:
    route = mock.get(URL).mock(return_value=prozorro_error(status, "Invalid value"))
    result, client = get(settings())
    assert isinstance(result, HttpError) and not isinstance(result, NotFound)
    assert result.status == status
    assert f"HTTP {status}" in result.reason and "Invalid value" in result.reason
    assert URL in str(result)
    assert route.call_count == 1 and client.retries == 0
    assert sleeps == []


# --- giving up -------------------------------------------------------------------------------------


def test_gives_up_after_max_attempts_naming_url_and_last_reason(mock) -> None:
    route = mock.get(URL).mock(side_effect=[
        httpx.Response(500), httpx.Response(502), httpx.Response(503)])
    result, client = get(settings(max_attempts=3))
    assert isinstance(result, HttpError) and not isinstance(result, NotFound)
    assert result.url == URL and URL in str(result)
    assert "HTTP 503" in result.reason  # the last reason, not the first
    assert "3 attempts" in result.reason
    assert route.call_count == 3
    assert client.requests == 3 and client.retries == 2


def test_gives_up_on_a_transport_error_as_http_error(mock) -> None:
    route = mock.get(URL).mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
    result, client = get(settings(max_attempts=2))
    assert isinstance(result, HttpError)
    assert not isinstance(result, httpx.HTTPError)
    assert result.url == URL
    assert "Connection refused" in result.reason
    assert route.call_count == 2 and client.retries == 1


def test_gives_up_on_a_body_that_is_never_json(mock) -> None:
    route = mock.get(URL).mock(return_value=httpx.Response(200, content=b'{"data": {"id": "fa2e9c',
                                                            headers={"Content-Type": "application/json"}))
    result, client = get(settings(max_attempts=3))
    assert isinstance(result, HttpError) and result.url == URL
    assert "not JSON" in result.reason
    assert route.call_count == 3 and client.requests == 3 and client.retries == 2


# --- counters, headers -----------------------------------------------------------------------------


def test_requests_and_retries_count_across_calls(mock) -> None:
    other = f"{API}/tenders/94cd95f5e2034cdf9695a0f556b7cbb4"
    mock.get(URL).mock(side_effect=[httpx.Response(503), httpx.ReadTimeout("slow"), ok(), ok()])
    mock.get(other).mock(return_value=prozorro_error(404, "Not Found"))

    async def run() -> HttpClient:
        async with HttpClient(settings()) as client:
            await client.get_json(URL)
            with pytest.raises(NotFound):
                await client.get_json(other)
            await client.get_json(URL)
        return client

    client = asyncio.run(run())
    # 3 attempts for the first GET (503, timeout, 200), 1 for the 404, 1 for the last GET
    assert client.requests == 5
    assert client.retries == 2
    assert client.statuses == {503: 1, 200: 2, 404: 1}  # the timeout has no status


def test_query_params_are_sent(mock) -> None:
    route = mock.get(f"{API}/tenders").mock(return_value=ok({"data": [], "next_page": {"offset": ""}}))
    result, _ = get(settings(), f"{API}/tenders", {"offset": "2021-03-16T00:00:00+02:00", "limit": 100})
    assert result[0]["data"] == []
    params = route.calls.last.request.url.params
    assert params["offset"] == "2021-03-16T00:00:00+02:00"  # the '+' arrives as '+', not as a space
    assert params["limit"] == "100"


def test_user_agent_names_the_tool_and_the_contact(mock) -> None:
    route = mock.get(URL).mock(return_value=ok())
    get(settings(contact="analyst@example.org"))
    headers = route.calls.last.request.headers
    agent = headers["User-Agent"]
    assert agent.startswith(f"procurement-monitor/{__version__} ")
    assert "analyst@example.org" in agent
    assert headers["Accept"] == "application/json"


# --- rate limit and concurrency --------------------------------------------------------------------


@pytest.fixture(scope="module")
def rate_limited_arrivals() -> list[float]:
    """Arrival times (s since the first) of 40 requests sent at once with rate_limit=20."""
    arrivals: list[float] = []
    with respx.mock(assert_all_mocked=True) as router:
        def handler(request: httpx.Request) -> httpx.Response:
            arrivals.append(time.monotonic())
            return ok()

        router.get(URL).mock(side_effect=handler)

        async def run() -> None:
            async with HttpClient(settings(rate_limit=20.0, concurrency=40)) as client:
                await asyncio.gather(*(client.get_json(URL) for _ in range(40)))

        asyncio.run(run())
    return [t - arrivals[0] for t in arrivals]


def test_rate_limit_sustained_rate(rate_limited_arrivals: list[float]) -> None:
    arrivals = rate_limited_arrivals
    assert len(arrivals) == 40
    # beyond any initial allowance, 20 more requests need about a second at 20/s
    assert arrivals[-1] - arrivals[19] >= 0.9, arrivals
    assert arrivals[-1] >= 0.9


def test_rate_limit_caps_requests_in_any_one_second(rate_limited_arrivals: list[float]) -> None:
    """rate_limit is 'requests per second': no one-second window may hold more than 20 (+1 for
    timer rounding). 40 requests at 20/s then take about 1.95 s (>= 1.5 s)."""
    arrivals = rate_limited_arrivals
    busiest = max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals)
    assert busiest <= 21, f"{busiest} requests within one second at rate_limit=20"
    assert arrivals[-1] >= 1.5, f"40 requests took only {arrivals[-1]:.2f} s at rate_limit=20"


def test_concurrency_never_exceeds_the_configured_number_in_flight(mock) -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return ok()

    route = mock.get(URL).mock(side_effect=handler)

    async def run() -> HttpClient:
        async with HttpClient(settings(concurrency=3)) as client:
            await asyncio.gather(*(client.get_json(URL) for _ in range(15)))
        return client

    client = asyncio.run(run())
    assert route.call_count == 15 and client.requests == 15
    assert peak == 3  # requests do overlap, but never more than 3 at once
