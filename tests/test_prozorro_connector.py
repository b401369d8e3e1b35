"""ProzorroFeed.pages (connectors/prozorro.py): offsets, end of feed, skipping known objects,
unfetchable objects, 404 on an offset, concurrent object GETs.

A fake ProZorro API is served by respx; feed pages follow the real envelope (fixtures/prozorro/
feed-*.json, docs/prozorro-api.md §4) and real tenders come from fixtures/prozorro-real.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from conftest import LIFT_REPAIR, MICROSCOPES, PROZORRO, body, read_json

from connectors.base import Page
from connectors.http import HttpClient, HttpError, HttpSettings, NotFound
from connectors.prozorro import DEFAULT_API_URL, FeedError, ProzorroFeed, start_offset

API = DEFAULT_API_URL
FEED = f"{API}/tenders"

FEED_PAGE = read_json(PROZORRO / "feed-tenders-page.json")  # current offset form
FLOAT_PAGE = read_json(PROZORRO / "feed-plans-page-legacy-float-offset.json")  # offset is a JSON number
ISO_PAGE = read_json(PROZORRO / "feed-plans-page-legacy-isodate-offset.json")  # offset is an ISO date
EMPTY_INITIAL = read_json(PROZORRO / "feed-tenders-page-empty-initial.json")
AUDIT_FLOAT_PAGE = read_json(PROZORRO / "feed-monitorings-page-next.json")  # offset 1762253991.54

CURRENT_OFFSET = FEED_PAGE["next_page"]["offset"]
ISO_OFFSET = ISO_PAGE["next_page"]["offset"]


def settings(**overrides: Any) -> HttpSettings:
    return HttpSettings(**{"retry_after_floor": 0.0, "backoff_initial": 0.0, "backoff_max": 0.0,
                           "rate_limit": 1000.0, "max_attempts": 3, **overrides})


def envelope(document: dict[str, Any]) -> dict[str, Any]:
    return {"data": document, "config": {}}


def stub(object_id: str, date_modified: str) -> dict[str, Any]:
    return envelope({"id": object_id, "dateModified": date_modified, "status": "active.tendering"})


def empty_page(offset: str) -> dict[str, Any]:
    return {"data": [], "next_page": {"offset": offset, "path": f"/api/2.5/tenders?offset={offset}"}}


class FakeApi:
    """A feed keyed by the offset parameter (None: no offset) and objects keyed by id."""

    def __init__(self, router: respx.Router, feed: dict[str | None, Any], objects: dict[str, Any] | None = None,
                 delay: float = 0.0, resource: str = "tenders") -> None:
        self.feed, self.objects, self.delay = feed, dict(objects or {}), delay
        self.url = f"{API}/{resource}"
        self.object_url = re.compile(re.escape(self.url) + r"/(?P<id>[0-9a-f]{32})$")
        self.offsets: list[str | None] = []
        self.feed_params: list[dict[str, str]] = []
        self.fetched: list[str] = []
        self.in_flight = self.peak = 0
        router.get(self.url).mock(side_effect=self._feed)
        router.get(url__regex=self.object_url.pattern).mock(side_effect=self._object)

    def _feed(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        self.feed_params.append(params)
        offset = params.get("offset")
        self.offsets.append(offset)
        if offset not in self.feed:
            return httpx.Response(404, json={"status": "error", "errors": [
                {"location": "querystring", "name": "offset", "description": "Invalid offset provided"}]})
        page = self.feed[offset]
        return page if isinstance(page, httpx.Response) else httpx.Response(200, json=page)

    async def _object(self, request: httpx.Request, **groups: str) -> httpx.Response:
        object_id = self.object_url.match(str(request.url)).group("id")
        self.fetched.append(object_id)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        answer = self.objects.get(object_id)
        if callable(answer):  # a different answer on each request
            answer = answer()
        if answer is None:
            return httpx.Response(404, json={"status": "error", "errors": [{"description": "Not Found"}]})
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)


@pytest.fixture
def mock():
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


def collect(feed_factory, cursor: str | None = None, **http: Any) -> list[Page] | Exception:
    """All pages of ``feed_factory(client).pages(cursor)``; the exception if paging raised."""

    async def run() -> list[Page] | Exception:
        pages: list[Page] = []
        async with HttpClient(settings(**http)) as client:
            try:
                async for page in feed_factory(client).pages(cursor):
                    pages.append(page)
            except Exception as exc:  # noqa: BLE001
                exc.pages = pages  # type: ignore[attr-defined]
                return exc
        return pages

    return asyncio.run(run())


def listing(*ids_and_dates: tuple[str, str], offset: Any) -> dict[str, Any]:
    return {"data": [{"id": i, "dateModified": d} for i, d in ids_and_dates],
            "next_page": {"offset": offset, "path": f"/api/2.5/tenders?offset={offset}"}}


# --- offsets ---------------------------------------------------------------------------------------


def test_start_offset() -> None:
    assert start_offset(None) == ""
    since = datetime(2026, 11, 1, tzinfo=UTC)
    assert start_offset(since) == "1793491200.0"
    assert float(start_offset(since)) == since.timestamp()


def test_pages_through_offsets_exactly_as_given(mock) -> None:
    """Current, legacy float, audit float and legacy ISO offsets are sent back verbatim."""
    ids = [item["id"] for page in (FEED_PAGE, FLOAT_PAGE, AUDIT_FLOAT_PAGE, ISO_PAGE) for item in page["data"]]
    objects = {i: stub(i, "2027-01-01T00:00:00+02:00") for i in ids}
    feed = {
        None: FEED_PAGE,                                   # -> "1798754400.0.2.75109e…"
        CURRENT_OFFSET: FLOAT_PAGE,                        # -> 1696888800.0 (a JSON number)
        "1696888800.0": AUDIT_FLOAT_PAGE,                  # -> 1762253991.54
        "1762253991.54": ISO_PAGE,                         # -> "2021-03-16T00:00:00+02:00"
        ISO_OFFSET: empty_page(ISO_OFFSET),
    }
    api = FakeApi(mock, feed, objects)
    pages = collect(lambda c: ProzorroFeed(c, "tenders", start="", page_limit=50))
    assert not isinstance(pages, Exception), pages
    assert api.offsets == [None, CURRENT_OFFSET, "1696888800.0", "1762253991.54", "2021-03-16T00:00:00+02:00"]
    assert "offset" not in api.feed_params[0]  # offset "" is not sent at all
    assert all(p["limit"] == "50" for p in api.feed_params)
    assert [p.cursor for p in pages] == [CURRENT_OFFSET, "1696888800.0", "1762253991.54", ISO_OFFSET, ISO_OFFSET]
    assert [p.end for p in pages] == [False, False, False, False, True]
    assert [p.listed for p in pages] == [2, 1, 2, 1, 0]
    assert [len(p.records) for p in pages] == [2, 1, 2, 1, 0]
    assert pages[0].records[0].url == f"{FEED}/{ids[0]}"
    assert all(r.error is None and r.hint == "prozorro" for p in pages for r in p.records)
    assert sorted(api.fetched) == sorted(ids)  # every listed object fetched exactly once


def test_records_carry_the_body_as_received(mock) -> None:
    tender = body(read_json(MICROSCOPES))
    raw = json.dumps(envelope(tender), ensure_ascii=False)
    feed = {None: listing((tender["id"], tender["dateModified"]), offset="1658577804.83.1.ab"),
            "1658577804.83.1.ab": empty_page("1658577804.83.1.ab")}
    FakeApi(mock, feed, {tender["id"]: httpx.Response(200, text=raw, headers={"Content-Type": "application/json"})})
    pages = collect(lambda c: ProzorroFeed(c, "tenders"))
    record = pages[0].records[0]
    assert record.url == f"{FEED}/{tender['id']}"
    assert record.error is None and record.text == raw


def test_first_request_starts_from_a_since_offset(mock) -> None:
    start = start_offset(datetime(2026, 11, 1, tzinfo=UTC))
    api = FakeApi(mock, {start: empty_page(start)})
    pages = collect(lambda c: ProzorroFeed(c, "tenders", start=start))
    assert api.offsets == ["1793491200.0"]
    assert len(pages) == 1 and pages[0].end and pages[0].cursor == "1793491200.0" and pages[0].records == []


def test_a_cursor_wins_over_the_start(mock) -> None:
    api = FakeApi(mock, {CURRENT_OFFSET: empty_page(CURRENT_OFFSET)})
    pages = collect(lambda c: ProzorroFeed(c, "tenders", start="1793491200.0"), cursor=CURRENT_OFFSET)
    assert api.offsets == [CURRENT_OFFSET]
    assert pages[-1].cursor == CURRENT_OFFSET and pages[-1].end


def test_empty_feed_from_the_beginning(mock) -> None:
    api = FakeApi(mock, {None: EMPTY_INITIAL})
    pages = collect(lambda c: ProzorroFeed(c, "tenders"))
    assert api.offsets == [None]
    assert len(pages) == 1
    assert pages[0].end and pages[0].records == [] and pages[0].cursor is None
    assert api.fetched == []


def test_empty_page_ends_paging_with_the_cursor_unchanged(mock) -> None:
    """docs §4: data == [] is the end; next_page.offset echoes the offset sent."""
    api = FakeApi(mock, {"1696888800.0": empty_page("1696888800.0")}, resource="plans")
    pages = collect(lambda c: ProzorroFeed(c, "plans"), cursor="1696888800.0")
    assert api.offsets == ["1696888800.0"]
    assert [(p.cursor, p.end, p.listed) for p in pages] == [("1696888800.0", True, 0)]


# --- skipping known objects ------------------------------------------------------------------------


def test_known_objects_are_not_fetched(mock) -> None:
    a, b = FEED_PAGE["data"][0], FEED_PAGE["data"][1]
    calls: list[tuple[str, list[tuple[str, str]]]] = []

    def known(kind: str, listed: list[tuple[str, str]]) -> set[str]:
        calls.append((kind, listed))
        return {a["id"]}

    feed = {None: FEED_PAGE, CURRENT_OFFSET: empty_page(CURRENT_OFFSET)}
    api = FakeApi(mock, feed, {a["id"]: stub(a["id"], a["dateModified"]), b["id"]: stub(b["id"], b["dateModified"])})
    pages = collect(lambda c: ProzorroFeed(c, "tenders", known=known))
    assert api.fetched == [b["id"]]
    assert calls == [("tender", [(a["id"], a["dateModified"]), (b["id"], b["dateModified"])])]
    assert (pages[0].listed, pages[0].known) == (2, 1)
    assert [r.url for r in pages[0].records] == [f"{FEED}/{b['id']}"]
    assert pages[0].cursor == CURRENT_OFFSET


def test_all_known_fetches_nothing_but_moves_the_cursor(mock) -> None:
    feed = {None: FEED_PAGE, CURRENT_OFFSET: empty_page(CURRENT_OFFSET)}
    api = FakeApi(mock, feed, {})
    pages = collect(lambda c: ProzorroFeed(c, "tenders",
                                           known=lambda kind, listed: {i for i, _ in listed}))
    assert api.fetched == []
    assert (pages[0].records, pages[0].listed, pages[0].known, pages[0].cursor) == ([], 2, 2, CURRENT_OFFSET)


def test_kind_passed_to_known_follows_the_resource(mock) -> None:
    kinds: list[str] = []
    contracts_feed = f"{API}/contracts"
    mock.get(contracts_feed).mock(side_effect=[
        httpx.Response(200, json=listing(("e1" * 16, "2020-01-01T00:00:00+02:00"), offset="1.0")),
        httpx.Response(200, json=empty_page("1.0")),
    ])
    pages = collect(lambda c: ProzorroFeed(c, "contracts", known=lambda kind, listed: kinds.append(kind) or
                                           {i for i, _ in listed}))
    assert kinds == ["contract"]
    assert [p.cursor for p in pages] == ["1.0", "1.0"]


# --- objects that cannot be fetched ----------------------------------------------------------------


def test_object_404_becomes_an_error_record_and_paging_goes_on(mock) -> None:
    gone = FEED_PAGE["data"][0]["id"]
    present = FEED_PAGE["data"][1]["id"]
    lift = body(read_json(LIFT_REPAIR))
    feed = {
        None: FEED_PAGE,
        CURRENT_OFFSET: listing((lift["id"], lift["dateModified"]), offset="1798754500.0.1.cafe"),
        "1798754500.0.1.cafe": empty_page("1798754500.0.1.cafe"),
    }
    api = FakeApi(mock, feed, {present: stub(present, "2027-01-01T00:00:00+02:00"), lift["id"]: envelope(lift)})
    pages = collect(lambda c: ProzorroFeed(c, "tenders"))
    assert not isinstance(pages, Exception), pages
    first = {r.url: r for r in pages[0].records}
    bad = first[f"{FEED}/{gone}"]
    assert bad.text is None and bad.error and "404" in bad.error
    assert first[f"{FEED}/{present}"].error is None
    assert api.fetched.count(gone) == 1  # 404 is not retried
    assert [r.url for r in pages[1].records] == [f"{FEED}/{lift['id']}"]
    assert pages[-1].end and pages[-1].cursor == "1798754500.0.1.cafe"


def test_object_the_server_fails_to_give_after_retries_comes_back_marked_retry(mock) -> None:
    """A 503 (or 429, or a dropped connection) on every attempt says nothing about the object: it is not an
    error record to quarantine but one marked ``retry``, with its id, for the ingest run to queue or fail
    the page on (tests/test_ingest_retry_queue.py)."""
    failing = FEED_PAGE["data"][0]["id"]
    fine = FEED_PAGE["data"][1]["id"]
    feed = {None: FEED_PAGE, CURRENT_OFFSET: empty_page(CURRENT_OFFSET)}
    api = FakeApi(mock, feed, {failing: httpx.Response(503), fine: stub(fine, "2027-01-01T00:00:00+02:00")})
    pages = collect(lambda c: ProzorroFeed(c, "tenders"), max_attempts=3)
    records = {r.object_id: r for r in pages[0].records}
    assert records[failing].retry and records[failing].text is None and "503" in records[failing].error
    assert not records[fine].retry and records[fine].error is None
    assert api.fetched.count(failing) == 3


@pytest.mark.parametrize("status", [520, 507])
def test_every_server_error_but_501_is_retried(mock, status) -> None:
    """Cloudflare's 520-524 and the like are server faults as 502 is; 501 says asking again is no use."""
    flaky = FEED_PAGE["data"][0]["id"]
    feed = {None: listing((flaky, "2027-01-01T00:00:00+02:00"), offset="9.0"), "9.0": empty_page("9.0")}
    answers = iter([httpx.Response(status), stub(flaky, "2027-01-01T00:00:00+02:00")])
    api = FakeApi(mock, feed, {flaky: lambda: next(answers)})
    pages = collect(lambda c: ProzorroFeed(c, "tenders"), max_attempts=3)
    assert not isinstance(pages, Exception), pages
    assert [r.error for r in pages[0].records] == [None] and api.fetched.count(flaky) == 2


def test_not_implemented_is_an_error_record_at_once(mock) -> None:
    broken = FEED_PAGE["data"][0]["id"]
    feed = {None: listing((broken, "2027-01-01T00:00:00+02:00"), offset="9.0"), "9.0": empty_page("9.0")}
    api = FakeApi(mock, feed, {broken: httpx.Response(501)})
    pages = collect(lambda c: ProzorroFeed(c, "tenders"), max_attempts=3)
    (record,) = pages[0].records
    assert "501" in record.error and api.fetched.count(broken) == 1


def test_object_with_a_body_that_is_never_json_becomes_an_error_record(mock) -> None:
    broken = FEED_PAGE["data"][0]["id"]
    feed = {None: listing((broken, "2027-01-01T00:00:00+02:00"), offset="9.0"), "9.0": empty_page("9.0")}
    FakeApi(mock, feed, {broken: httpx.Response(200, content=b'{"data": {"id": "fa2e9c',
                                                headers={"Content-Type": "application/json"})})
    pages = collect(lambda c: ProzorroFeed(c, "tenders"), max_attempts=2)
    (record,) = pages[0].records
    assert record.url == f"{FEED}/{broken}" and record.error and "not JSON" in record.error


def test_a_response_for_another_object_is_an_error_record(mock) -> None:
    asked = FEED_PAGE["data"][0]["id"]
    other = body(read_json(MICROSCOPES))
    feed = {None: listing((asked, "2027-01-01T00:00:00+02:00"), offset="9.0"), "9.0": empty_page("9.0")}
    FakeApi(mock, feed, {asked: envelope(other)})
    pages = collect(lambda c: ProzorroFeed(c, "tenders"))
    (record,) = pages[0].records
    assert record.url == f"{FEED}/{asked}"
    assert record.error and "not the requested object" in record.error
    assert record.text is not None and other["id"] in record.text  # kept for the quarantine


def test_a_response_without_data_is_an_error_record(mock) -> None:
    asked = FEED_PAGE["data"][0]["id"]
    feed = {None: listing((asked, "2027-01-01T00:00:00+02:00"), offset="9.0"), "9.0": empty_page("9.0")}
    FakeApi(mock, feed, {asked: [1, 2, 3]})
    pages = collect(lambda c: ProzorroFeed(c, "tenders"))
    (record,) = pages[0].records
    assert record.error and "not the requested object" in record.error


# --- 404 on the feed offset ------------------------------------------------------------------------


def test_404_on_a_stored_offset_restarts_once_from_the_start(mock) -> None:
    feed = {None: FEED_PAGE, CURRENT_OFFSET: empty_page(CURRENT_OFFSET)}
    ids = [item["id"] for item in FEED_PAGE["data"]]
    api = FakeApi(mock, feed, {i: stub(i, "2027-01-01T00:00:00+02:00") for i in ids})
    pages = collect(lambda c: ProzorroFeed(c, "tenders", start=""), cursor="encrypted-couchdb-token")
    assert not isinstance(pages, Exception), pages
    assert api.offsets == ["encrypted-couchdb-token", None, CURRENT_OFFSET]
    assert pages[0].restarted and pages[0].records == [] and pages[0].cursor is None
    assert [p.restarted for p in pages[1:]] == [False, False]
    assert [p.cursor for p in pages[1:]] == [CURRENT_OFFSET, CURRENT_OFFSET]
    assert pages[-1].end


def test_404_on_a_stored_offset_restarts_from_a_since_start(mock) -> None:
    start = "1793491200.0"
    api = FakeApi(mock, {start: empty_page(start)})
    pages = collect(lambda c: ProzorroFeed(c, "tenders", start=start), cursor="1696888800.0000000002")
    assert api.offsets == ["1696888800.0000000002", start]
    assert pages[0].restarted and pages[0].cursor == start
    assert pages[-1].end and pages[-1].cursor == start


def test_404_on_the_start_itself_raises(mock) -> None:
    api = FakeApi(mock, {})
    result = collect(lambda c: ProzorroFeed(c, "tenders", start="1793491200.0"))
    assert isinstance(result, NotFound)
    assert api.offsets == ["1793491200.0"]
    assert result.pages == []


def test_404_again_after_the_restart_raises(mock) -> None:
    api = FakeApi(mock, {})
    result = collect(lambda c: ProzorroFeed(c, "tenders", start=""), cursor="stale")
    assert isinstance(result, NotFound)
    assert api.offsets == ["stale", None]  # restarted once, not in a loop
    assert [p.restarted for p in result.pages] == [True]


def test_feed_that_fails_after_retries_raises(mock) -> None:
    FakeApi(mock, {None: httpx.Response(500)})
    result = collect(lambda c: ProzorroFeed(c, "tenders"), max_attempts=2)
    assert not isinstance(result, NotFound) and isinstance(result, Exception)
    assert FEED in str(result) and "500" in str(result)


# --- concurrency -----------------------------------------------------------------------------------


def test_objects_are_fetched_concurrently_within_the_limit(mock) -> None:
    ids = [f"{n:032x}" for n in range(1, 13)]
    feed = {None: listing(*[(i, "2027-01-01T00:00:00+02:00") for i in ids], offset="5.0"), "5.0": empty_page("5.0")}
    api = FakeApi(mock, feed, {i: stub(i, "2027-01-01T00:00:00+02:00") for i in ids}, delay=0.03)
    pages = collect(lambda c: ProzorroFeed(c, "tenders"), concurrency=4)
    assert sorted(api.fetched) == ids
    assert 1 < api.peak <= 4
    assert sorted(r.url for r in pages[0].records) == [f"{FEED}/{i}" for i in ids]


def test_unknown_resource_is_refused() -> None:
    async def make() -> None:
        async with HttpClient(settings()) as client:
            ProzorroFeed(client, "monitorings")

    with pytest.raises(ValueError, match="monitorings"):
        asyncio.run(make())


def test_api_url_trailing_slash(mock) -> None:
    api = FakeApi(mock, {None: EMPTY_INITIAL})
    collect(lambda c: ProzorroFeed(c, "tenders", api_url=API + "/"))
    assert api.offsets == [None]


# --- answers that are not what they should be ------------------------------------------------------


@pytest.mark.parametrize("answer, says", [
    ({"status": "error", "errors": [{"description": "maintenance"}]}, "no list under 'data' (got: status, errors)"),
    ({}, "no list under 'data' (got: an empty object)"),
    ({"data": {"id": "fa2e9cbf88314cb6b2a51b4e5f0cc9d4"}}, "no list under 'data'"),
    ({"data": [{"dateModified": "2027-01-01T00:00:00+02:00"}], "next_page": {"offset": "9.0"}}, "data[0] has no object id"),
    ({"data": [{"id": "fa2e9cbf88314cb6b2a51b4e5f0cc9d4"}]}, "no next_page.offset after 1 listed object(s)"),
])
def test_a_feed_answer_that_is_not_a_feed_page_fails_naming_it(mock, answer, says) -> None:
    """A 200 without ``data`` was taken for the end of the feed (the run 'complete', nothing read after
    it); one without ``next_page`` crashed with a KeyError. Both now fail, naming the page and the fault."""
    FakeApi(mock, {CURRENT_OFFSET: answer})
    pages = collect(lambda c: ProzorroFeed(c, "tenders"), cursor=CURRENT_OFFSET)
    assert isinstance(pages, FeedError), pages
    assert says in str(pages) and FEED in str(pages) and CURRENT_OFFSET in str(pages)


def test_a_copy_older_than_the_feed_listed_is_marked_retry_not_stored(mock) -> None:
    """A lagging replica can answer with the object as it was before the write the feed lists; storing it
    would keep the old version until the object changed again. It is asked again later (retry queue)."""
    stale, fresh = FEED_PAGE["data"][0]["id"], FEED_PAGE["data"][1]["id"]
    listed = {item["id"]: item["dateModified"] for item in FEED_PAGE["data"]}
    feed = {None: FEED_PAGE, CURRENT_OFFSET: empty_page(CURRENT_OFFSET)}
    FakeApi(mock, feed, {stale: stub(stale, "2020-01-01T00:00:00+02:00"),
                         fresh: stub(fresh, "2030-01-01T00:00:00+02:00")})  # newer than listed: it moved again
    pages = collect(lambda c: ProzorroFeed(c, "tenders"))
    records = {r.object_id: r for r in pages[0].records}
    assert records[stale].retry and records[stale].text is None
    assert "older copy" in records[stale].error and listed[stale] in records[stale].error
    assert not records[fresh].retry and records[fresh].error is None and records[fresh].text
