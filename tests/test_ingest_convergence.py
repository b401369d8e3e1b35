"""End-to-end ingest against the loopback replay server: the store converges to the served state.

(a) faults on 10 % of requests; (b) SIGKILL mid-run then a rerun; (c) incremental runs fetch only
what changed; (d) Retry-After: 0, a rejected offset, an empty feed, a feed that grows while read.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import duckdb
import pytest

from monitor.cli import main
from monitor.runs import ABANDONED
from monitor.testing.replay_server import Faults, ReplayServer, World

FAST_RETRIES = """
[http]
rate_limit = 5000
concurrency = 16
backoff_initial = 0.01
backoff_max = 0.05
retry_after_floor = 0.02
retry_after_cap = 0.05
[prozorro]
page_limit = 100
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(FAST_RETRIES, encoding="utf-8")
    return path


def ingest(db: Path, config: Path, server: ReplayServer, *args: str) -> int:
    os.environ["MONITOR_PROZORRO_API_URL"] = server.url
    try:
        return main(["--log-format", "json", "--config", str(config), "--db", str(db), "ingest", "prozorro-tenders",
                     *args])
    finally:
        del os.environ["MONITOR_PROZORRO_API_URL"]


def stored(db: Path) -> dict[str, str]:
    """id -> dateModified (as text from the stored JSON) of every stored tender."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT id, coalesce(json_json->>'$.data.dateModified', json->>'$.dateModified') "
            "FROM (SELECT id, json, json AS json_json FROM raw_records WHERE kind = 'tender')"
        ).fetchall()
    return dict(rows)


class TimedLog(list):
    """A ``ReplayServer.requests`` log that also notes when each request was logged (monotonic s).

    The server logs a response just before sending it, and a request once it has arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, item: tuple[str, str, int]) -> None:
        self.times.append(time.monotonic())
        super().append(item)

    def clear(self) -> None:
        self.times.clear()
        super().clear()


def feed_offsets(server: ReplayServer) -> list[str | None]:
    """The offset parameter of each feed request, in order (None: no offset)."""
    return [parse_qs(urlsplit(path).query).get("offset", [None])[0]
            for kind, path, _ in server.requests if kind == "feed"]


def run_rows(db: Path) -> list[dict]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT status, counts, last_cursor, error, finished_at FROM runs ORDER BY run_id").fetchall()
    return [{"status": status, "counts": json.loads(counts) if counts else None,
             "last_cursor": json.loads(cursor) if cursor else None, "error": error, "finished_at": finished}
            for status, counts, cursor, error, finished in rows]


def served(world: World) -> dict[str, str]:
    return {object_id: envelope["data"]["dateModified"] for object_id, envelope in world.objects("tenders").items()}


def table_state(db: Path) -> dict[str, list[tuple]]:
    """Content of the raw store and the main normalized tables, without load times."""
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            "raw": con.execute("SELECT source, kind, id, sha256 FROM raw_records ORDER BY ALL").fetchall(),
            "processes": con.execute(
                "SELECT ocid, status, value_amount, buyer_id, region, date_modified FROM processes ORDER BY ALL"
            ).fetchall(),
            "items": con.execute("SELECT ocid, item_id, cpv, quantity FROM items ORDER BY ALL").fetchall(),
            "bids": con.execute("SELECT ocid, bid_id, tenderer_id, value_amount FROM bids ORDER BY ALL").fetchall(),
            "quarantine": con.execute("SELECT count(*) FROM quarantine").fetchall(),
        }


def test_ten_percent_mixed_faults_converge_to_the_served_set(tmp_path, config):
    world = World.generated(tenders=2500, seed=7)
    with ReplayServer(world, Faults(rate=0.10, seed=11)) as server:
        assert ingest(tmp_path / "m.duckdb", config, server, "--full") == 0
        faults = len([r for r in server.requests if r[2] != 200])
    assert faults > 150  # the faults really happened
    assert stored(tmp_path / "m.duckdb") == served(world)
    with duckdb.connect(str(tmp_path / "m.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT id) FROM raw_records").fetchone() == (2500, 2500)
        assert con.execute("SELECT count(*) FROM processes").fetchone() == (2500,)
        assert con.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)
        assert con.execute("SELECT status FROM runs").fetchall() == [("complete",)]


def _ingest_process(db: Path, config: Path, url: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "MONITOR_PROZORRO_API_URL": url}
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "--log-format", "json", "--config", str(config), "--db", str(db),
         "ingest", "prozorro-tenders", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def test_sigkill_mid_run_then_rerun_equals_an_uninterrupted_run(tmp_path, config):
    world = World.generated(tenders=3000, seed=5)
    slow = Faults(latency=0.002, seed=1)
    with ReplayServer(world, slow) as server:
        reference = tmp_path / "reference.duckdb"
        assert ingest(reference, config, server, "--full") == 0
        server.reset_log()
        killed = tmp_path / "killed.duckdb"
        process = _ingest_process(killed, config, server.url, "--full")
        deadline = time.monotonic() + 60
        while server.count("object") < 1200 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
        assert process.poll() is None, "the ingest finished before it could be killed; make the world larger"
        process.send_signal(signal.SIGKILL)
        process.wait()
        with duckdb.connect(str(killed), read_only=True) as con:
            (cursor_at_kill,) = con.execute("SELECT cursor FROM cursors WHERE source = 'prozorro-tenders'").fetchone()
        before = stored(killed)
        assert 0 < len(before) < 3000 and cursor_at_kill
        server.reset_log()
        process = _ingest_process(killed, config, server.url)  # a plain rerun: resumes from the stored cursor
        assert process.wait(timeout=120) == 0, process.stderr.read().decode()[-2000:]
        offsets = feed_offsets(server)
        fetched = server.object_requests()
    assert offsets[0] == cursor_at_kill  # not the start of the feed
    missing = set(served(world)) - set(before)
    assert set(fetched) == missing and sum(fetched.values()) == len(missing)  # only what was missing, once each
    assert table_state(killed) == table_state(reference)
    killed_run, rerun = run_rows(killed)
    # the rerun, holding the lock, closed the row the killed process could not close
    assert (killed_run["status"], killed_run["error"]) == ("incomplete", ABANDONED)
    assert killed_run["last_cursor"] == {"prozorro-tenders": cursor_at_kill} and killed_run["finished_at"]
    assert rerun["status"] == "complete" and rerun["counts"]["new"] == len(missing)


def test_second_run_fetches_only_changed_and_added_objects(tmp_path, config):
    world = World.generated(tenders=1500, seed=9)
    with ReplayServer(world) as server:
        db = tmp_path / "m.duckdb"
        assert ingest(db, config, server, "--full") == 0
        ids = sorted(world.objects("tenders"))
        changed = ids[::50]  # 30 objects
        for object_id in changed:
            world.mutate("tenders", object_id)
        added = [world.add("tenders", envelope) for envelope in list(World.generated(tenders=20, seed=99)
                                                                         .objects("tenders").values())]
        server.reset_log()
        assert ingest(db, config, server) == 0
        fetched = server.object_requests()
    assert set(fetched) == set(changed) | set(added)
    assert sum(fetched.values()) <= 1.1 * (len(changed) + len(added))
    assert stored(db) == served(world)
    with duckdb.connect(str(db), read_only=True) as con:
        titles = dict(con.execute("SELECT tender_id, title FROM processes").fetchall())
    assert all(titles[object_id] == world.objects("tenders")[object_id]["data"]["title"] for object_id in changed)


def test_retry_after_zero_is_honoured_without_a_hot_loop(tmp_path, config):
    world = World.generated(tenders=200, seed=2)
    floor = 0.02  # retry_after_floor in FAST_RETRIES
    with ReplayServer(world, Faults(rate=0.2, kinds=("429",), retry_after="0", seed=4)) as server:
        server.requests = log = TimedLog()
        assert ingest(tmp_path / "m.duckdb", config, server, "--full") == 0
    assert stored(tmp_path / "m.duckdb") == served(world)
    throttled = sum(1 for _, _, status in log if status == 429)
    assert throttled > 30
    # every 429 was retried once (the only fault served; none ran out of attempts) ...
    (run,) = run_rows(tmp_path / "m.duckdb")
    assert run["counts"]["retries"] == throttled
    # ... and no sooner than the floor: for each 429, the next request for that URL came >= floor later
    requests_by_url = collections.defaultdict(list)
    for when, (_, path, status) in zip(log.times, log, strict=True):
        requests_by_url[path].append((when, status))
    gaps = [later[0] - earlier[0] for timeline in requests_by_url.values()
            for earlier, later in zip(timeline, timeline[1:]) if earlier[1] == 429]
    assert len(gaps) == throttled
    assert min(gaps) >= floor - 0.001, sorted(gaps)[:5]  # a hot loop would retry within a millisecond


def test_rejected_offset_restarts_from_the_start(tmp_path, config, capsys):
    world = World.generated(tenders=200, seed=3)  # dateModified from 2024-01-01 to 2025-10-01
    with ReplayServer(world) as server:
        db = tmp_path / "m.duckdb"
        assert ingest(db, config, server, "--since", "2025-07-01") == 0  # the newest objects
        newest = stored(db)
        assert 0 < len(newest) < 100
        assert ingest(db, config, server, "--full", "--limit", "100") == 0  # the oldest page; cursor mid-feed
        with duckdb.connect(str(db)) as con:
            assert con.execute("SELECT count(*) FROM raw_records").fetchone() == (len(newest) + 100,)
            # the server stops accepting the stored offset (it did change format four times)
            con.execute("UPDATE cursors SET cursor = 'not-an-offset' WHERE source = 'prozorro-tenders'")
        missing = set(served(world)) - set(stored(db))
        assert len(missing) > 50  # between the cursor and the objects stored first: what a late restart loses
        changed = min(world.objects("tenders"))
        world.mutate("tenders", changed)
        server.reset_log()
        capsys.readouterr()
        assert ingest(db, config, server) == 0
        offsets, fetched = feed_offsets(server), server.object_requests()
        statuses = [status for kind, _, status in server.requests if kind == "feed"]
    # the rejected cursor, then the configured start of its chain: the --full run's, the beginning
    assert offsets[:2] == ["not-an-offset", None] and statuses[:2] == [404, 200]
    assert stored(db) == served(world)
    assert set(fetched) == missing | {changed}  # re-listing is cheap: stored objects are not fetched again
    err = capsys.readouterr().err
    warnings = [json.loads(line) for line in err.splitlines() if '"cursor rejected' in line]
    assert [(w["level"], w["source"], w["rejected"]) for w in warnings] == \
        [("warning", "prozorro-tenders", "not-an-offset")]
    run = run_rows(db)[-1]
    assert run["status"] == "complete" and run["counts"]["restarts"] == 1
    assert run["counts"]["sources"]["prozorro-tenders"]["restart"] == {"rejected": "not-an-offset", "from": ""}


def test_empty_feed_on_the_first_run(tmp_path, config):
    with ReplayServer(World()) as server:
        db = tmp_path / "m.duckdb"
        assert ingest(db, config, server, "--full") == 0
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw_records").fetchone() == (0,)
        assert con.execute("SELECT status FROM runs").fetchall() == [("complete",)]


def test_feed_growing_while_it_is_read(tmp_path, config):
    world = World.generated(tenders=800, seed=8)
    extra = list(World.generated(tenders=200, seed=88).objects("tenders").values())
    added_at: list[float] = []
    with ReplayServer(world, Faults(latency=0.002)) as server:
        server.requests = log = TimedLog()

        def grow() -> None:
            while not server.count("feed") and time.monotonic() < deadline:
                time.sleep(0.001)
            for envelope in extra:
                world.add("tenders", envelope)
                added_at.append(time.monotonic())
                time.sleep(0.002)

        deadline = time.monotonic() + 60
        writer = threading.Thread(target=grow)
        writer.start()
        db = tmp_path / "m.duckdb"
        assert ingest(db, config, server, "--full") == 0
        feed_times = [when for when, (kind, _, _) in zip(log.times, log, strict=True) if kind == "feed"]
        writer.join()
        assert ingest(db, config, server) == 0  # whatever the first run did not see yet
    # objects were really added while the first run was reading the feed
    during = [when for when in added_at if feed_times[0] < when < feed_times[-1]]
    assert len(during) > 0, (feed_times[0], feed_times[-1], added_at[:1])
    assert stored(db) == served(world)
    assert len(served(world)) == 1000


def test_sigterm_stops_after_the_committed_page_and_the_next_run_finishes(tmp_path, config):
    world = World.generated(tenders=3000, seed=6)
    with ReplayServer(world, Faults(latency=0.003, seed=1)) as server:
        db = tmp_path / "m.duckdb"
        process = _ingest_process(db, config, server.url, "--full")
        deadline = time.monotonic() + 60
        while server.count("object") < 400 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
        assert process.poll() is None, "the ingest finished before the signal; make the world larger"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert b"stop requested" in process.stderr.read()
        with duckdb.connect(str(db), read_only=True) as con:
            status, counts = con.execute("SELECT status, counts->>'$.new' FROM runs").fetchone()
            cursor = con.execute("SELECT cursor FROM cursors").fetchone()[0]
            stored_ids = con.execute("SELECT count(*) FROM raw_records").fetchone()[0]
        assert status == "incomplete"
        assert 0 < int(counts) == stored_ids < 3000
        assert cursor  # the position after the last committed page
        assert ingest(db, config, server) == 0
    assert stored(db) == served(world)
