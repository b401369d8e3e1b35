"""The retry queue (``fetch_retries``): objects the server fails to give after every attempt.

A 503 on every attempt says nothing about the object. Such an object must neither be lost (quarantined
and passed by the cursor) nor block its feed for ever (a permanently broken object failing every run).
Through the CLI, against the fake ProZorro API of test_ingest_command (respx; real tenders).
"""

from __future__ import annotations

import httpx
from test_ingest_command import (  # noqa: F401  (fixtures)
    L_DATE, L_ID, LIFT_DOC, M_DATE, M_ID, MICROSCOPES_DOC, O1, O2, SOURCE, api, config, end_of_feed, envelope,
    ingest, listing, router, runs, stored_cursor)


def queue(query) -> list[tuple]:
    return query("SELECT id, failures, deferred, last_error LIKE '%503%' FROM fetch_retries ORDER BY id")


def test_an_object_failing_in_two_runs_is_deferred_and_the_feed_goes_on(api, ingest, query) -> None:
    """Alone on its page, the object's first failure may be an outage: the run fails, the cursor stays
    before the page. Failing again the next run, it is deferred: the cursor moves past it and the run
    completes. Before, a permanently failing object failed every run and nothing after it was read."""
    api.feed = {None: listing((M_ID, M_DATE), offset=O1), O1: listing((L_ID, L_DATE), offset=O2),
                O2: end_of_feed(O2)}
    api.objects = {M_ID: envelope(MICROSCOPES_DOC), L_ID: lambda: httpx.Response(503)}
    code, out, err = ingest(SOURCE, "--full")
    assert code == 1 and "ingest failed" in out
    assert stored_cursor(query) == O1
    assert queue(query) == [(L_ID, 1, False, True)]
    assert L_ID in runs(query)[-1]["error"]

    code, out, err = ingest(SOURCE)
    assert code == 0, err
    assert "1 deferred" in out
    assert stored_cursor(query) == O2  # the feed went on past the broken object
    assert queue(query) == [(L_ID, 2, True, True)]
    assert "object deferred to the retry queue" in err and api.url(L_ID) in err
    counts = runs(query)[-1]["counts"]
    assert counts["deferred"] == 1 and counts["sources"][SOURCE]["queued"] == 1
    assert query("SELECT count(*) FROM quarantine") == [(0,)]  # not bad input: nothing quarantined

    api.objects[L_ID] = envelope(LIFT_DOC)  # the server gives it again
    api.fetched.clear()
    code, out, err = ingest(SOURCE)
    assert code == 0, err
    assert api.fetched == [L_ID]  # fetched from the queue, before the feed
    assert sorted(query("SELECT tender_id FROM processes")) == sorted([(M_ID,), (L_ID,)])
    assert queue(query) == []
    assert stored_cursor(query) == O2
    counts = runs(query)[-1]["counts"]
    assert counts["recovered"] == 1 and counts["sources"][SOURCE]["queued"] == 0


def test_an_object_failing_beside_fetched_ones_is_deferred_at_once(api, ingest, query) -> None:
    """Other objects of the page came, so the server is up: the failing one is deferred in the page's own
    transaction and the run completes; still failing next run, it stays queued with its failures counted."""
    api.feed = {None: listing((M_ID, M_DATE), (L_ID, L_DATE), offset=O1), O1: end_of_feed(O1)}
    api.objects = {M_ID: envelope(MICROSCOPES_DOC), L_ID: lambda: httpx.Response(503)}
    code, out, err = ingest(SOURCE, "--full")
    assert code == 0, err
    assert query("SELECT tender_id FROM processes") == [(M_ID,)]
    assert stored_cursor(query) == O1
    assert queue(query) == [(L_ID, 1, True, True)]

    code, out, err = ingest(SOURCE)
    assert code == 0, err
    assert queue(query) == [(L_ID, 2, True, True)]
    assert "deferred objects still failing" in err


def test_a_queued_object_that_turns_out_gone_is_quarantined_and_leaves_the_queue(api, ingest, query) -> None:
    api.feed = {None: listing((M_ID, M_DATE), (L_ID, L_DATE), offset=O1), O1: end_of_feed(O1)}
    api.objects = {M_ID: envelope(MICROSCOPES_DOC), L_ID: lambda: httpx.Response(503)}
    assert ingest(SOURCE, "--full")[0] == 0
    del api.objects[L_ID]  # now 404: removed or hidden, bad input for good
    code, out, err = ingest(SOURCE)
    assert code == 0, err
    assert queue(query) == []
    assert query("SELECT origin, reason LIKE '%404%' FROM quarantine") == [(api.url(L_ID), True)]


def test_a_page_of_which_nothing_came_fails_without_deferring(api, ingest, query) -> None:
    """Every object of the page failing for the first time looks like an outage: nothing is deferred, the
    cursor is not committed, the objects are remembered; the server well again, they are simply read."""
    api.feed = {None: listing((M_ID, M_DATE), (L_ID, L_DATE), offset=O1), O1: end_of_feed(O1)}
    api.objects = {M_ID: lambda: httpx.Response(503), L_ID: lambda: httpx.Response(503)}
    code, out, err = ingest(SOURCE, "--full")
    assert code == 1
    assert query("SELECT count(*) FROM cursors") == [(0,)]
    assert queue(query) == sorted([(M_ID, 1, False, True), (L_ID, 1, False, True)])
    assert "none came" in runs(query)[-1]["error"]

    api.objects = {M_ID: envelope(MICROSCOPES_DOC), L_ID: envelope(LIFT_DOC)}
    api.fetched.clear()
    code, out, err = ingest(SOURCE, "--full")
    assert code == 0, err
    assert sorted(api.fetched) == sorted([M_ID, L_ID])  # read by the feed, once each: not deferred
    assert queue(query) == []
    assert stored_cursor(query) == O1


def test_status_shows_the_retry_queue(api, ingest, run_cli, db_path, query) -> None:
    api.feed = {None: listing((M_ID, M_DATE), (L_ID, L_DATE), offset=O1), O1: end_of_feed(O1)}
    api.objects = {M_ID: envelope(MICROSCOPES_DOC), L_ID: lambda: httpx.Response(503)}
    assert ingest(SOURCE, "--full")[0] == 0
    code, out, err = run_cli("--db", db_path, "status")
    assert code == 0, err
    assert "retry queue" in out and api.url(L_ID) in out and "503" in out
