"""OcdsPackageApi.pages (connectors/ocds_api.py): links.next paging, hints, since parameter, cursor.

Packages are the real ProZorro OCDS API pages in fixtures/prozorro-real (10 releases, 10 records),
served by respx at the URLs their own ``links`` name.
"""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from conftest import OCDS_RECORDS, OCDS_RELEASES, read_json

from connectors.base import Page
from connectors.http import HttpClient, HttpError, HttpSettings
from connectors.ocds_api import OcdsPackageApi

RELEASES = read_json(OCDS_RELEASES)
RECORDS = read_json(OCDS_RECORDS)
RELEASES_URL = RELEASES["links"]["prev"]  # http://api.ocds.prozorro.openprocurement.io/api/releases.json
RECORDS_URL = RECORDS["links"]["prev"]
RELEASES_NEXT = RELEASES["links"]["next"]
RECORDS_NEXT = RECORDS["links"]["next"]


def settings(**overrides: Any) -> HttpSettings:
    return HttpSettings(**{"retry_after_floor": 0.0, "backoff_initial": 0.0, "backoff_max": 0.0,
                           "rate_limit": 1000.0, "max_attempts": 2, **overrides})


class Publisher:
    """Serves packages by exact URL (as a string) and records the URLs requested."""

    def __init__(self, router: respx.Router, host: str, packages: dict[str, Any]) -> None:
        self.packages = {str(httpx.URL(url)): package for url, package in packages.items()}
        self.requested: list[str] = []
        router.route(host=host).mock(side_effect=self._serve)

    def _serve(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requested.append(url)
        package = self.packages.get(url)
        if package is None:
            return httpx.Response(404, json={"error": "no such page"})
        return package if isinstance(package, httpx.Response) else httpx.Response(200, json=package)


@pytest.fixture
def mock():
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


def collect(make, cursor: str | None = None) -> list[Page] | Exception:
    async def run() -> list[Page] | Exception:
        pages: list[Page] = []
        async with HttpClient(settings()) as client:
            try:
                async for page in make(client).pages(cursor):
                    pages.append(page)
            except Exception as exc:  # noqa: BLE001
                exc.pages = pages  # type: ignore[attr-defined]
                return exc
        return pages

    return asyncio.run(run())


def last_page(package: dict[str, Any], **links: str) -> dict[str, Any]:
    """A copy of ``package`` as the last page: no links.next (other links kept)."""
    page = copy.deepcopy(package)
    page["links"] = {k: v for k, v in page.get("links", {}).items() if k != "next"} | links
    return page


def release(ocid: str, release_id: str, tag: Any) -> dict[str, Any]:
    value = {"ocid": ocid, "id": release_id, "date": "2026-11-01T10:00:00Z", "initiationType": "tender"}
    if tag is not None:
        value["tag"] = tag
    return value


# --- paging ----------------------------------------------------------------------------------------


def test_follows_links_next_until_absent(mock) -> None:
    page2_url = "http://api.ocds.prozorro.openprocurement.io/api/releases.json?page=second&size=10"
    page2 = last_page(RELEASES)
    page2["releases"] = RELEASES["releases"][:3]
    middle = copy.deepcopy(RELEASES)
    middle["links"]["next"] = page2_url
    publisher = Publisher(mock, "api.ocds.prozorro.openprocurement.io",
                          {RELEASES_URL: RELEASES, RELEASES_NEXT: middle, page2_url: page2})
    pages = collect(lambda c: OcdsPackageApi(c, "prozorro-ocds", RELEASES_URL))
    assert not isinstance(pages, Exception), pages
    assert publisher.requested == [str(httpx.URL(u)) for u in (RELEASES_URL, RELEASES_NEXT, page2_url)]
    assert [len(p.records) for p in pages] == [10, 10, 3]
    assert [p.listed for p in pages] == [10, 10, 3]
    # the cursor is the next page's URL exactly as the package gave it; the last page keeps its own URL
    assert [p.cursor for p in pages] == [RELEASES_NEXT, page2_url, page2_url]
    assert [p.end for p in pages] == [False, False, True]
    assert pages[0].records[0].url == RELEASES_URL and pages[2].records[0].url == page2_url


def test_single_last_page_cursor_is_its_own_url(mock) -> None:
    Publisher(mock, "api.ocds.prozorro.openprocurement.io", {RELEASES_URL: last_page(RELEASES)})
    pages = collect(lambda c: OcdsPackageApi(c, "prozorro-ocds", RELEASES_URL))
    assert [(p.cursor, p.end, len(p.records)) for p in pages] == [(RELEASES_URL, True, 10)]


def test_package_without_links_is_the_last_page(mock) -> None:
    package = copy.deepcopy(RELEASES)
    del package["links"]
    Publisher(mock, "api.ocds.prozorro.openprocurement.io", {RELEASES_URL: package})
    pages = collect(lambda c: OcdsPackageApi(c, "prozorro-ocds", RELEASES_URL))
    assert [(p.cursor, p.end) for p in pages] == [(RELEASES_URL, True)]


def test_next_link_to_itself_does_not_loop(mock) -> None:
    package = last_page(RELEASES, next=RELEASES_URL)
    publisher = Publisher(mock, "api.ocds.prozorro.openprocurement.io", {RELEASES_URL: package})
    pages = collect(lambda c: OcdsPackageApi(c, "prozorro-ocds", RELEASES_URL))
    assert not isinstance(pages, Exception), pages
    assert len(publisher.requested) == 1
    assert len(pages) == 1 and pages[0].cursor == RELEASES_URL


def test_resumes_from_a_cursor(mock) -> None:
    publisher = Publisher(mock, "api.ocds.prozorro.openprocurement.io",
                          {RELEASES_NEXT: last_page(RELEASES)})
    pages = collect(lambda c: OcdsPackageApi(c, "prozorro-ocds", RELEASES_URL,
                                             since_param="since", since=datetime(2026, 11, 1, tzinfo=UTC)),
                    cursor=RELEASES_NEXT)
    assert publisher.requested == [str(httpx.URL(RELEASES_NEXT))]  # neither the start URL nor the since value
    assert [(p.cursor, p.end) for p in pages] == [(RELEASES_NEXT, True)]


# --- hints -----------------------------------------------------------------------------------------


def test_release_package_hints_by_tag(mock) -> None:
    releases = [
        release("ocds-abc-1", "1-compiled", ["compiled"]),
        release("ocds-abc-1", "1-tender", ["tender"]),
        release("ocds-abc-2", "2-award", ["award", "contract"]),
        release("ocds-abc-3", "3-untagged", None),
        release("ocds-abc-4", "4-string-tag", "compiled"),  # not a list: not a compiled release
        release("ocds-abc-5", "5-both", ["compiled", "tender"]),
    ]
    url = "https://public.mtender.gov.md/tenders/"
    Publisher(mock, "public.mtender.gov.md", {url: {"uri": url, "releases": releases}})
    pages = collect(lambda c: OcdsPackageApi(c, "mtender", url))
    records = pages[0].records
    assert [r.hint for r in records] == [
        "ocds-compiled", "ocds-release", "ocds-release", "ocds-release", "ocds-release", "ocds-compiled"]
    assert [json.loads(r.text) for r in records] == releases
    assert all(r.error is None and r.url == url for r in records)


def test_real_release_package(mock) -> None:
    Publisher(mock, "api.ocds.prozorro.openprocurement.io", {RELEASES_URL: last_page(RELEASES)})
    pages = collect(lambda c: OcdsPackageApi(c, "prozorro-ocds", RELEASES_URL, package_type="release"))
    records = pages[0].records
    assert len(records) == 10
    assert {r.hint for r in records} == {"ocds-release"}  # tagged ["contract"]
    assert [json.loads(r.text)["ocid"] for r in records] == [r["ocid"] for r in RELEASES["releases"]]


def test_record_package_hints_ocds_record(mock) -> None:
    Publisher(mock, "api.ocds.prozorro.openprocurement.io", {RECORDS_URL: RECORDS, RECORDS_NEXT: last_page(RECORDS)})
    pages = collect(lambda c: OcdsPackageApi(c, "prozorro-ocds-records", RECORDS_URL, package_type="record"))
    assert [len(p.records) for p in pages] == [10, 10]
    assert {r.hint for p in pages for r in p.records} == {"ocds-record"}
    assert [json.loads(r.text)["ocid"] for r in pages[0].records] == [r["ocid"] for r in RECORDS["records"]]
    assert [p.cursor for p in pages] == [RECORDS_NEXT, RECORDS_NEXT]
    assert [p.end for p in pages] == [False, True]


def test_wrong_package_shape_is_an_error_record(mock) -> None:
    url = "https://public.mtender.gov.md/tenders/"
    Publisher(mock, "public.mtender.gov.md", {url: RECORDS | {"links": {}}})  # records where releases expected
    pages = collect(lambda c: OcdsPackageApi(c, "mtender", url, package_type="release"))
    (record,) = pages[0].records
    assert record.error and "releases" in record.error and record.url == url


def test_response_that_is_not_a_package_is_an_error_record(mock) -> None:
    url = "https://public.mtender.gov.md/tenders/"
    Publisher(mock, "public.mtender.gov.md", {url: [1, 2, 3]})
    pages = collect(lambda c: OcdsPackageApi(c, "mtender", url))
    assert len(pages) == 1 and pages[0].end and pages[0].cursor == url
    (record,) = pages[0].records
    assert record.error and record.text == "[1,2,3]"


# --- since -----------------------------------------------------------------------------------------


def test_since_param_is_added_to_the_first_url(mock) -> None:
    start = "https://public.mtender.gov.md/tenders/?size=100"
    since = datetime(2026, 11, 1, tzinfo=UTC)
    route = mock.route(host="public.mtender.gov.md").mock(return_value=httpx.Response(200, json={"records": []}))
    pages = collect(lambda c: OcdsPackageApi(c, "mtender", start, package_type="record",
                                             since_param="offset", since=since))
    assert route.call_count == 1
    sent = route.calls.last.request.url
    assert sent.path == "/tenders/"
    assert sent.params["size"] == "100"
    assert sent.params["offset"] == "2026-11-01T00:00:00+00:00"
    assert pages[0].cursor == str(httpx.URL(start).copy_merge_params({"offset": since.isoformat()}))
    assert pages[0].records == [] and pages[0].end


@pytest.mark.parametrize(("since_param", "since"), [(None, datetime(2026, 11, 1, tzinfo=UTC)),
                                                     ("offset", None)])
def test_no_since_parameter_without_both(mock, since_param, since) -> None:
    url = "https://public.mtender.gov.md/tenders/"
    publisher = Publisher(mock, "public.mtender.gov.md", {url: {"records": []}})
    collect(lambda c: OcdsPackageApi(c, "mtender", url, package_type="record", since_param=since_param, since=since))
    assert publisher.requested == [url]


# --- failures --------------------------------------------------------------------------------------


def test_http_failure_names_the_publisher_and_url(mock) -> None:
    url = "https://public.mtender.gov.md/tenders/"
    Publisher(mock, "public.mtender.gov.md", {url: httpx.Response(503)})
    result = collect(lambda c: OcdsPackageApi(c, "mtender", url))
    assert isinstance(result, HttpError)
    assert result.url == url and "mtender" in result.reason and "503" in result.reason
    assert result.pages == []


def test_failure_on_a_later_page_keeps_the_pages_before(mock) -> None:
    Publisher(mock, "api.ocds.prozorro.openprocurement.io", {RELEASES_URL: RELEASES})  # next page -> 404
    result = collect(lambda c: OcdsPackageApi(c, "prozorro-ocds", RELEASES_URL))
    assert isinstance(result, HttpError) and result.status == 404
    assert result.url == RELEASES_NEXT
    assert [p.cursor for p in result.pages] == [RELEASES_NEXT]


@pytest.mark.parametrize("status", [404, 410])
def test_a_stored_cursor_the_publisher_rejects_restarts_from_the_chain_start(mock, status) -> None:
    """An expired paging token failed every later run for ever; now the feed restarts once from the start of
    the run that began the cursor (given as ``start``), not from this run's own since date."""
    expired = "http://api.ocds.prozorro.openprocurement.io/api/releases.json?offset=expired-token"
    chain_start = RELEASES_URL + "?since=2026-10-01T00%3A00%3A00%2B00%3A00"
    publisher = Publisher(mock, "api.ocds.prozorro.openprocurement.io",
                          {expired: httpx.Response(status), chain_start: last_page(RELEASES)})
    pages = collect(lambda c: OcdsPackageApi(c, "prozorro-ocds", RELEASES_URL, since_param="since",
                                             since=datetime(2026, 11, 20, tzinfo=UTC), start=chain_start),
                    cursor=expired)
    assert not isinstance(pages, Exception), pages
    assert publisher.requested == [expired, str(httpx.URL(chain_start))]
    restart, page = pages
    assert restart.restarted and restart.rejected == expired and restart.records == []
    assert restart.cursor == chain_start
    assert len(page.records) == len(RELEASES["releases"]) and page.end


def test_the_start_rejected_after_a_restart_fails_the_run(mock) -> None:
    expired = "http://api.ocds.prozorro.openprocurement.io/api/releases.json?offset=expired-token"
    Publisher(mock, "api.ocds.prozorro.openprocurement.io", {})  # everything 404
    result = collect(lambda c: OcdsPackageApi(c, "prozorro-ocds", RELEASES_URL), cursor=expired)
    assert isinstance(result, HttpError) and result.status == 404 and result.url == RELEASES_URL
    assert [p.restarted for p in result.pages] == [True]  # once per run


def test_bad_package_type_is_refused() -> None:
    with pytest.raises(ValueError, match="package_type"):
        OcdsPackageApi(None, "x", "https://example.org/", package_type="compiled")  # type: ignore[arg-type]
