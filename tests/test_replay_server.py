"""The ProZorro replay server (monitor.testing.replay_server): feed paging as the real API pages,
offsets, opt_fields, mode, object GETs, mutations between runs, injected faults, the request log,
the generated world and the command line. Plain httpx against a loopback port; no internet."""

from __future__ import annotations

import gzip
import json
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest

from monitor.testing.replay_server import Faults, ReplayServer, World

ROOT = Path(__file__).resolve().parent.parent
PROZORRO = Path(__file__).resolve().parent / "fixtures" / "prozorro"
CLASSIFIERS = ROOT / "data" / "reference" / "prozorro-standards" / "classifiers"

HEX32 = re.compile(r"[0-9a-f]{32}\Z")
KYIV_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+0[23]:00\Z")
CURRENT_OFFSET = re.compile(r"\d+\.\d+\.\d+\.[0-9a-f]{32}\Z")
TENDER_ID = re.compile(r"UA-(\d{4}-\d\d-\d\d)-\d{6}-a\Z")
BAD_OFFSET = {"status": "error", "errors": [{"location": "querystring", "name": "offset",
                                             "description": "Invalid offset provided"}]}


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture
def world() -> World:
    return World.generated(250, contracts=40, plans=20, seed=7)


@pytest.fixture
def server(world):
    with ReplayServer(world) as running:
        yield running


@pytest.fixture
def client():
    with httpx.Client(timeout=10) as http:
        yield http


def crawl(client: httpx.Client, url: str, offset: str = "", **params):
    """Follow next_page from ``offset`` until an empty page; returns (ids, pages)."""
    pages = []
    while True:
        query = dict(params, offset=offset) if offset else dict(params)
        response = client.get(url, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append((offset, page))
        if not page["data"]:
            return [item["id"] for _, body in pages for item in body["data"]], pages
        offset = page["next_page"]["offset"]


# --- paging ------------------------------------------------------------------------------------

def test_paging_returns_every_id_once_in_order_and_ends_with_the_sent_offset(world, server, client):
    ids, pages = crawl(client, f"{server.url}/tenders", limit=100)

    assert [len(page["data"]) for _, page in pages] == [100, 100, 50, 0]
    assert ids == list(world.objects("tenders"))  # every id once, in write order
    stamps = [world.public_modified("tenders", object_id) for object_id in ids]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    dates = [item["dateModified"] for _, page in pages for item in page["data"]]
    assert all(KYIV_DATE.match(text) for text in dates)
    assert [instant(text) for text in dates] == sorted(instant(text) for text in dates)
    objects = world.objects("tenders")
    assert all(item["dateModified"] == objects[item["id"]]["data"]["dateModified"]
               for _, page in pages for item in page["data"])
    assert all(set(item) == {"id", "dateModified"} for _, page in pages for item in page["data"])

    first_offset, first = pages[0]
    assert first_offset == "" and "prev_page" not in first  # no offset, not descending
    for sent, page in pages[:-1]:
        next_page = page["next_page"]
        assert CURRENT_OFFSET.match(next_page["offset"])
        # The real API's query order: an offset that came with the request keeps its place.
        expected_query = (f"offset={next_page['offset']}&limit=100" if sent
                          else f"limit=100&offset={next_page['offset']}")
        assert next_page["path"] == f"/api/2.5/tenders?{expected_query}"
        assert next_page["uri"] == f"http://127.0.0.1:{server.port}{next_page['path']}"
        if sent:
            assert CURRENT_OFFSET.match(page["prev_page"]["offset"])
            assert page["prev_page"]["path"].endswith("&descending=1")

    sent, last = pages[-1]
    assert last["data"] == []
    assert last["next_page"]["offset"] == sent
    assert last["prev_page"] == {"offset": "", "path": "/api/2.5/tenders?limit=100&descending=1",
                                 "uri": f"http://127.0.0.1:{server.port}/api/2.5/tenders?limit=100&descending=1"}
    # Polling the caught-up offset again changes nothing.
    assert client.get(f"{server.url}/tenders", params={"offset": sent}).json()["data"] == []


def test_a_mutated_object_moves_after_the_old_last_one_with_a_later_date_modified(world, server, client):
    ids, pages = crawl(client, f"{server.url}/tenders", limit=100)
    caught_up = pages[-1][0]
    middle = ids[120]
    before = world.objects("tenders")[middle]["data"]["dateModified"]

    world.mutate("tenders", middle)
    world.mutate("tenders", ids[5], lambda data: data.update(status="cancelled"))

    page = client.get(f"{server.url}/tenders", params={"offset": caught_up}).json()
    assert [item["id"] for item in page["data"]] == [middle, ids[5]]
    moved = page["data"][0]["dateModified"]
    assert instant(moved) > instant(before) and KYIV_DATE.match(moved)
    assert world.public_modified("tenders", middle) > world.public_modified("tenders", ids[-1])
    assert client.get(f"{server.url}/tenders", params={"offset": page["next_page"]["offset"]}).json()["data"] == []

    fetched = client.get(f"{server.url}/tenders/{middle}").json()["data"]
    assert fetched["title"].endswith(" (змінено)") and fetched["dateModified"] == moved
    assert client.get(f"{server.url}/tenders/{ids[5]}").json()["data"]["status"] == "cancelled"

    # A crawl from the start lists each object once, at its latest write.
    again, _ = crawl(client, f"{server.url}/tenders", limit=100)
    assert len(again) == len(set(again)) == 250
    assert again[-3:] == [ids[-1], middle, ids[5]]


def test_add_and_remove(world, server, client):
    ids, pages = crawl(client, f"{server.url}/tenders", limit=1000)
    new_id = world.add("tenders", {"data": {"id": "ab" * 16, "title": "Нова закупівля", "status": "active.tendering",
                                            "dateModified": "2024-01-01T00:00:00+02:00"}, "config": {}})
    assert new_id == "ab" * 16
    page = client.get(f"{server.url}/tenders", params={"offset": pages[-1][0]}).json()
    assert [item["id"] for item in page["data"]] == [new_id]  # at the end, whatever its dateModified

    world.remove("tenders", ids[0])
    response = client.get(f"{server.url}/tenders/{ids[0]}")
    assert response.status_code == 404
    assert response.json() == {"status": "error", "errors": [{"location": "url", "name": "tender_id",
                                                              "description": "Not Found"}]}
    listed, _ = crawl(client, f"{server.url}/tenders", limit=1000)
    assert ids[0] not in listed and len(listed) == 250


def test_descending_crawl_and_its_prev_page_as_the_forward_cursor(world, server, client):
    first = client.get(f"{server.url}/tenders", params={"descending": "1", "limit": 100}).json()
    newest = list(world.objects("tenders"))[::-1]
    assert [item["id"] for item in first["data"]] == newest[:100]
    assert "descending=1" in first["next_page"]["path"] and "descending" not in first["prev_page"]["path"]

    backward, pages = crawl(client, f"{server.url}/tenders", first["next_page"]["offset"], descending="1", limit=100)
    assert [item["id"] for item in first["data"]] + backward == newest
    assert pages[-1][1]["next_page"]["offset"] == pages[-1][0]

    forward = first["prev_page"]["offset"]
    assert client.get(f"{server.url}/tenders", params={"offset": forward}).json()["data"] == []
    world.mutate("tenders", newest[200])
    assert [item["id"] for item in client.get(f"{server.url}/tenders", params={"offset": forward}).json()["data"]] \
        == [newest[200]]


# --- parameters --------------------------------------------------------------------------------

def test_opt_fields_returns_only_allowed_names(world, server, client):
    response = client.get(f"{server.url}/tenders", params={
        "opt_fields": "status,tenderID,procuringEntity,title,value,nonsense,dateModified,public_modified", "limit": 5})
    page = response.json()
    tenders = world.objects("tenders")
    for item in page["data"]:
        assert set(item) == {"id", "dateModified", "status", "tenderID", "procuringEntity", "public_modified"}
        data = tenders[item["id"]]["data"]
        assert (item["status"], item["tenderID"], item["procuringEntity"]) == (
            data["status"], data["tenderID"], data["procuringEntity"])
        assert item["public_modified"] == world.public_modified("tenders", item["id"])
    assert "opt_fields=procuringEntity%2Cpublic_modified%2Cstatus%2CtenderID" in page["next_page"]["path"]

    contracts = client.get(f"{server.url}/contracts", params={"opt_fields": "contractID,status,buyer,value"}).json()
    assert contracts["data"] and all(set(item) == {"id", "dateModified", "contractID", "status"}
                                     for item in contracts["data"])
    plans = client.get(f"{server.url}/plans", params={"opt_fields": "planID,budget,procuringEntity"}).json()
    assert plans["data"] and all(set(item) == {"id", "dateModified", "planID", "procuringEntity"}
                                 for item in plans["data"])
    # Only default fields asked for: nothing extra, and no opt_fields in the next page's query.
    only_default = client.get(f"{server.url}/tenders", params={"opt_fields": "dateModified,title"}).json()
    assert set(only_default["data"][0]) == {"id", "dateModified"}
    assert "opt_fields" not in only_default["next_page"]["path"]


def test_iso_date_and_float_offsets(world, server, client):
    ids = list(world.objects("tenders"))
    stamps = [world.public_modified("tenders", object_id) for object_id in ids]

    def first_after(offset: str) -> str:
        response = client.get(f"{server.url}/tenders", params={"offset": offset, "limit": 1})
        assert response.status_code == 200, response.text
        return response.json()["data"][0]["id"]

    def expected_after(seconds: float) -> str:
        return next(object_id for object_id, stamp in zip(ids, stamps) if stamp > seconds)

    modified = world.objects("tenders")[ids[100]]["data"]["dateModified"]
    assert first_after(modified) == ids[101]  # ISO date: objects written after it
    assert first_after(repr(stamps[100])) == ids[101]  # float (2022-2024 form)
    whole = f"{int(stamps[100])}.0"
    assert first_after(whole) == expected_after(int(stamps[100]))
    assert first_after(f"{int(stamps[100])}.0000000002") == expected_after(int(stamps[100]))  # public_ts form
    day = "2025-01-01"
    assert first_after(day) == expected_after(datetime(2025, 1, 1, tzinfo=UTC).timestamp() - 2 * 3600)
    assert first_after("2000-01-01T00:00:00+02:00") == ids[0]

    # An unencoded "+" in the query arrives as a space; the server reads it back as "+".
    raw = client.get(f"{server.url}/tenders?offset={modified}&limit=1").json()
    assert raw["data"][0]["id"] == ids[101]
    # The page after a legacy offset carries a current-format offset, and prev_page is there.
    page = client.get(f"{server.url}/tenders", params={"offset": modified, "limit": 3}).json()
    assert CURRENT_OFFSET.match(page["next_page"]["offset"]) and "prev_page" in page
    # An empty page echoes a legacy offset unchanged too.
    future = "2099-01-01T00:00:00+02:00"
    empty = client.get(f"{server.url}/tenders", params={"offset": future}).json()
    assert empty["data"] == [] and empty["next_page"]["offset"] == future
    assert empty["next_page"]["path"] == "/api/2.5/tenders?offset=2099-01-01T00%3A00%3A00%2B02%3A00"


@pytest.mark.parametrize("offset", ["garbage", "latest", "12ab", "nan", "2024-13-45"])
def test_an_unparseable_offset_is_404(server, client, offset):
    response = client.get(f"{server.url}/tenders", params={"offset": offset})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == BAD_OFFSET


@pytest.mark.parametrize("limit", ["abc", "1.5", "0", "-3"])
def test_a_bad_limit_is_400(server, client, limit):
    response = client.get(f"{server.url}/tenders", params={"limit": limit})
    assert response.status_code == 400
    error = response.json()
    assert error["status"] == "error"
    assert (error["errors"][0]["location"], error["errors"][0]["name"]) == ("querystring", "limit")


def test_limit_is_capped_at_1000_and_defaults_to_100(client):
    world = World()
    for number in range(1100):
        world.add("tenders", {"data": {"id": f"{number:032x}", "status": "complete"}, "config": {}})
    with ReplayServer(world) as server:
        capped = client.get(f"{server.url}/tenders", params={"limit": 5000}).json()
        assert len(capped["data"]) == 1000
        assert capped["next_page"]["path"].startswith("/api/2.5/tenders?limit=1000&offset=")
        rest = client.get(f"{server.url}/tenders", params={"limit": 5000, "offset": capped["next_page"]["offset"]})
        assert len(rest.json()["data"]) == 100
        assert len(client.get(f"{server.url}/tenders").json()["data"]) == 100


def test_an_empty_world_pages_like_the_fixtures(client):
    fixture = json.loads((PROZORRO / "feed-tenders-page-empty-initial.json").read_text(encoding="utf-8"))
    with ReplayServer(World()) as server:
        for resource in ("tenders", "contracts", "plans"):
            page = client.get(f"{server.url}/{resource}").json()
            assert page == {"data": [], "next_page": {"offset": "", "path": f"/api/2.5/{resource}",
                                                      "uri": f"http://127.0.0.1:{server.port}/api/2.5/{resource}"}}
        page = client.get(f"{server.url}/tenders").json()
        assert set(page) == set(fixture) and set(page["next_page"]) == set(fixture["next_page"])
        assert (page["data"], page["next_page"]["offset"], page["next_page"]["path"]) == (
            fixture["data"], fixture["next_page"]["offset"], fixture["next_page"]["path"])

        # With an offset (fixture feed-violation-reports-empty-with-prev_page.json): echoed, prev_page "".
        echoed = json.loads((PROZORRO / "feed-violation-reports-empty-with-prev_page.json").read_text(encoding="utf-8"))
        sent = echoed["next_page"]["offset"]
        page = client.get(f"{server.url}/tenders", params={"offset": sent}).json()
        assert page["next_page"]["offset"] == sent and page["next_page"]["path"] == f"/api/2.5/tenders?offset={sent}"
        assert page["prev_page"]["offset"] == "" and page["prev_page"]["path"] == "/api/2.5/tenders?descending=1"


def test_test_mode_objects_are_hidden_by_default(client):
    world = World.generated(10, seed=1)
    test_id = world.add("tenders", {"data": {"id": "cd" * 16, "title": "[ТЕСТУВАННЯ] Закупівля", "mode": "test",
                                             "status": "active.tendering"}, "config": {}})
    world.add("tenders", {"data": {"id": "ef" * 16, "status": "draft"}, "config": {}})  # drafts: never listed
    with ReplayServer(world) as server:
        default = [item["id"] for item in client.get(f"{server.url}/tenders").json()["data"]]
        assert len(default) == 10 and test_id not in default
        only_test = client.get(f"{server.url}/tenders", params={"mode": "test", "opt_fields": "mode"}).json()
        assert only_test["data"] == [{"id": test_id, "dateModified": only_test["data"][0]["dateModified"], "mode": "test"}]
        assert only_test["next_page"]["path"].startswith("/api/2.5/tenders?mode=test&")
        both = [item["id"] for item in client.get(f"{server.url}/tenders", params={"mode": "_all_"}).json()["data"]]
        assert len(both) == 11 and both[-1] == test_id
        assert client.get(f"{server.url}/tenders/{test_id}").status_code == 200  # readable by id
        assert client.get(f"{server.url}/tenders/{'ef' * 16}").status_code == 200


# --- objects -----------------------------------------------------------------------------------

def test_object_gets_return_envelopes_as_utf8_json(world, server, client):
    for resource, keys in (("tenders", {"data", "config"}), ("contracts", {"data", "config"}), ("plans", {"data"})):
        object_id, envelope = next(iter(world.objects(resource).items()))
        response = client.get(f"{server.url}/{resource}/{object_id}")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert int(response.headers["content-length"]) == len(response.content)
        assert set(response.json()) == keys and response.json() == envelope
        assert "Україна".encode() in response.content and b"\\u" not in response.content
    missing = client.get(f"{server.url}/contracts/{'0' * 32}")
    assert missing.status_code == 404 and missing.json()["errors"][0]["name"] == "contract_id"
    assert client.get(f"{server.url}/version").status_code == 404
    assert client.get(f"{server.url}/tenders/{next(iter(world.objects('tenders')))}/awards").status_code == 404


def test_connections_are_kept_alive(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as connection:
        reader = connection.makefile("rb")
        for _ in range(3):
            connection.sendall(f"GET /api/2.5/tenders?limit=2 HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
            assert reader.readline().startswith(b"HTTP/1.1 200")
            headers = {}
            while (line := reader.readline()) != b"\r\n":
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.lower()] = value.strip()
            assert "connection" not in headers
            assert len(orjson.loads(reader.read(int(headers["content-length"])))["data"]) == 2
    assert server.count("feed") == 3


# --- faults ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["429", "500", "502", "503", "reset", "truncated", "html"])
def test_each_fault_kind(world, server, client, kind):
    normal = client.get(f"{server.url}/tenders").content
    before = orjson.dumps(world.objects("tenders"))
    server.faults = Faults(rate=1.0, kinds=(kind,))
    server.reset_log()
    if kind == "reset":
        with pytest.raises(httpx.TransportError):
            client.get(f"{server.url}/tenders")
        assert server.requests == [("feed", "/api/2.5/tenders", 0)]
    else:
        response = client.get(f"{server.url}/tenders")
        if kind == "429":
            assert response.status_code == 429 and response.headers["retry-after"] == "1"
        elif kind in ("500", "502", "503"):
            assert response.status_code == int(kind) and response.json()["status"] == "error"
        elif kind == "truncated":
            assert response.status_code == 200
            assert response.content == normal[: len(normal) // 2]
            assert int(response.headers["content-length"]) == len(response.content)
            with pytest.raises(json.JSONDecodeError):
                json.loads(response.content)
        else:
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
            assert response.content == b"<html><body>502 Bad Gateway</body></html>"
        assert server.requests == [("feed", "/api/2.5/tenders", response.status_code)]
    assert orjson.dumps(world.objects("tenders")) == before  # a fault changes nothing
    server.faults = Faults()
    assert client.get(f"{server.url}/tenders").content == normal  # and the client can carry on


def test_retry_after_values(server, client):
    server.faults = Faults(rate=1.0, kinds=("429",), retry_after="0")
    assert client.get(f"{server.url}/tenders").headers["retry-after"] == "0"
    server.faults = Faults(rate=1.0, kinds=("429",), retry_after=None)
    assert "retry-after" not in client.get(f"{server.url}/tenders").headers


def test_faults_are_reproducible_and_can_spare_object_gets(world, server, client):
    def statuses() -> list[int]:
        return [client.get(f"{server.url}/tenders", params={"limit": 1}).status_code for _ in range(30)]

    server.faults = Faults(rate=0.5, kinds=("500", "503"), seed=11)
    first = statuses()
    server.faults = Faults(rate=0.5, kinds=("500", "503"), seed=11)  # a new object restarts the draw
    assert statuses() == first
    assert {200, 500, 503} == set(first)

    object_id = next(iter(world.objects("tenders")))
    server.faults = Faults(rate=1.0, kinds=("500",), feed_only=True)
    assert client.get(f"{server.url}/tenders").status_code == 500
    assert client.get(f"{server.url}/tenders/{object_id}").status_code == 200

    with pytest.raises(ValueError):
        Faults(kinds=("418",))


def test_latency_is_added_to_every_response(server, client):
    server.faults = Faults(latency=0.25)
    for path in ("/tenders", f"/tenders/{'0' * 32}"):
        started = time.perf_counter()
        client.get(f"{server.url}{path}")
        assert time.perf_counter() - started >= 0.25
    server.faults = Faults()
    started = time.perf_counter()
    client.get(f"{server.url}/tenders")
    assert time.perf_counter() - started < 0.25


# --- the request log ---------------------------------------------------------------------------

def test_the_request_log_counts(world, server, client):
    ids = list(world.objects("tenders"))[:2]
    client.get(f"{server.url}/tenders", params={"limit": 10})
    client.get(f"{server.url}/tenders", params={"offset": "garbage"})
    client.get(f"{server.url}/tenders/{ids[0]}")
    client.get(f"{server.url}/tenders/{ids[0]}")
    client.get(f"{server.url}/tenders/{ids[1]}")
    client.get(f"{server.url}/tenders/{'0' * 32}")
    client.get(f"{server.url}/nothing-here")

    assert server.requests[0] == ("feed", "/api/2.5/tenders?limit=10", 200)
    assert server.count() == 7
    assert (server.count("feed"), server.count("object"), server.count("other")) == (2, 4, 1)
    assert server.count(status=404) == 3 and server.count("object", 200) == 3
    assert server.object_requests() == {ids[0]: 2, ids[1]: 1, "0" * 32: 1}
    server.reset_log()
    assert server.count() == 0 and server.object_requests() == {}


# --- the generated world -----------------------------------------------------------------------

def test_the_generated_world_is_realistic_and_deterministic(world):
    regions = set(json.loads((CLASSIFIERS / "ua_regions.json").read_text(encoding="utf-8")))
    dk021 = json.loads((CLASSIFIERS / "dk021_uk.json").read_text(encoding="utf-8"))
    tenders, contracts, plans = (world.objects(name) for name in ("tenders", "contracts", "plans"))
    assert (len(tenders), len(contracts), len(plans)) == (250, 40, 20)

    tender_ids = [envelope["data"]["tenderID"] for envelope in tenders.values()]
    assert len(set(tender_ids)) == 250
    methods, with_bids = set(), 0
    for object_id, envelope in tenders.items():
        data = envelope["data"]
        assert HEX32.match(object_id) and data["id"] == object_id and set(envelope) == {"data", "config"}
        match = TENDER_ID.match(data["tenderID"])
        assert match and data["dateCreated"].startswith(match[1])
        assert re.search("[а-яіїєґ]", data["title"])
        entity = data["procuringEntity"]
        assert entity["identifier"]["scheme"] == "UA-EDR" and re.fullmatch(r"\d{8}", entity["identifier"]["id"])
        assert entity["address"]["region"] in regions
        assert data["value"]["currency"] == "UAH" and data["value"]["amount"] > 0
        assert 1 <= len(data["items"]) <= 3
        for item in data["items"]:
            classification = item["classification"]
            assert classification["scheme"] == "ДК021" and dk021[classification["id"]] == classification["description"]
        for name in ("dateModified", "dateCreated", "date"):
            assert KYIV_DATE.match(data[name])
        assert instant(data["dateCreated"]) <= instant(data["dateModified"])
        # The internal stamp is the dateModified instant, so ISO offsets select by it.
        assert world.public_modified("tenders", object_id) == instant(data["dateModified"]).timestamp()
        methods.add(data["procurementMethodType"])
        with_bids += bool(data.get("bids"))
    assert {"belowThreshold", "reporting", "aboveThreshold", "priceQuotation"} <= methods
    assert 0 < with_bids < 250
    assert any(data.get("awards") for data in (envelope["data"] for envelope in tenders.values()))

    for envelope in contracts.values():
        data = envelope["data"]
        tender = tenders[data["tender_id"]]["data"]
        assert re.fullmatch(re.escape(tender["tenderID"]) + r"-a\d+", data["contractID"])
        assert data["buyer"]["identifier"] == tender["procuringEntity"]["identifier"]
        assert data["suppliers"] and data["value"]["currency"] == "UAH"
    for envelope in plans.values():
        assert set(envelope) == {"data"}
        assert re.fullmatch(r"UA-P-\d{4}-\d\d-\d\d-\d{6}-a", envelope["data"]["planID"])
        assert envelope["data"]["budget"]["amount"] > 0

    sizes = [len(orjson.dumps(envelope)) for resource in (tenders, contracts, plans) for envelope in resource.values()]
    assert 1500 <= statistics.median(sizes) <= 3500

    same = World.generated(250, contracts=40, plans=20, seed=7)
    assert orjson.dumps(same.objects("tenders")) == orjson.dumps(tenders)
    assert orjson.dumps(same.objects("contracts")) == orjson.dumps(contracts)
    assert list(World.generated(250, seed=8).objects("tenders")) != list(tenders)


def test_from_jsonl_plain_and_gzipped(tmp_path, client):
    source = World.generated(30, seed=3)
    envelopes = list(source.objects("tenders").values())
    random.Random(1).shuffle(envelopes)
    lines = b"".join(orjson.dumps(envelope) + b"\n" for envelope in envelopes)
    plain, packed = tmp_path / "tenders.jsonl", tmp_path / "tenders.jsonl.gz"
    plain.write_bytes(lines)
    packed.write_bytes(gzip.compress(lines))

    for path in (plain, packed):
        world = World.from_jsonl(path)
        assert list(world.objects("tenders")) == list(source.objects("tenders"))  # dateModified order
        with ReplayServer(world) as server:
            ids, _ = crawl(client, f"{server.url}/tenders", limit=7)
            assert ids == list(source.objects("tenders"))
            body = client.get(f"{server.url}/tenders/{envelopes[0]['data']['id']}").content
            assert body == orjson.dumps(envelopes[0])  # served byte for byte
        world.mutate("tenders", ids[0])
        assert world.objects("tenders")[ids[0]]["data"]["title"].endswith("(змінено)")


# --- command line ------------------------------------------------------------------------------

def test_the_command_line_serves_until_sigterm(client):
    command = [sys.executable, "-m", "monitor.testing.replay_server", "--generate", "20", "--contracts", "5",
               "--plans", "3", "--seed", "4", "--port", "0", "--fault-rate", "0", "--retry-after", "0",
               "--latency", "0"]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            line = process.stdout.readline().strip()
            match = re.fullmatch(r"serving (http://127\.0\.0\.1:\d+/api/2\.5)", line)
            assert match, line or process.stderr.read()
            url = match[1]
            assert len(client.get(f"{url}/tenders").json()["data"]) == 20
            assert len(client.get(f"{url}/contracts").json()["data"]) == 5
            assert len(client.get(f"{url}/plans").json()["data"]) == 3
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
