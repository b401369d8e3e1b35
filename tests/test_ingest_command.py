"""``monitor ingest`` end to end through the CLI, against a fake ProZorro API served by respx.

The feed pages use the real envelope (docs/prozorro-api.md §4) and list real tenders from
fixtures/prozorro-real, served as the API serves them ({"data": ..., "config": {...}}). The config
file makes retries immediate, so nothing sleeps; nothing touches the network.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from conftest import LIFT_REPAIR, MICROSCOPES, OCDS_RELEASES, body, mutated, read_json, write_rule

from monitor.runs import ABANDONED, finish_run, record_starts, start_run
from monitor.store import connect

API = "https://public-api.prozorro.gov.ua/api/2.5"
SOURCE = "prozorro-tenders"

MICROSCOPES_DOC = body(read_json(MICROSCOPES))
LIFT_DOC = body(read_json(LIFT_REPAIR))
M_ID, M_DATE = MICROSCOPES_DOC["id"], MICROSCOPES_DOC["dateModified"]
L_ID, L_DATE = LIFT_DOC["id"], LIFT_DOC["dateModified"]
X_ID = "0f6c3be4d4e84a5c9b0a0d3c7c6f9e21"
X_DOC = mutated(LIFT_REPAIR, lambda t: t.update(id=X_ID, tenderID="UA-2023-02-17-000001-a",
                                               dateModified="2023-03-02T09:00:00+02:00"))
BAD_ID = "94cd95f5e2034cdf9695a0f556b7cbb4"

# next_page.offset values in the current format, in feed order
O1 = "1658577804.832.1.0a1b2c3d4e5f60718293a4b5c6d7e8f9"
O2 = "1677665045.175.1.1b2c3d4e5f60718293a4b5c6d7e8f90a"
O3 = "1700000000.0.1.2c3d4e5f60718293a4b5c6d7e8f90a1b"

CONFIG = """
[http]
contact = "ingest-tests@example.org"
rate_limit = 1000
concurrency = 4
max_attempts = 2
backoff_initial = 0.0
backoff_max = 0.0
retry_after_floor = 0.0

[prozorro]
feeds = ["tenders"]
page_limit = 100

[[ocds.publishers]]
name = "mtender"
url = "https://public.mtender.gov.md/tenders/"
package_type = "record"
enabled = false
"""


def envelope(document: dict[str, Any]) -> dict[str, Any]:
    return {"data": document, "config": {}}


def listing(*items: tuple[str, str], offset: str) -> dict[str, Any]:
    return {"data": [{"id": i, "dateModified": d} for i, d in items],
            "next_page": {"offset": offset, "path": f"/api/2.5/tenders?offset={offset}",
                          "uri": f"{API}/tenders?offset={offset}"}}


def end_of_feed(offset: str) -> dict[str, Any]:
    return listing(offset=offset)


Answer = dict | Callable[[], httpx.Response]


class FakeProzorro:
    """The tenders feed keyed by its offset parameter (None: no offset) and tenders keyed by id.

    A value is a JSON document, or a callable returning a fresh response (errors, broken bodies).
    Unknown offsets and ids answer 404 like the real API.
    """

    def __init__(self, router: respx.Router, api: str = API) -> None:
        self.api = api
        self.feed: dict[str | None, Answer] = {}
        self.objects: dict[str, Answer] = {}
        self.offsets: list[str | None] = []
        self.fetched: list[str] = []
        self.user_agents: set[str] = set()
        self._object_url = re.compile(re.escape(f"{api}/tenders/") + r"(?P<id>[0-9a-f]{32})$")
        router.get(f"{api}/tenders").mock(side_effect=self._serve_feed)
        router.get(url__regex=self._object_url.pattern).mock(side_effect=self._serve_object)

    @staticmethod
    def _answer(answer: Answer | None, what: str) -> httpx.Response:
        if answer is None:
            return httpx.Response(404, json={"status": "error", "errors": [{"description": what}]})
        return answer() if callable(answer) else httpx.Response(200, json=answer)

    def _serve_feed(self, request: httpx.Request) -> httpx.Response:
        self.user_agents.add(request.headers["User-Agent"])
        offset = request.url.params.get("offset")
        self.offsets.append(offset)
        return self._answer(self.feed.get(offset), "Invalid offset provided")

    def _serve_object(self, request: httpx.Request, **groups: str) -> httpx.Response:
        self.user_agents.add(request.headers["User-Agent"])
        object_id = groups["id"]
        self.fetched.append(object_id)
        return self._answer(self.objects.get(object_id), "Not Found")

    def serve_real_tenders(self) -> None:
        """Two pages of one real tender each, then the end of the feed at O2."""
        self.feed = {None: listing((M_ID, M_DATE), offset=O1), O1: listing((L_ID, L_DATE), offset=O2),
                     O2: end_of_feed(O2)}
        self.objects = {M_ID: envelope(MICROSCOPES_DOC), L_ID: envelope(LIFT_DOC)}

    def url(self, object_id: str) -> str:
        return f"{self.api}/tenders/{object_id}"


@pytest.fixture
def router():
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        yield mock


@pytest.fixture
def api(router) -> FakeProzorro:
    return FakeProzorro(router)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


@pytest.fixture
def ingest(run_cli, db_path: Path, config: Path) -> Callable[..., tuple[int, str, str]]:
    def run(*args: Any) -> tuple[int, str, str]:
        return run_cli("--db", db_path, "--config", config, "ingest", *args)

    return run


def stored_cursor(query) -> str | None:
    rows = query("SELECT cursor FROM cursors WHERE source = ?", [SOURCE])
    assert len(rows) == 1, rows
    return rows[0][0]


def runs(query) -> list[dict[str, Any]]:
    rows = query("SELECT run_id, command, arguments, status, counts, last_cursor, error, finished_at "
                 "FROM runs ORDER BY run_id")
    keys = ("run_id", "command", "arguments", "status", "counts", "last_cursor", "error", "finished_at")
    result = []
    for row in rows:
        run = dict(zip(keys, row))
        run["counts"] = json.loads(run["counts"]) if run["counts"] else None
        run["last_cursor"] = json.loads(run["last_cursor"]) if run["last_cursor"] else None
        result.append(run)
    return result


# --- a full run ------------------------------------------------------------------------------------


def test_full_ingest_stores_processes_cursor_and_run(api, ingest, query) -> None:
    api.serve_real_tenders()
    code, out, err = ingest(SOURCE, "--full")
    assert code == 0, err
    assert "ingest complete: 2 new, 0 updated, 0 unchanged, 0 quarantined" in out
    assert api.offsets == [None, O1, O2]  # --full: first request without offset
    assert sorted(api.fetched) == sorted([M_ID, L_ID])

    assert query("SELECT tender_public_id, tender_id, source FROM processes ORDER BY tender_public_id") == [
        ("UA-2022-07-23-000100-a", M_ID, "prozorro"), ("UA-2023-02-16-009364-a", L_ID, "prozorro")]
    assert sorted(query("SELECT source, kind, id, origin FROM raw_records")) == sorted([
        ("prozorro", "tender", M_ID, api.url(M_ID)), ("prozorro", "tender", L_ID, api.url(L_ID))])
    assert query("SELECT count(*) FROM quarantine") == [(0,)]
    assert stored_cursor(query) == O2

    (run,) = runs(query)
    assert run["command"] == "ingest" and run["status"] == "complete" and run["error"] is None
    assert run["finished_at"] is not None
    assert "--full" in run["arguments"] and SOURCE in run["arguments"]
    counts = run["counts"]
    assert (counts["new"], counts["updated"], counts["unchanged"], counts["quarantined"]) == (2, 0, 0, 0)
    assert counts["requests"] == 5 and counts["retries"] == 0  # 3 feed pages + 2 tenders
    assert counts["sources"][SOURCE]["status"] == "complete"
    assert counts["sources"][SOURCE]["pages"] == 3
    assert run["last_cursor"] == {SOURCE: O2}
    assert all("procurement-monitor/" in ua and "ingest-tests@example.org" in ua for ua in api.user_agents)


def test_second_run_resumes_from_the_stored_cursor_and_fetches_nothing_unchanged(api, ingest, query) -> None:
    api.serve_real_tenders()
    assert ingest(SOURCE, "--full")[0] == 0
    api.offsets.clear()
    api.fetched.clear()

    code, out, err = ingest(SOURCE)
    assert code == 0, err
    assert api.offsets == [O2]  # the stored cursor, not the start
    assert api.fetched == []
    assert "ingest complete: 0 new, 0 updated, 0 unchanged, 0 quarantined" in out
    assert stored_cursor(query) == O2
    second = runs(query)[-1]
    assert second["status"] == "complete" and second["last_cursor"] == {SOURCE: O2}
    assert second["counts"]["requests"] == 1

    # the feed lists a stored tender again with the dateModified already stored: not fetched
    api.feed[O2] = listing((M_ID, M_DATE), offset=O3)
    api.feed[O3] = end_of_feed(O3)
    api.offsets.clear()
    code, out, err = ingest(SOURCE)
    assert code == 0, err
    assert api.offsets == [O2, O3]
    assert api.fetched == []
    assert stored_cursor(query) == O3
    assert query("SELECT count(*) FROM raw_records") == [(2,)]


def test_a_resumed_run_stores_objects_listed_after_the_cursor(api, ingest, query) -> None:
    api.serve_real_tenders()
    assert ingest(SOURCE, "--full")[0] == 0
    api.feed[O2] = listing((X_ID, X_DOC["dateModified"]), offset=O3)
    api.feed[O3] = end_of_feed(O3)
    api.objects[X_ID] = envelope(X_DOC)
    api.offsets.clear()
    api.fetched.clear()

    code, out, err = ingest(SOURCE)
    run = runs(query)[-1]
    assert run["status"] == "complete", run["error"]
    assert code == 0, err
    assert api.offsets == [O2, O3] and api.fetched == [X_ID]
    assert "ingest complete: 1 new, 0 updated" in out
    assert query("SELECT count(*) FROM processes") == [(3,)]
    assert stored_cursor(query) == O3


def test_a_changed_object_is_fetched_again_and_updated(api, ingest, query) -> None:
    api.serve_real_tenders()
    assert ingest(SOURCE, "--full")[0] == 0
    new_date = "2023-03-05T10:00:00.000001+02:00"
    changed = mutated(LIFT_REPAIR, lambda t: t.update(dateModified=new_date, title="Ремонт ліфта (змінено)"))
    api.objects[L_ID] = envelope(changed)
    api.feed[O2] = listing((L_ID, new_date), offset=O3)  # a modified object moves to the end of the feed
    api.feed[O3] = end_of_feed(O3)
    api.fetched.clear()

    code, out, err = ingest(SOURCE)
    assert code == 0, err
    assert runs(query)[-1]["status"] == "complete", runs(query)[-1]["error"]
    assert api.fetched == [L_ID]
    assert "0 new, 1 updated" in out
    assert query("SELECT title FROM processes WHERE tender_id = ?", [L_ID]) == [("Ремонт ліфта (змінено)",)]
    assert query("SELECT date_modified FROM raw_records WHERE id = ?", [L_ID]) == [
        (datetime.fromisoformat(new_date),)]
    assert query("SELECT count(*) FROM processes") == [(2,)]
    assert stored_cursor(query) == O3
    assert runs(query)[-1]["counts"]["updated"] == 1


# --- a bad object ----------------------------------------------------------------------------------


def test_a_bad_object_is_quarantined_with_its_url_and_the_run_completes(api, ingest, query) -> None:
    api.feed = {None: listing((M_ID, M_DATE), (BAD_ID, "2023-01-01T00:00:00+02:00"), offset=O1),
                O1: end_of_feed(O1)}
    api.objects = {
        M_ID: envelope(MICROSCOPES_DOC),
        BAD_ID: lambda: httpx.Response(200, content=b'{"data": {"id": "94cd95f5e2034cdf9695a0f556b7cbb4", "tit',
                                       headers={"Content-Type": "application/json"}),
    }
    code, out, err = ingest(SOURCE, "--full")
    assert code == 0, err
    assert "1 new, 0 updated, 0 unchanged, 1 quarantined" in out
    assert api.fetched.count(BAD_ID) == 2  # max_attempts = 2
    (row,) = query("SELECT source, origin, reason FROM quarantine")
    assert row[0] == "prozorro"
    assert row[1] == api.url(BAD_ID)
    assert "not JSON" in row[2]
    assert query("SELECT tender_id FROM processes") == [(M_ID,)]
    assert stored_cursor(query) == O1  # the cursor passed the quarantined object
    run = runs(query)[-1]
    assert run["status"] == "complete" and run["counts"]["quarantined"] == 1 and run["counts"]["new"] == 1


def test_an_object_the_server_keeps_failing_fails_the_run_and_is_read_on_the_next(api, ingest, query) -> None:
    """A spell of 503s on one object of the second page: the first page stays committed, the run fails
    (exit 1) with its cursor before the failed page, nothing is quarantined; the next run, the server
    well again, stores the object. The object used to be quarantined, the cursor moved past it and the
    run reported success: the tender was lost until it changed."""
    api.feed = {None: listing((M_ID, M_DATE), offset=O1), O1: listing((L_ID, L_DATE), offset=O2),
                O2: end_of_feed(O2)}
    api.objects = {M_ID: envelope(MICROSCOPES_DOC), L_ID: lambda: httpx.Response(503)}
    code, out, err = ingest(SOURCE, "--full")
    assert code == 1 and "ingest failed" in out
    assert query("SELECT tender_id FROM processes") == [(M_ID,)]
    assert query("SELECT count(*) FROM quarantine") == [(0,)]
    assert stored_cursor(query) == O1
    run = runs(query)[-1]
    assert run["status"] == "failed" and L_ID in run["error"] and "503" in run["error"]
    api.objects[L_ID] = envelope(LIFT_DOC)
    code, out, err = ingest(SOURCE)
    assert code == 0, err
    assert sorted(query("SELECT tender_id FROM processes")) == sorted([(M_ID,), (L_ID,)])
    assert stored_cursor(query) == O2


# --- --limit, --since, environment, unknown sources ------------------------------------------------


def test_limit_stops_after_the_first_committed_page(api, ingest, query) -> None:
    api.feed = {None: listing((M_ID, M_DATE), offset=O1), O1: listing((L_ID, L_DATE), offset=O2),
                O2: listing((X_ID, X_DOC["dateModified"]), offset=O3), O3: end_of_feed(O3)}
    api.objects = {M_ID: envelope(MICROSCOPES_DOC), L_ID: envelope(LIFT_DOC), X_ID: envelope(X_DOC)}
    code, out, err = ingest(SOURCE, "--full", "--limit", "1")
    assert code == 0, err
    assert out.startswith("ingest incomplete: 1 new")
    assert query("SELECT tender_id FROM processes") == [(M_ID,)]
    assert query("SELECT id FROM raw_records") == [(M_ID,)]
    assert stored_cursor(query) == O1
    run = runs(query)[-1]
    assert run["status"] == "incomplete"
    assert run["last_cursor"] == {SOURCE: O1}
    assert run["counts"]["sources"][SOURCE]["pages"] == 1

    # the next run carries on from there
    api.offsets.clear()
    code, _, err = ingest(SOURCE)
    assert code == 0, err
    assert api.offsets[0] == O1
    assert runs(query)[-1]["status"] == "complete", runs(query)[-1]["error"]
    assert query("SELECT count(*) FROM processes") == [(3,)]
    assert stored_cursor(query) == O3


def test_api_url_from_the_environment(router, ingest, query, monkeypatch) -> None:
    mirror = "https://prozorro-mirror.example.org/api/2.5"
    monkeypatch.setenv("MONITOR_PROZORRO_API_URL", mirror)
    api = FakeProzorro(router, api=mirror)
    default = router.route(host="public-api.prozorro.gov.ua").mock(return_value=httpx.Response(500))
    api.serve_real_tenders()
    code, out, err = ingest(SOURCE, "--full")
    assert code == 0, err
    assert "ingest complete: 2 new" in out
    assert default.call_count == 0
    assert api.offsets == [None, O1, O2]
    assert sorted(r[0] for r in query("SELECT origin FROM raw_records")) == sorted([f"{mirror}/tenders/{M_ID}",
                                                                      f"{mirror}/tenders/{L_ID}"])


def test_unknown_source_exits_2_naming_the_known_sources(router, ingest) -> None:
    code, _, err = ingest("prozorro-tender")
    assert code == 2
    assert "prozorro-tender'" in err or "'prozorro-tender" in err
    for name in ("prozorro-tenders", "prozorro-contracts", "prozorro-plans", "mtender"):
        assert name in err
    assert len(router.calls) == 0


@pytest.mark.parametrize(
    ("since", "instant"),
    [("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
     ("2026-11-01T00:00:00+02:00", datetime(2026, 10, 31, 22, tzinfo=UTC))],
)
def test_since_sends_the_unix_timestamp_as_offset(api, ingest, query, since, instant) -> None:
    api.serve_real_tenders()
    assert ingest(SOURCE, "--full")[0] == 0  # leaves a stored cursor (O2) that --since overrides
    expected = instant.timestamp()
    api.feed[f"{expected:.1f}"] = end_of_feed(f"{expected:.1f}")
    api.offsets.clear()
    code, _, err = ingest(SOURCE, "--since", since)
    assert code == 0, err
    assert len(api.offsets) == 1 and api.offsets[0] is not None
    assert float(api.offsets[0]) == expected
    assert runs(query)[-1]["status"] == "complete"


def test_since_and_full_exclude_each_other(router, ingest) -> None:
    code, _, err = ingest(SOURCE, "--full", "--since", "2026-11-01")
    assert code == 2 and "exclude" in err
    assert len(router.calls) == 0


def test_bad_since_date_exits_2(router, ingest) -> None:
    code, _, err = ingest(SOURCE, "--since", "1 November")
    assert code == 2 and "--since" in err
    assert len(router.calls) == 0


# --- a failing feed --------------------------------------------------------------------------------


def test_a_failing_feed_exits_1_and_keeps_the_last_committed_cursor(api, ingest, query) -> None:
    api.feed = {None: listing((M_ID, M_DATE), offset=O1),
                O1: lambda: httpx.Response(500, json={"status": "error", "errors": [{"description": "Internal"}]})}
    api.objects = {M_ID: envelope(MICROSCOPES_DOC)}
    code, out, _ = ingest(SOURCE, "--full")
    assert "ingest failed" in out
    assert api.offsets == [None, O1, O1]  # max_attempts = 2
    assert stored_cursor(query) == O1  # where the last committed page left it
    assert query("SELECT tender_id FROM processes") == [(M_ID,)]
    run = runs(query)[-1]
    assert run["status"] == "failed"
    assert "500" in run["error"] and f"{API}/tenders" in run["error"]
    assert run["last_cursor"] == {SOURCE: O1}
    assert run["counts"]["new"] == 1
    assert code == 1, f"a failed ingest must exit 1, got {code}"


# --- a flag rule failing after the records are stored ----------------------------------------------


@pytest.mark.flags_after_store
def test_a_flag_rule_failing_at_run_time_exits_1_after_the_records_cursor_and_other_flags_are_stored(
        api, ingest, query, tmp_path, monkeypatch) -> None:
    rules = tmp_path / "flag-rules"
    rules.mkdir()
    write_rule(rules, "every-process", "SELECT ocid AS subject_id, ocid FROM processes")
    # valid SQL that fails only on the data: an ocid is not a number
    write_rule(rules, "broken-cast", "SELECT ocid AS subject_id, ocid, ocid::INTEGER AS value FROM processes")
    monkeypatch.setattr("monitor.flags.rules.DEFAULT_DIR", rules)
    api.serve_real_tenders()
    code, out, err = ingest(SOURCE, "--full")
    assert code == 1, err[-3000:]
    assert "ingest complete: 2 new, 0 updated" in out
    assert "the data is stored, but rule broken-cast failed" in out
    [line] = [json.loads(e) for e in err.splitlines()
              if e.startswith("{") and json.loads(e)["event"].startswith("flag rules failed")]
    assert line["level"] == "error" and line["failed_rules"] == ["broken-cast"]
    assert line["errors"]["broken-cast"].startswith("Conversion Error")
    assert query("SELECT count(*) FROM processes") == [(2,)]
    assert stored_cursor(query) == O2
    assert query("SELECT rule_id, count(*) FROM flags GROUP BY ALL") == [("every-process", 2)]
    assert query("SELECT status FROM rule_runs WHERE rule_id = 'broken-cast'") == [("failed",)]
    (run,) = runs(query)
    assert run["status"] == "complete" and run["error"] is None  # the run's status is about the data


# --- a cursor the server rejects -------------------------------------------------------------------


def test_a_rejected_cursor_restarts_from_the_start_of_the_run_that_began_it(api, ingest, query) -> None:
    since = f"{datetime(2023, 1, 1, tzinfo=UTC).timestamp():.1f}"
    api.feed = {since: listing((M_ID, M_DATE), offset=O1), O1: listing((L_ID, L_DATE), offset=O2),
                O2: end_of_feed(O2)}
    api.objects = {M_ID: envelope(MICROSCOPES_DOC), L_ID: envelope(LIFT_DOC), X_ID: envelope(X_DOC)}
    assert ingest(SOURCE, "--since", "2023-01-01")[0] == 0
    assert runs(query)[-1]["counts"]["sources"][SOURCE]["start"] == since
    api.feed[O2] = listing((X_ID, X_DOC["dateModified"]), offset=O3)
    api.feed[O3] = end_of_feed(O3)
    assert ingest(SOURCE)[0] == 0  # a resumed run keeps the start of the run that began the cursor
    assert runs(query)[-1]["counts"]["sources"][SOURCE]["start"] == since
    # the server stops accepting the stored offset (a new offset format); from the start it lists everything
    o4 = "1700000001.5.1.3d4e5f60718293a4b5c6d7e8f90a1b2c"
    del api.feed[O3]
    api.feed[since] = listing((M_ID, M_DATE), (L_ID, L_DATE), (X_ID, X_DOC["dateModified"]), offset=o4)
    api.feed[o4] = end_of_feed(o4)
    api.offsets.clear()
    api.fetched.clear()

    code, out, err = ingest(SOURCE)
    assert code == 0, err
    assert api.offsets == [O3, since, o4]  # rejected, then the --since start (not a stored date), to the end
    assert api.fetched == []  # everything listed again is stored already
    assert "ingest complete: 0 new" in out and "restarted from the configured start: prozorro-tenders" in out
    warning = next(json.loads(line) for line in err.splitlines() if "cursor rejected" in line)
    assert (warning["level"], warning["source"], warning["rejected"], warning["restart"]) == \
        ("warning", SOURCE, O3, since)
    run = runs(query)[-1]
    assert run["status"] == "complete" and run["error"] is None and run["counts"]["restarts"] == 1
    assert run["counts"]["sources"][SOURCE]["restart"] == {"rejected": O3, "from": since}
    assert stored_cursor(query) == o4


def test_an_ocds_cursor_the_publisher_rejects_restarts_from_the_start_of_the_run_that_began_it(
        router, run_cli, db_path, tmp_path, query) -> None:
    """An OCDS publisher's stored links.next that later answers 404 (an expired paging token) failed every
    run; it now restarts once from the start URL of the run that began the cursor (its --since)."""
    releases = read_json(OCDS_RELEASES)
    start = "https://ocds.example.org/api/releases.json"
    config = tmp_path / "ocds.toml"
    config.write_text(CONFIG.replace('name = "mtender"', 'name = "example"').replace(
        'url = "https://public.mtender.gov.md/tenders/"', f'url = "{start}"\nsince_param = "since"').replace(
        'package_type = "record"', 'package_type = "release"').replace("enabled = false", "enabled = true"),
        encoding="utf-8")
    first = f"{start}?since=2023-01-01T00%3A00%3A00%2B00%3A00"
    token = f"{start}?page=2&token=abc"
    pages = {first: {**releases, "links": {"next": token}}, token: {**releases, "links": {}}}
    requested: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        page = pages.get(str(request.url))
        return httpx.Response(404) if page is None else httpx.Response(200, json=page)

    router.route(host="ocds.example.org").mock(side_effect=serve)
    code, out, err = run_cli("--db", db_path, "--config", config, "ingest", "example", "--since", "2023-01-01")
    assert code == 0, err
    assert requested == [first, token]
    assert query("SELECT cursor FROM cursors WHERE source = 'example'") == [(token,)]

    del pages[token]  # the token expired; paging from the start hands out a new one
    fresh = f"{start}?page=2&token=def"
    pages[first] = {**releases, "links": {"next": fresh}}
    pages[fresh] = {**releases, "links": {}}
    requested.clear()
    code, out, err = run_cli("--db", db_path, "--config", config, "ingest", "example")
    assert code == 0, err
    assert requested == [token, first, fresh]  # rejected, then the first run's start (not 7 days back)
    assert "restarted from the configured start: example" in out
    run = runs(query)[-1]
    assert run["counts"]["restarts"] == 1 and run["counts"]["sources"]["example"]["restart"]["rejected"] == token
    assert run["counts"]["sources"]["example"]["start"] == first
    assert query("SELECT cursor FROM cursors WHERE source = 'example'") == [(fresh,)]


def test_a_cursor_written_before_starts_were_recorded_restarts_from_the_beginning(api, ingest, query,
                                                                                  db_path) -> None:
    api.serve_real_tenders()
    with connect(db_path) as con:  # as an older version left it: a run that noted no start, and its cursor
        finish_run(con, start_run(con, "ingest", f"ingest {SOURCE} --since 2023-01-01"), "complete")
        con.execute("INSERT INTO cursors VALUES (?, 'stale', now())", [SOURCE])
    code, out, err = ingest(SOURCE)
    assert code == 0, err
    assert api.offsets == ["stale", None, O1, O2]  # the one start that surely misses nothing
    assert query("SELECT count(*) FROM raw_records") == [(2,)]
    assert runs(query)[-1]["counts"]["sources"][SOURCE]["start"] == ""


# --- runs left open by a killed process ------------------------------------------------------------


def test_runs_left_running_by_a_killed_process_are_closed_as_incomplete(api, ingest, query, db_path) -> None:
    api.serve_real_tenders()
    with connect(db_path) as con:  # an ingest run and a nightly run killed (kill -9) mid-run
        killed_ingest = start_run(con, "ingest", f"ingest {SOURCE} --full")
        record_starts(con, killed_ingest, {SOURCE: ""})
        con.execute("INSERT INTO cursors VALUES (?, ?, now())", [SOURCE, O1])  # its last committed page
        killed_nightly = start_run(con, "nightly", "nightly")
        other = start_run(con, "classify", "classify")  # takes no lock: it may be alive, left alone
    code, out, err = ingest(SOURCE)
    assert code == 0, err
    assert api.offsets == [O1, O2]  # the rerun resumes where the killed run stopped
    by_id = {run["run_id"]: run for run in runs(query)}
    for run_id in (killed_nightly, killed_ingest):
        run = by_id[run_id]
        assert (run["status"], run["error"]) == ("incomplete", ABANDONED)
        assert run["finished_at"] is not None
    assert by_id[killed_ingest]["last_cursor"] == {SOURCE: O1}  # where it was when it died
    assert by_id[killed_ingest]["counts"]["sources"][SOURCE]["start"] == ""
    assert by_id[killed_nightly]["last_cursor"] is None  # it wrote no cursor
    assert by_id[other]["status"] == "running"
    assert runs(query)[-1]["status"] == "complete"
    closed = [json.loads(line) for line in err.splitlines() if "left open" in line]
    assert [line["run"] for line in closed] == [killed_ingest, killed_nightly]
    assert {line["level"] for line in closed} == {"warning"}


# --- configuration ---------------------------------------------------------------------------------


def test_http2_without_the_h2_package_is_a_clear_error(router, ingest, config, monkeypatch) -> None:
    monkeypatch.setattr("monitor.sources.http2_available", lambda: False)
    config.write_text(CONFIG.replace("retry_after_floor = 0.0", "retry_after_floor = 0.0\nhttp2 = true"))
    code, out, err = ingest(SOURCE, "--full")
    assert code == 2
    assert "procurement-monitor[http2]" in err and "http2 = false" in err and "Traceback" not in err
    assert len(router.calls) == 0


@pytest.mark.parametrize(("change", "named"), [
    (("concurrency = 4", "concurrency = 0"), "[http] concurrency"),      # hung for ever, deaf to SIGTERM
    (("rate_limit = 1000", "rate_limit = 0"), "[http] rate_limit"),      # division by zero, exit 1
    (("rate_limit = 1000", 'rate_limit = 1000\ntimeout = "slow"'), "[http] timeout"),
    (("max_attempts = 2", "max_attempts = 2.5"), "[http] max_attempts"),
    (("contact = \"ingest-tests@example.org\"", "contact = 7"), "[http] contact"),
    (("page_limit = 100", 'page_limit = "many"'), "[prozorro] page_limit"),
    (("page_limit = 100", "page_limit = 5000"), "[prozorro] page_limit"),
    (("page_limit = 100", 'page_limit = 100\nsince_days = "x"'), "[prozorro] since_days"),
    (("page_limit = 100", 'page_limit = 100\napi_url = "ftp://127.0.0.1/api/2.5"'), "[prozorro] api_url"),
])
def test_a_bad_setting_is_bad_input_naming_it(router, ingest, config, change, named) -> None:
    """Exit 2 with the setting's name, before any request; these crashed with a traceback (exit 1), or
    hung (concurrency 0), or retried an ftp:// URL for a minute."""
    old, new = change
    assert old in CONFIG
    config.write_text(CONFIG.replace(old, new), encoding="utf-8")
    code, out, err = ingest(SOURCE, "--full")
    assert code == 2 and named in err and "Traceback" not in err, err
    assert len(router.calls) == 0
