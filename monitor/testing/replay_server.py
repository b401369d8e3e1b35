"""A loopback HTTP server that serves ProZorro-shaped feeds and objects from an in-memory world.

It pages its feeds the way the real openprocurement API does (``/api/2.5/{resource}``: ``offset``,
``limit``, ``descending``, ``mode``, ``opt_fields``; ``next_page`` always present, ``prev_page`` when
the request had ``offset`` or ``descending``; empty ``data`` at the end with the offset echoed;
opaque offsets in the current ``{public_modified}.{skip_len}.{md5}`` form, and the legacy float,
``{seconds}.{ordinal}`` and ISO-date forms accepted), serves ``/api/2.5/{resource}/{id}``
envelopes, lets a test change objects between runs (a changed object moves to the end of its feed
with a later ``dateModified``), and injects faults (429 with Retry-After, 500/502/503, connection
reset, truncated JSON, an HTML error page, added latency) drawn from a seeded random generator.

Used by end-to-end tests of the ingest client, by benchmarks and by an offline demo::

    world = World.generated(250, contracts=50, plans=20, seed=1)
    with ReplayServer(world, Faults(rate=0.05)) as server:
        run_client(server.url)           # http://127.0.0.1:PORT/api/2.5
        world.mutate("tenders", some_id)
        server.faults = Faults()         # no faults for the next run
        ...

Command line (serves until SIGTERM or SIGINT, exit status 0)::

    python -m monitor.testing.replay_server --generate 10000 --contracts 2000 --plans 1000 --port 8080
    python -m monitor.testing.replay_server --jsonl bench/out/prozorro-100000-seed42.jsonl --fault-rate 0.02

Standard library (``http.server``) plus orjson. Nothing here goes to the network beyond the
loopback socket it listens on.

Not reproduced: the feed watermark (the real API holds back objects written in the last second;
here every write is visible at once), the CouchDB-era ``feed=changes`` view (the parameter is
ignored, as the current API ignores it), sub-resources such as ``/tenders/{id}/awards`` (404) and
the masking of ``config.restricted`` objects (objects are served as stored).
"""

from __future__ import annotations

import argparse
import bisect
import collections
import contextlib
import gc
import gzip
import hashlib
import math
import random
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode

import orjson

__all__ = ["Faults", "ReplayServer", "World", "kyiv_iso", "main"]

API_PREFIX = "/api/2.5"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
RESOURCES = ("tenders", "contracts", "plans")
FAULT_KINDS = ("429", "500", "502", "503", "reset", "truncated", "html")

# The listing views' ``listing_allowed_fields`` (api src/openprocurement/*/procedure/views/*.py);
# ``public_modified`` and ``public_ts`` are allowed everywhere. ``public_ts`` has no value here
# (this world has no MongoDB cluster time), so asking for it returns nothing extra.
_EVERYWHERE = frozenset({"public_modified", "public_ts"})
LISTING_FIELDS: dict[str, frozenset[str]] = {
    "tenders": frozenset({
        "dateCreated", "dateModified", "tenderPeriod", "qualificationPeriod", "auctionPeriod",
        "awardPeriod", "status", "tenderID", "lots", "contracts", "agreements", "procuringEntity",
        "procurementMethodType", "procurementMethod", "next_check", "mode", "stage2TenderID",
    }) | _EVERYWHERE,
    "contracts": frozenset({"dateCreated", "contractID", "dateModified", "status"}) | _EVERYWHERE,
    "plans": frozenset({
        "dateCreated", "dateModified", "status", "planID", "procuringEntity",
        "procurementMethodType", "mode",
    }) | _EVERYWHERE,
}
_OTHER_LISTING_FIELDS = frozenset({"dateCreated", "dateModified", "status"}) | _EVERYWHERE
# Name of the URL matchdict key in the real API's 404 for an unknown object.
_OBJECT_KEY = {"tenders": "tender_id", "contracts": "contract_id", "plans": "plan_id"}

JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
HTML_ERROR_PAGE = b"<html><body>502 Bad Gateway</body></html>"
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable"}


# --- time: Kyiv offsets, milliseconds ----------------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KYIV_WINTER = timezone(timedelta(hours=2))
_KYIV_SUMMER = timezone(timedelta(hours=3))
_ONE_MS = timedelta(milliseconds=1)
_ONE_US = timedelta(microseconds=1)
_summer_cache: dict[int, tuple[int, int]] = {}


def _summer_time_ms(year: int) -> tuple[int, int]:
    """Kyiv summer time in ``year`` as epoch milliseconds [start, end): EU rule, from 01:00 UTC
    on the last Sunday of March to 01:00 UTC on the last Sunday of October."""
    bounds = _summer_cache.get(year)
    if bounds is None:
        def last_sunday_1am(month: int) -> int:
            day = date(year, month, 31)  # March and October both have 31 days
            day -= timedelta(days=(day.weekday() + 1) % 7)
            return (datetime(day.year, day.month, day.day, 1, tzinfo=UTC) - EPOCH) // _ONE_MS
        bounds = _summer_cache[year] = (last_sunday_1am(3), last_sunday_1am(10))
    return bounds


def _kyiv_zone(ms: int) -> timezone:
    start, end = _summer_time_ms((EPOCH + ms * _ONE_MS).year)
    return _KYIV_SUMMER if start <= ms < end else _KYIV_WINTER


def kyiv_iso(ms: int) -> str:
    """ISO 8601 text of an instant given in epoch milliseconds, in Kyiv time (+02:00 / +03:00),
    formatted as the API formats dates (``2024-03-05T10:22:31.123000+02:00``)."""
    return (EPOCH + ms * _ONE_MS).astimezone(_kyiv_zone(ms)).isoformat()


def _parse_datetime(text: Any) -> datetime | None:
    """An aware datetime from ISO 8601 text (a date alone or a naive time is read as Kyiv time)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        guess = moment.replace(tzinfo=_KYIV_WINTER)
        if _kyiv_zone((guess - EPOCH) // _ONE_MS) is _KYIV_SUMMER:
            guess = moment.replace(tzinfo=_KYIV_SUMMER)
        moment = guess
    return moment


def _ceil_ms(moment: datetime) -> int:
    microseconds = (moment - EPOCH) // _ONE_US
    return -(-microseconds // 1000)


# --- offsets -----------------------------------------------------------------------------------

_CURRENT_OFFSET = re.compile(r"(\d+(?:\.\d+)?)\.(\d+)\.([0-9a-f]{32})\Z")


class _BadOffset(ValueError):
    pass


@dataclass(frozen=True)
class _Offset:
    """A parsed feed offset. ``digest`` None: legacy form, strictly after (before, descending)
    ``value``; otherwise the current form: from ``value`` inclusive, skipping the first
    ``skip`` objects at exactly ``value`` if the md5 of their sorted ids equals ``digest``."""

    value: float
    skip: int = 0
    digest: str | None = None


def _parse_offset(text: str) -> _Offset:
    text = text.replace(" ", "+")  # an unencoded "+" of an ISO date arrives as a space
    match = _CURRENT_OFFSET.match(text)
    if match:
        return _Offset(float(match[1]), int(match[2]), match[3])
    try:
        value = float(text)  # "1696888800.0", and the "{seconds}.{10-digit ordinal}" form
    except ValueError:
        moment = _parse_datetime(text)
        if moment is None:
            raise _BadOffset(text) from None
        value = moment.timestamp()
    if not math.isfinite(value):
        raise _BadOffset(text)
    return _Offset(value)


def _group_digest(ids: list[str]) -> str:
    return hashlib.md5(",".join(sorted(ids)).encode("ascii", "replace")).hexdigest()


# --- the world ---------------------------------------------------------------------------------

class _Entry:
    __slots__ = ("body", "envelope", "id", "is_test", "listing", "ms", "pm", "public")


class _Index:
    """Feed order of one resource and mode: parallel lists sorted by public_modified."""

    __slots__ = ("entries", "pms")

    def __init__(self) -> None:
        self.pms: list[float] = []
        self.entries: list[_Entry] = []

    def append(self, entry: _Entry) -> None:
        if self.pms and entry.pm <= self.pms[-1]:  # never happens: stamps only grow
            position = bisect.bisect_right(self.pms, entry.pm)
            self.pms.insert(position, entry.pm)
            self.entries.insert(position, entry)
            return
        self.pms.append(entry.pm)
        self.entries.append(entry)

    def discard(self, entry: _Entry) -> None:
        position = bisect.bisect_left(self.pms, entry.pm)
        while position < len(self.pms) and self.pms[position] == entry.pm:
            if self.entries[position] is entry:
                del self.pms[position], self.entries[position]
                return
            position += 1


class World:
    """Objects per resource ("tenders", "contracts", "plans"), each with an internal write time.

    Every write (``add``, ``mutate``) stamps the object with a new ``public_modified``: epoch
    seconds with millisecond precision, strictly greater than any stamp before it in this world,
    and never earlier than the object's ``dateModified``. The feed lists objects by that stamp,
    each once, at its latest write. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._entries: dict[str, dict[str, _Entry]] = {name: {} for name in RESOURCES}
        self._indexes: dict[str, dict[str, _Index]] = {}
        self._clock_ms = 0
        for name in RESOURCES:
            self._indexes[name] = {"real": _Index(), "test": _Index(), "all": _Index()}

    # -- writes --

    def add(self, resource: str, envelope: dict) -> str:
        """Store an envelope ``{"data": {...}, "config": {...}}`` (plans: ``{"data": {...}}``), a
        copy of it, as a new write: it goes to the end of the feed. An object with the same id is
        replaced. ``data.dateModified`` is kept as given (set from the stamp when missing).
        Returns ``data["id"]``."""
        if not isinstance(envelope, dict) or not isinstance(envelope.get("data"), dict):
            raise TypeError("an envelope is a dict with a dict under 'data'")
        envelope = orjson.loads(orjson.dumps(envelope))
        data = envelope["data"]
        if not isinstance(data.get("id"), str) or not data["id"]:
            data["id"] = f"{random.getrandbits(128):032x}"
        modified = _parse_datetime(data.get("dateModified"))
        earliest = _ceil_ms(modified) if modified else (time.time_ns() // 1_000_000)
        with self._lock:
            return self._write(resource, envelope, None, self._tick(earliest)).id

    def mutate(self, resource: str, object_id: str, change: Callable[[dict], Any] | None = None) -> None:
        """Change an object: ``change(data)`` edits ``data`` in place (default: append
        " (змінено)" to the title). It gets a new, later ``dateModified`` (Kyiv time, equal to
        its new stamp) and moves to the end of the feed."""
        with self._lock:
            entry = self._entry(resource, object_id)
            envelope = self._envelope_of(entry)
            data = envelope["data"]
            before = _parse_datetime(data.get("dateModified"))
            if change is None:
                data["title"] = f"{data.get('title', '')} (змінено)"
            else:
                change(data)
            earliest = _ceil_ms(before) + 1 if before else 0
            ms = self._tick(earliest)
            data["dateModified"] = kyiv_iso(ms)
            data["id"] = object_id
            self._write(resource, envelope, None, ms)

    def remove(self, resource: str, object_id: str) -> None:
        """Delete an object: gone from the feed, and its GET answers 404."""
        with self._lock:
            entry = self._entry(resource, object_id)
            self._unindex(resource, entry)
            del self._entries[resource][object_id]

    # -- reads --

    def objects(self, resource: str) -> dict[str, dict]:
        """id -> envelope, the current state of every object of ``resource`` in feed order
        (the live objects: read them, do not change them; use ``mutate``)."""
        with self._lock:
            entries = sorted(self._entries.get(resource, {}).values(), key=lambda entry: entry.pm)
            return {entry.id: self._envelope_of(entry) for entry in entries}

    def resources(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._entries)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(entries) for entries in self._entries.values())

    def public_modified(self, resource: str, object_id: str) -> float:
        """The internal write stamp of an object (what the feed is ordered by)."""
        with self._lock:
            return self._entry(resource, object_id).pm

    def body(self, resource: str, object_id: str) -> bytes | None:
        """The serialized envelope a GET returns, or None if there is no such object."""
        with self._lock:
            entry = self._entries.get(resource, {}).get(object_id)
            return None if entry is None else entry.body

    def page(self, resource: str, *, offset: _Offset | None = None, descending: bool = False,
             limit: int = DEFAULT_LIMIT, mode: str | None = None,
             fields: frozenset[str] = frozenset()) -> tuple[list[dict], tuple[float, list[str]] | None,
                                                         tuple[float, list[str]] | None]:
        """One feed page: its items, and the (stamp, ids) groups at its first and last item."""
        mode_key = "test" if mode == "test" else "all" if mode == "_all_" else "real"
        with self._lock:
            index = self._indexes.get(resource, {}).get(mode_key)
            if index is None:
                return [], None, None
            pms, entries = index.pms, index.entries
            if not descending:
                if offset is None:
                    start = 0
                elif offset.digest is None:
                    start = bisect.bisect_right(pms, offset.value)
                else:
                    start = bisect.bisect_left(pms, offset.value)
                    tied = [entry.id for entry in entries[start:start + offset.skip]
                            if entry.pm == offset.value]
                    if offset.skip and len(tied) == offset.skip and _group_digest(tied) == offset.digest:
                        start += offset.skip
                chosen = entries[start:start + limit]
            else:
                if offset is None:
                    end = len(pms)
                elif offset.digest is None:
                    end = bisect.bisect_left(pms, offset.value)
                else:
                    end = bisect.bisect_right(pms, offset.value)
                    tied = [entry.id for entry in entries[max(0, end - offset.skip):end]
                            if entry.pm == offset.value]
                    if offset.skip and len(tied) == offset.skip and _group_digest(tied) == offset.digest:
                        end -= offset.skip
                chosen = entries[max(0, end - limit):end][::-1]
            items = []
            for entry in chosen:
                listing = entry.listing
                item = {"dateModified": listing.get("dateModified")}
                for name in fields:
                    if name in listing:
                        item[name] = listing[name]
                    elif name == "public_modified":
                        item[name] = entry.pm
                item["id"] = entry.id
                items.append(item)
            if not chosen:
                return items, None, None
            first = [entry.id for entry in chosen if entry.pm == chosen[0].pm]
            last = [entry.id for entry in chosen if entry.pm == chosen[-1].pm]
            return items, (chosen[0].pm, first), (chosen[-1].pm, last)

    # -- construction --

    @classmethod
    def generated(cls, tenders: int, contracts: int = 0, plans: int = 0, seed: int = 0,
                  span: tuple[datetime, datetime] | None = None) -> World:
        """Realistic compact ProZorro objects (~1.5-3 KB each), deterministic for a seed: see
        ``_Generator``. Stamps equal the instants of ``dateModified``, strictly increasing.
        ``span`` (aware datetimes) is when the objects are created; default 2024-01-01 to 2025-10-01."""
        world = cls()
        generator = _Generator(seed) if span is None else _Generator(
            seed, (span[0] - EPOCH) // _ONE_MS, (span[1] - EPOCH) // _ONE_MS)
        with _gc_paused(), world._lock:
            for resource, ms, envelope in generator.build(tenders, contracts, plans):
                entry = world._write(resource, envelope, None, world._tick(ms))
                entry.envelope = None  # parsed again on demand: a large world stays small
        return world

    @classmethod
    def from_jsonl(cls, path: str | Path, resource: str = "tenders") -> World:
        """One envelope per line (``bench/generate.py --kind prozorro`` output; ``.gz`` too).

        Objects are written in ``dateModified`` order (stable for ties), each stamped at its
        ``dateModified`` (or 1 ms after the previous stamp), so ``offset=<ISO date>`` selects the
        objects modified after that date. Lines are served byte for byte as read."""
        world = cls()
        path = Path(path)
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        opener = gzip.open if gzipped else open
        rows = []
        keep = LISTING_FIELDS.get(resource, _OTHER_LISTING_FIELDS) | {"id", "mode", "status"}
        with _gc_paused(), opener(path, "rb") as lines:
            for number, line in enumerate(lines, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    envelope = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON: {exc}") from None
                data = envelope.get("data") if isinstance(envelope, dict) else None
                if not isinstance(data, dict) or not isinstance(data.get("id"), str):
                    raise ValueError(f"{path}:{number}: not an envelope with data.id")  # noqa: TRY004
                modified = _parse_datetime(data.get("dateModified"))
                if modified is None:
                    raise ValueError(f"{path}:{number}: data.dateModified missing or not ISO 8601")
                # Only what the feed needs stays parsed; the line itself is the GET body.
                slim = {"data": {name: data[name] for name in keep if name in data}}
                rows.append((_ceil_ms(modified), number, line, slim))
        rows.sort(key=lambda row: (row[0], row[1]))
        with _gc_paused(), world._lock:
            for ms, _, line, envelope in rows:
                entry = world._write(resource, envelope, line, world._tick(ms))
                entry.envelope = None  # parsed again on demand; keeps memory near the file size
        return world

    # -- internals (call with the lock held) --

    def _tick(self, earliest_ms: int) -> int:
        self._clock_ms = max(int(earliest_ms), self._clock_ms + 1)
        return self._clock_ms

    def _entry(self, resource: str, object_id: str) -> _Entry:
        try:
            return self._entries[resource][object_id]
        except KeyError:
            raise KeyError(f"no {resource} object {object_id!r} in this world") from None

    def _envelope_of(self, entry: _Entry) -> dict:
        if entry.envelope is None:
            entry.envelope = orjson.loads(entry.body)
        return entry.envelope

    def _unindex(self, resource: str, entry: _Entry) -> None:
        indexes = self._indexes[resource]
        if entry.public:
            indexes["all"].discard(entry)
            indexes["test" if entry.is_test else "real"].discard(entry)

    def _write(self, resource: str, envelope: dict, body: bytes | None, ms: int) -> _Entry:
        if resource not in self._entries:
            self._entries[resource] = {}
            self._indexes[resource] = {"real": _Index(), "test": _Index(), "all": _Index()}
        data = envelope["data"]
        object_id = data["id"]
        old = self._entries[resource].get(object_id)
        if old is not None:
            self._unindex(resource, old)
        if not data.get("dateModified"):
            data["dateModified"] = kyiv_iso(ms)
        allowed = LISTING_FIELDS.get(resource, _OTHER_LISTING_FIELDS)
        entry = _Entry()
        entry.id, entry.ms, entry.pm = object_id, ms, ms / 1000
        entry.envelope = envelope
        entry.body = body if body is not None else orjson.dumps(envelope)
        entry.listing = {name: data[name] for name in allowed if name in data}
        entry.is_test = data.get("mode") == "test"
        entry.public = data.get("status") not in ("draft", "deleted")  # never in the feed
        self._entries[resource][object_id] = entry
        if entry.public:
            indexes = self._indexes[resource]
            indexes["all"].append(entry)
            indexes["test" if entry.is_test else "real"].append(entry)
        return entry


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic GC while building many objects (none of them cyclic): the repeated full
    collections of a growing heap otherwise double the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- faults ------------------------------------------------------------------------------------

@dataclass
class Faults:
    rate: float = 0.0                 # probability that a request gets a fault
    kinds: tuple[str, ...] = FAULT_KINDS
    retry_after: str | None = "1"     # Retry-After header value sent with 429 ("0" allowed)
    latency: float = 0.0              # seconds added before every response
    seed: int = 0                     # faults are drawn from random.Random(seed): reproducible
    feed_only: bool = False           # apply faults only to feed pages

    def __post_init__(self) -> None:
        self.kinds = tuple(str(kind) for kind in self.kinds)
        unknown = sorted(set(self.kinds) - set(FAULT_KINDS))
        if unknown:
            raise ValueError(f"unknown fault kind(s) {unknown}; known: {', '.join(FAULT_KINDS)}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("Faults.rate is a probability between 0 and 1")
        if self.latency < 0:
            raise ValueError("Faults.latency cannot be negative")


# --- the server --------------------------------------------------------------------------------

def _error_body(location: str, name: str, description: str) -> bytes:
    return orjson.dumps({"status": "error",
                         "errors": [{"location": location, "name": name, "description": description}]})


_NOT_FOUND_URL = _error_body("url", "url", "Not Found")
_SERVER_ERRORS = {
    500: _error_body("body", "data", "Internal Server Error"),
    502: _error_body("body", "data", "Bad Gateway"),
    503: _error_body("body", "data", "Service Unavailable"),
}
_TOO_MANY = _error_body("url", "url", "Too Many Requests")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ReplayServer/1.0"
    disable_nagle_algorithm = True
    replay: ReplayServer  # set on the per-server subclass

    def setup(self) -> None:
        super().setup()
        self.replay._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.replay._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.replay._handle(self)

    def _not_allowed(self) -> None:
        self.close_connection = True  # a HEAD client would not read the body: do not reuse
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(length)
        self.replay._handle(self, allowed=False)

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _not_allowed


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can hang on a box
        # without DNS; a loopback test server needs none of it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # client went away, connection reset: not worth a traceback
        super().handle_error(request, client_address)


class ReplayServer:
    """Serves ``world`` on ``http://host:port{api_prefix}`` from a daemon thread.

    ``faults`` may be replaced at any time (its random generator restarts from its seed when
    the object is replaced). ``requests`` logs ``(kind, path_with_query, status)`` for every
    request, kind "feed", "object" or "other"; a connection reset is logged with status 0.
    """

    def __init__(self, world: World, faults: Faults | None = None, host: str = "127.0.0.1",
                 port: int = 0, api_prefix: str = API_PREFIX) -> None:
        self.world = world
        self.faults = faults if faults is not None else Faults()
        self.host, self.port = host, port
        self.api_prefix = "/" + api_prefix.strip("/") if api_prefix.strip("/") else ""
        self.url = ""
        self.requests: list[tuple[str, str, int]] = []
        self._log_lock = threading.Lock()
        self._fault_lock = threading.Lock()
        self._rng: random.Random | None = None
        self._rng_for: Faults | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- lifecycle --

    def start(self) -> Self:
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"replay": self})
        self._stopping = False
        self._server = _Server((self.host, self.port), handler)
        self.port = self._server.server_address[1]
        self.url = f"http://{self.host}:{self.port}{self.api_prefix}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"replay-server-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping = True
        server.shutdown()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:  # wake handler threads waiting on keep-alive connections
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- request log --

    def count(self, kind: str | None = None, status: int | None = None) -> int:
        with self._log_lock:
            return sum(1 for logged_kind, _, logged_status in self.requests
                       if (kind is None or logged_kind == kind) and (status is None or logged_status == status))

    def object_requests(self) -> collections.Counter:
        """object id -> number of GETs (all statuses, faults included)."""
        with self._log_lock:
            return collections.Counter(path.partition("?")[0].rpartition("/")[2]
                                       for kind, path, _ in self.requests if kind == "object")

    def reset_log(self) -> None:
        with self._log_lock:
            self.requests.clear()

    # -- internals --

    def _track(self, connection: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            if alive:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _log(self, kind: str, path: str, status: int) -> None:
        with self._log_lock:
            self.requests.append((kind, path, status))

    def _route(self, path: str) -> tuple[str, str | None, str | None]:
        prefix = self.api_prefix + "/"
        if path.startswith(prefix):
            parts = path[len(prefix):].split("/")
            if parts[0] in RESOURCES or parts[0] in self.world.resources():
                if len(parts) == 1:
                    return "feed", parts[0], None
                if len(parts) == 2 and parts[1]:
                    return "object", parts[0], parts[1]
        return "other", None, None

    def _draw_fault(self, faults: Faults, kind: str) -> str | None:
        if faults.rate <= 0 or not faults.kinds or (faults.feed_only and kind != "feed"):
            return None
        with self._fault_lock:
            if self._rng_for is not faults:
                self._rng, self._rng_for = random.Random(faults.seed), faults
            if self._rng.random() >= faults.rate:
                return None
            return self._rng.choice(faults.kinds)

    def _handle(self, handler: _Handler, allowed: bool = True) -> None:
        raw_path = handler.path
        path, _, query = raw_path.partition("?")
        kind, resource, object_id = self._route(path)
        faults = self.faults
        if self._stopping:
            handler.close_connection = True
        if faults.latency > 0:
            time.sleep(faults.latency)
        fault = self._draw_fault(faults, kind)
        if fault == "reset":
            self._log(kind, raw_path, 0)
            self._reset(handler)
            return
        headers: tuple[tuple[str, str], ...] = ()
        content_type = JSON_TYPE
        if fault == "429":
            status, body = 429, _TOO_MANY
            if faults.retry_after is not None:
                headers = (("Retry-After", str(faults.retry_after)),)
        elif fault in ("500", "502", "503"):
            status = int(fault)
            body = _SERVER_ERRORS[status]
        elif fault == "html":
            status, body, content_type = 200, HTML_ERROR_PAGE, HTML_TYPE
        else:
            if not allowed:
                status, body = 405, _error_body("url", "method", "Method Not Allowed")
            elif kind == "feed":
                status, body = self._feed(handler, resource, query)
            elif kind == "object":
                body = self.world.body(resource, object_id)
                if body is None:
                    status, body = 404, _error_body("url", _OBJECT_KEY.get(resource, "id"), "Not Found")
                else:
                    status = 200
            else:
                status, body = 404, _NOT_FOUND_URL
            if fault == "truncated":
                status, body = 200, body[: len(body) // 2]
        self._log(kind, raw_path, status)
        self._send(handler, status, body, content_type, headers)

    def _feed(self, handler: _Handler, resource: str, query: str) -> tuple[int, bytes]:
        params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params[key] = value  # the last value wins, as webob's params.get
        page_params: dict[str, Any] = {}  # the order the real API builds next_page's query in
        if params.get("mode"):
            page_params["mode"] = params["mode"]
        offset = None
        if params.get("offset"):
            try:
                offset = _parse_offset(params["offset"])
            except _BadOffset:
                return 404, _error_body("querystring", "offset", "Invalid offset provided")
            page_params["offset"] = params["offset"]
        limit = DEFAULT_LIMIT
        if params.get("limit"):
            try:
                limit = int(params["limit"])
            except ValueError as exc:
                return 400, _error_body("querystring", "limit", str(exc.args[0]))
            if limit < 1:
                return 400, _error_body("querystring", "limit", "limit must be at least 1")
            limit = min(limit, MAX_LIMIT)
            page_params["limit"] = limit
        descending = bool(params.get("descending"))
        if descending:
            page_params["descending"] = 1
        fields: frozenset[str] = frozenset()
        if params.get("opt_fields"):
            allowed = LISTING_FIELDS.get(resource, _OTHER_LISTING_FIELDS)
            fields = frozenset(params["opt_fields"].split(",")) & allowed - {"dateModified"}
            if fields:
                page_params["opt_fields"] = ",".join(sorted(fields))
        prev_params = dict(page_params)
        if descending:
            del prev_params["descending"]
        else:
            prev_params["descending"] = 1

        items, first, last = self.world.page(resource, offset=offset, descending=descending,
                                             limit=limit, mode=params.get("mode"), fields=fields)
        if items:
            page_params["offset"] = f"{last[0]!r}.{len(last[1])}.{_group_digest(last[1])}"
            prev_params["offset"] = f"{first[0]!r}.{len(first[1])}.{_group_digest(first[1])}"
        else:
            prev_params.pop("offset", None)  # empty page: prev_page.offset is ""
        host = handler.headers.get("Host") or f"{self.host}:{self.port}"
        document: dict[str, Any] = {"data": items, "next_page": self._page_link(host, resource, page_params)}
        if params.get("descending") or params.get("offset"):
            document["prev_page"] = self._page_link(host, resource, prev_params)
        return 200, orjson.dumps(document)

    def _page_link(self, host: str, resource: str, params: dict[str, Any]) -> dict[str, str]:
        query = urlencode(params)
        path = f"{self.api_prefix}/{resource}" + (f"?{query}" if query else "")
        return {"offset": params.get("offset", ""), "path": path, "uri": f"http://{host}{path}"}

    @staticmethod
    def _send(handler: _Handler, status: int, body: bytes, content_type: str,
              headers: tuple[tuple[str, str], ...] = ()) -> None:
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
                "Server: ReplayServer/1.0",
                f"Content-Type: {content_type}",
                f"Content-Length: {len(body)}"]
        head.extend(f"{name}: {value}" for name, value in headers)
        if handler.close_connection:
            head.append("Connection: close")
        elif handler.request_version == "HTTP/1.0":
            head.append("Connection: keep-alive")
        try:
            handler.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        except OSError:
            handler.close_connection = True

    @staticmethod
    def _reset(handler: _Handler) -> None:
        """Drop the connection without a response; SO_LINGER 0 makes the close send a RST."""
        handler.close_connection = True
        connection = handler.connection
        try:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        connection.close()  # the descriptor closes (RST) once the handler's reader is closed


# --- generated objects -------------------------------------------------------------------------

_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
_RANGE_START_MS = (datetime(2024, 1, 1, tzinfo=_KYIV_WINTER) - EPOCH) // _ONE_MS
_RANGE_END_MS = (datetime(2025, 10, 1, tzinfo=_KYIV_SUMMER) - EPOCH) // _ONE_MS

# The 27 official region names (standards classifiers/ua_regions.json), a city, a postal prefix
# and a weight (occupied territories rarely buy through ProZorro).
_REGIONS = (
    ("Автономна Республіка Крим", "м. Сімферополь", "95", 0.05),
    ("Вінницька область", "м. Вінниця", "21", 1.0),
    ("Волинська область", "м. Луцьк", "43", 0.8),
    ("Дніпропетровська область", "м. Дніпро", "49", 1.6),
    ("Донецька область", "м. Краматорськ", "84", 0.6),
    ("Житомирська область", "м. Житомир", "10", 0.8),
    ("Закарпатська область", "м. Ужгород", "88", 0.7),
    ("Запорізька область", "м. Запоріжжя", "69", 0.8),
    ("Івано-Франківська область", "м. Івано-Франківськ", "76", 0.8),
    ("Київська область", "м. Біла Церква", "09", 1.2),
    ("Кіровоградська область", "м. Кропивницький", "25", 0.6),
    ("Луганська область", "м. Сєвєродонецьк", "93", 0.1),
    ("Львівська область", "м. Львів", "79", 1.4),
    ("Миколаївська область", "м. Миколаїв", "54", 0.7),
    ("Одеська область", "м. Одеса", "65", 1.2),
    ("Полтавська область", "м. Полтава", "36", 0.9),
    ("Рівненська область", "м. Рівне", "33", 0.7),
    ("Сумська область", "м. Суми", "40", 0.6),
    ("Тернопільська область", "м. Тернопіль", "46", 0.6),
    ("Харківська область", "м. Харків", "61", 1.2),
    ("Херсонська область", "м. Херсон", "73", 0.4),
    ("Хмельницька область", "м. Хмельницький", "29", 0.8),
    ("Черкаська область", "м. Черкаси", "18", 0.7),
    ("Чернівецька область", "м. Чернівці", "58", 0.6),
    ("Чернігівська область", "м. Чернігів", "14", 0.6),
    ("м. Київ", "м. Київ", "02", 2.0),
    ("м. Севастополь", "м. Севастополь", "99", 0.02),
)

# Buyers: name template, procuringEntity.kind, weight and profile (what kind of body it is, which
# decides what it buys). A profile's place is the building its repair works are done on.
_BUYER_TEMPLATES = (
    ("Комунальне некомерційне підприємство «Міська лікарня №{n}»", "general", 2.0, "hospital"),
    ("Обласна клінічна лікарня", "general", 0.5, "hospital"),
    ("Комунальне некомерційне підприємство «Центр первинної медико-санітарної допомоги №{n}»", "general", 1.5,
     "primary"),
    ("Територіальний центр соціального обслуговування (надання соціальних послуг)", "general", 1.5, "territorial"),
    ("Департамент соціального захисту населення", "authority", 1.0, "social"),
    ("Управління соціальної політики", "authority", 1.0, "social"),
    ("Центр надання соціальних послуг", "authority", 1.0, "social"),
    ("Будинок-інтернат для громадян похилого віку та осіб з інвалідністю №{n}", "general", 0.6, "care_home"),
    ("Управління освіти", "authority", 1.0, "education"),
    ("Заклад дошкільної освіти (ясла-садок) №{n}", "general", 1.2, "kindergarten"),
    ("Ліцей №{n}", "general", 0.8, "school"),
    ("Комунальне підприємство «Водоканал»", "special", 0.4, "utility"),
    ("Військова частина А{n4}", "defense", 0.4, "military"),
)
_PLACES = {
    "hospital": "лікарні", "primary": "амбулаторії", "territorial": "територіального центру",
    "social": "адміністративної будівлі", "care_home": "будинку-інтернату",
    "education": "закладу загальної середньої освіти", "kindergarten": "закладу дошкільної освіти",
    "school": "ліцею", "utility": "насосної станції", "military": "казарми",
}
_ANYONE = tuple(_PLACES)
_CIVIL = tuple(profile for profile in _PLACES if profile != "military")
_MEDICAL = ("hospital", "primary")
_SOCIAL = ("social", "territorial")  # social-protection departments, service centres, territorial centres
_KITCHENS = ("hospital", "care_home", "kindergarten", "school", "military")

# ДК021 codes with their official Ukrainian names (standards dk021_uk.json) and unit (code, name).
_SERVICE, _PACK, _PIECE, _KG = ("E48", "послуга"), ("PK", "упаковка"), ("H87", "штука"), ("KGM", "кілограм")
_CPV = {
    "85311000-2": ("Послуги з надання соціальної допомоги із забезпеченням проживання", _SERVICE),
    "85312000-9": ("Послуги з надання соціальної допомоги без забезпечення проживання", _SERVICE),
    "85140000-2": ("Послуги у сфері охорони здоров’я різні", _SERVICE),
    "85110000-3": ("Послуги лікувальних закладів та супутні послуги", _SERVICE),
    "33600000-6": ("Фармацевтична продукція", _PACK),
    "33690000-3": ("Лікарські засоби різні", _PACK),
    "33140000-3": ("Медичні матеріали", _PIECE),
    "33141000-0": ("Медичні матеріали нехімічні та гематологічні одноразового застосування", _PIECE),
    "33190000-8": ("Медичне обладнання та вироби медичного призначення різні", _PIECE),
    "45450000-6": ("Інші завершальні будівельні роботи", _SERVICE),
    "45260000-7": ("Покрівельні роботи та інші спеціалізовані будівельні роботи", _SERVICE),
    "15800000-6": ("Продукти харчування різні", _KG),
    "15500000-3": ("Молочні продукти", _KG),
    "03220000-9": ("Овочі, фрукти та горіхи", _KG),
    "55523100-3": ("Послуги з організації шкільного харчування", _SERVICE),
    "09130000-9": ("Нафта і дистиляти", ("LTR", "літр")),
    "09310000-5": ("Електрична енергія", ("KWH", "кіловат-година")),
    "09120000-6": ("Газове паливо", ("MTQ", "метр кубічний")),
    "30190000-7": ("Офісне устаткування та приладдя різне", _PIECE),
    "39830000-9": ("Продукція для чищення", _PIECE),
    "34110000-1": ("Легкові автомобілі", _PIECE),
    "50110000-9": ("Послуги з ремонту і технічного обслуговування мототранспортних засобів і супутнього обладнання",
                   _SERVICE),
    "18110000-3": ("Формений одяг", _PIECE),
    "44110000-4": ("Конструкційні матеріали", _KG),
    "72260000-5": ("Послуги, пов’язані з програмним забезпеченням", _SERVICE),
    "79710000-4": ("Охоронні послуги", _SERVICE),
    "90910000-9": ("Послуги з прибирання", _SERVICE),
}

# What is bought, by whom and from whom: ДК021 code, weight, usual value (UAH), the buyer profiles
# that buy it, the suppliers' trade and item descriptions ("{place}": the buyer's building). Social services are
# bought by social-protection bodies, medicines by health-care facilities, food by those with a
# kitchen; fuel, energy, stationery, repairs by anyone.
_PURCHASES = (
    ("85311000-2", 1.0, 1_500_000, _SOCIAL, "social",
     ("Послуги з догляду за особами похилого віку зі стаціонарним проживанням",)),
    ("85311000-2", 0.5, 900_000, ("social",), "social",
     ("Соціальні послуги з тимчасового притулку для осіб, які постраждали від домашнього насильства",)),
    ("85312000-9", 0.8, 800_000, _SOCIAL, "social", ("Соціальні послуги з догляду вдома",)),
    ("85312000-9", 0.4, 600_000, ("social",), "social", ("Послуги денного догляду за дітьми з інвалідністю",)),
    ("85312000-9", 0.3, 400_000, ("social",), "social",
     ("Послуги з соціального супроводу сімей у складних життєвих обставинах",)),
    ("85140000-2", 0.6, 500_000, _MEDICAL, "clinic", ("Послуги з проведення лабораторних досліджень",)),
    ("85140000-2", 0.2, 60_000, ("territorial", "care_home", "education", "kindergarten", "school", "utility"),
     "clinic", ("Послуги з медичного огляду працівників",)),
    ("85110000-3", 0.5, 1_000_000, ("social",), "clinic",
     ("Послуги з реабілітації ветеранів", "Послуги з медичної реабілітації осіб з інвалідністю")),
    ("33600000-6", 2.0, 1_200_000, ("hospital", "primary", "care_home"), "pharma",
     ("Лікарські засоби (Ібупрофен, таблетки 200 мг)", "Лікарські засоби (Парацетамол, розчин для інфузій)",
      "Лікарські засоби (Цефтріаксон, порошок для розчину)")),
    ("33690000-3", 0.8, 500_000, _MEDICAL, "pharma", ("Діагностичні тест-системи", "Вакцини та анатоксини")),
    ("33140000-3", 1.2, 250_000, ("hospital", "primary", "care_home", "territorial", "military"), "medgoods",
     ("Бинт марлевий медичний стерильний", "Шприци ін’єкційні одноразові 5 мл")),
    ("33141000-0", 0.5, 200_000, ("hospital", "primary", "care_home"), "medgoods",
     ("Рукавички оглядові нітрилові нестерильні",)),
    ("33141000-0", 0.3, 150_000, ("hospital",), "medgoods", ("Катетери внутрішньовенні периферичні",)),
    ("33190000-8", 0.3, 600_000, _MEDICAL, "medgoods", ("Монітор пацієнта",)),
    ("33190000-8", 0.3, 300_000, ("hospital", "care_home"), "medgoods", ("Ліжко функціональне медичне",)),
    ("15800000-6", 0.5, 400_000, ("kindergarten",), "food", ("Продукти харчування для закладів дошкільної освіти",)),
    ("15800000-6", 0.5, 80_000, _KITCHENS, "food", ("Цукор білий кристалічний", "Чай чорний байховий")),
    ("15500000-3", 0.4, 300_000, ("hospital", "care_home", "kindergarten", "school"), "food",
     ("Молоко питне пастеризоване", "Сир кисломолочний")),
    ("03220000-9", 0.6, 150_000, _KITCHENS, "food", ("Картопля продовольча", "Яблука свіжі", "Цибуля ріпчаста")),
    ("55523100-3", 0.3, 3_000_000, ("education", "school"), "food", ("Послуги з організації харчування учнів",)),
    ("09130000-9", 0.7, 400_000, _ANYONE, "fuel", ("Бензин А-95", "Дизельне паливо")),
    ("09310000-5", 0.6, 1_500_000, _ANYONE, "energy",
     ("Електрична енергія для потреб закладу", "Постачання електричної енергії споживачу")),
    ("09120000-6", 0.3, 1_000_000, _CIVIL, "energy", ("Природний газ для потреб опалення",)),
    ("30190000-7", 0.8, 40_000, _ANYONE, "office", ("Канцелярське приладдя", "Папір офісний А4")),
    ("39830000-9", 0.3, 40_000, _ANYONE, "office", ("Миючі та дезінфекційні засоби",)),
    ("34110000-1", 0.1, 1_200_000, _SOCIAL, "vehicles", ("Автомобіль легковий для служби соціального таксі",)),
    ("34110000-1", 0.05, 900_000, ("primary",), "vehicles", ("Автомобіль спеціалізований для дільничних медсестер",)),
    ("34110000-1", 0.05, 1_500_000, ("military",), "vehicles", ("Автомобіль легковий підвищеної прохідності",)),
    ("50110000-9", 0.3, 100_000, ("hospital", "primary", "social", "territorial", "utility", "military"), "vehicles",
     ("Послуги з ремонту і технічного обслуговування автомобілів",)),
    ("18110000-3", 0.2, 2_000_000, ("military",), "textile", ("Костюм польовий літній", "Костюм польовий зимовий")),
    ("45450000-6", 1.0, 1_500_000, _ANYONE, "building",
     ("Поточний ремонт приміщень {place}", "Капітальний ремонт найпростішого укриття {place}")),
    ("45260000-7", 0.5, 1_200_000, _ANYONE, "building", ("Ремонт покрівлі будівлі {place}",)),
    ("44110000-4", 0.4, 150_000, _ANYONE, "building",
     ("Будівельні матеріали для поточного ремонту", "Цемент портландський")),
    ("72260000-5", 0.25, 200_000, _MEDICAL, "it", ("Супровід медичної інформаційної системи",)),
    ("72260000-5", 0.25, 80_000, _CIVIL, "it", ("Послуги з технічної підтримки програмного забезпечення",)),
    ("79710000-4", 0.5, 300_000, _CIVIL, "facility", ("Послуги з охорони приміщень", "Послуги пультової охорони")),
    ("90910000-9", 0.5, 400_000, _CIVIL, "facility",
     ("Послуги з прибирання приміщень", "Послуги з прибирання прилеглої території")),
)
_VALUE_SPREAD = 1.5  # how far (log scale) a procedure's values reach from a purchase's usual value
_INN = (("ibuprofen", "M01AE01"), ("paracetamol", "N02BE01"), ("ceftriaxone", "J01DD04"))

# Supplier trades: name words, legal forms (short, long) and the share of sole proprietors (ФОП).
_COMPANY = (("ТОВ", "ТОВАРИСТВО З ОБМЕЖЕНОЮ ВІДПОВІДАЛЬНІСТЮ"), ("ТОВ", "ТОВАРИСТВО З ОБМЕЖЕНОЮ ВІДПОВІДАЛЬНІСТЮ"),
            ("ПП", "ПРИВАТНЕ ПІДПРИЄМСТВО"))
_NONPROFIT = (("ГО", "ГРОМАДСЬКА ОРГАНІЗАЦІЯ"), ("БО", "БЛАГОДІЙНА ОРГАНІЗАЦІЯ"),
              ("ТОВ", "ТОВАРИСТВО З ОБМЕЖЕНОЮ ВІДПОВІДАЛЬНІСТЮ"))
_TRADES = {
    "social": (("Турбота", "Надія", "Милосердя", "Відродження", "Рука допомоги", "Крок назустріч", "Світанок",
                "Джерело", "Дім турботи", "Разом"), _NONPROFIT, 0.1),
    "clinic": (("Медлаб", "Діагност", "Здоров’я", "Відновлення", "Медсервіс", "Біолаб", "Реамед"), _COMPANY, 0.0),
    "pharma": (("Фармастар", "Інтерфарм", "Фармкомплект", "Вітафарм", "Ліктрейд", "Альфа-Мед", "Фармпостач",
                "Медфарм"), _COMPANY, 0.0),
    "medgoods": (("Медтехніка", "Медпостач", "Хелстрейд", "Медімпекс", "Стерилмед", "Медсвіт"), _COMPANY, 0.05),
    "food": (("Агроторг", "Продсервіс", "Поділля", "Хлібодар", "Смак", "Фудтрейд", "Галичина", "Добробут",
              "Молочна долина"), _COMPANY, 0.45),
    "fuel": (("Енергоресурс", "Нафтотрейд", "Паливо-Сервіс", "Укрнафтопостач", "Автопаливо"), _COMPANY, 0.05),
    "energy": (("Енергозбут", "Енергопостач", "Газенергозбут", "Енерго-Альянс", "Світлоенерго"), _COMPANY, 0.0),
    "office": (("Оптимум", "Вектор", "Канцсвіт", "Офіс-Партнер", "Папірус", "Чистодім"), _COMPANY, 0.4),
    "vehicles": (("Автоцентр", "Автотрейд", "Мотор-Сервіс", "Автосвіт"), _COMPANY, 0.3),
    "textile": (("Текстильпром", "Форма", "Легпромсервіс", "Швейник"), _COMPANY, 0.2),
    "building": (("Будінвест", "Дніпробуд", "Будсервіс", "Ремонтбуд", "Майстер", "Покрівля-Сервіс", "Будмонтаж"),
                 _COMPANY, 0.3),
    "it": (("Техносвіт", "Софтсервіс", "ІТ-Рішення", "Медінфо", "Інфосистеми"), _COMPANY, 0.3),
    "facility": (("Вартовий", "Щит", "Клінсервіс", "Чистота", "Охоронний дім"), _COMPANY, 0.2),
}
_NAME_SUFFIXES = ("Україна", "Плюс", "Груп", "Сервіс", "Трейд")
# A trading intermediary that wins in most goods, works and facility trades.
_GENERALIST = ("ТОВ", "ТОВАРИСТВО З ОБМЕЖЕНОЮ ВІДПОВІДАЛЬНІСТЮ", "Укрпостач")
_GENERALIST_TRADES = frozenset({"medgoods", "food", "fuel", "office", "vehicles", "textile", "building", "it",
                                "facility"})
# Habitual losers, one per trade: firms that bid often, priced above the winner, and rarely win.
_HABITUAL_LOSERS = dict.fromkeys(_TRADES, 1)

# How organizations recur: a share of new ones, a share chosen among the known ones at random,
# the rest in proportion to their past appearances (a few appear often, as in real data).
_RECUR_BUYER = (0.15, 0.45)
_RECUR_WINNER = (0.25, 0.35)
_LOSER = (0.005, 0.5)       # losing bids from newcomers; an established firm loses under this many per win
_HABITUAL_SHARE = 0.5       # a losing bid comes from the trade's habitual loser
_HABITUAL_WINS = 0.06       # a habitual loser in the tender wins it after all
_GENERALIST_SHARE = 0.03    # the intermediary wins a purchase of one of its trades
_CLOSE_BID = (0.05, 0.01)   # the runner-up bids within 0.5 % of the winner: a habitual loser, anyone else
# Bids per tender that reached qualification, and the buyers' habits in rejecting them: most reject
# the lowest bid now and then, a few reject most of what they receive.
_BID_COUNTS = ((1, 0.45), (2, 0.30), (3, 0.14), (4, 0.07), (5, 0.03), (6, 0.01))
_REJECTS = (0.08, 0.01, 0.8)  # usual rejection rate, share of strict buyers, their rejection rate
_STRICT_AT = (1,)              # and the second buyer of each profile is strict (a busy one)

_SURNAMES = ("Коваленко", "Бондаренко", "Ткаченко", "Шевченко", "Мельник", "Кравченко", "Олійник",
             "Шевчук", "Поліщук", "Лисенко", "Бойко", "Савченко", "Руденко", "Марченко", "Гнатюк")
_FIRST_NAMES = ("Олена", "Ірина", "Наталія", "Оксана", "Тетяна", "Андрій", "Олександр", "Сергій",
                "Віктор", "Юлія", "Микола", "Світлана", "Богдан", "Галина")
_STREETS = ("вул. Шевченка", "вул. Грушевського", "вул. Соборна", "вул. Незалежності", "вул. Івана Франка",
            "вул. Лесі Українки", "просп. Героїв України", "вул. Миру", "вул. Центральна", "вул. Садова")
_OWNERS = ("prom.ua", "smarttender.biz", "e-tender.biz", "zakupivli.pro", "newtend.com", "uub.com.ua")

# procurementMethodType, procurementMethod, weight, median expected value (UAH), electronic auction
_METHODS = (
    ("belowThreshold", "open", 0.27, 90_000.0, True),
    ("reporting", "limited", 0.32, 30_000.0, False),
    ("aboveThreshold", "open", 0.15, 1_500_000.0, True),
    ("priceQuotation", "selective", 0.10, 120_000.0, False),
    ("aboveThresholdUA", "open", 0.04, 2_500_000.0, True),
    ("aboveThresholdEU", "open", 0.02, 8_000_000.0, True),
    ("negotiation", "limited", 0.03, 900_000.0, False),
    ("negotiation.quick", "limited", 0.03, 700_000.0, False),
    ("requestForProposal", "open", 0.02, 400_000.0, False),
    ("simple.defense", "open", 0.02, 600_000.0, True),
)
# Days bids are accepted (tenderPeriod), as the rules in force allow: aboveThreshold (open tenders
# under the martial-law rules, Decree 1178) at least 7, aboveThresholdUA 15, aboveThresholdEU 30,
# simplified procurements and price quotations a few days: (from, to, weight) ranges.
_TENDER_DAYS = {
    "belowThreshold": ((3, 7, 1.0),),
    "priceQuotation": ((3, 7, 1.0),),
    "simple.defense": ((3, 7, 1.0),),
    "requestForProposal": ((5, 10, 1.0),),
    "aboveThreshold": ((7, 10, 0.75), (11, 21, 0.25)),
    "aboveThresholdUA": ((15, 25, 1.0),),
    "aboveThresholdEU": ((30, 40, 1.0),),
}
# Days between an award and the earliest signature, where the award can be challenged (AMCU).
_STANDSTILL_DAYS = {"aboveThreshold": 5, "aboveThresholdUA": 10, "aboveThresholdEU": 10, "negotiation": 10,
                    "negotiation.quick": 5}
_STATUSES = {
    "open": (("complete", 0.48), ("active.tendering", 0.10), ("active.qualification", 0.08),
             ("active.awarded", 0.07), ("unsuccessful", 0.15), ("cancelled", 0.12)),
    "selective": (("complete", 0.55), ("active.tendering", 0.10), ("active.qualification", 0.10),
                  ("unsuccessful", 0.15), ("cancelled", 0.10)),
    "limited": (("complete", 0.70), ("active", 0.20), ("cancelled", 0.10)),
}
_CANCEL_REASONS = (("noDemand", "Відсутність подальшої потреби в закупівлі"),
                   ("expensesCut", "Скорочення видатків на закупівлю"),
                   ("unFixable", "Неможливість усунення виявлених порушень"))


def _weighted(rng: random.Random, options: tuple, weight_at: int) -> Any:
    return rng.choices(options, weights=[option[weight_at] for option in options])[0]


class _Generator:
    """Builds compact, realistic tenders, contracts and plans from one random.Random(seed).

    A purchase (``_PURCHASES``) decides the ДК021 code and item texts, which kind of buyer makes it
    and which trade supplies it; buyers and suppliers recur (``_RECUR_*``). Competitive tenders get
    bids spread a few percent apart, awarded from the lowest after the bids the buyer rejects;
    habitual losers, a trading intermediary and strict buyers appear as in real markets. Plans
    either describe the purchase of a tender (same buyer, items and method, a budget close to the
    expected value, a planned start before it) or stand alone.
    """

    class _Pool:
        """Organizations of one kind, and how often each has appeared."""

        __slots__ = ("index_of", "losses", "members", "tickets", "wins")

        def __init__(self) -> None:
            self.members: list[dict] = []
            self.index_of: dict[str, int] = {}  # identifier id -> index
            self.tickets: list[int] = []  # one per appearance: the member's index
            self.wins: list[int] = []     # per member: contested tenders it won
            self.losses: list[int] = []   # per member: valid bids it lost

        def add(self, member: dict) -> int:
            self.index_of[member["identifier"]["id"]] = len(self.members)
            self.members.append(member)
            self.wins.append(0)
            self.losses.append(0)
            return len(self.members) - 1

    def __init__(self, seed: int, start_ms: int = _RANGE_START_MS, end_ms: int = _RANGE_END_MS) -> None:
        self.rng = random.Random(seed)
        self.start_ms, self.end_ms = start_ms, end_ms  # objects are created within [start, end)
        self.day_counters: dict[str, int] = {}
        self.edrpou_seen: set[str] = set()
        self.names_seen: set[str] = set()
        self.buyers: dict[str, _Generator._Pool] = collections.defaultdict(_Generator._Pool)     # by profile
        self.suppliers: dict[str, _Generator._Pool] = collections.defaultdict(_Generator._Pool)  # by trade
        self.profiles: dict[str, str] = {}     # buyer EDRPOU -> profile
        self.reject_rates: dict[str, float] = {}  # buyer EDRPOU -> share of bids it rejects
        self.habitual: dict[str, list[dict]] = {}
        self.habitual_ids: set[str] = set()
        self.generalist: dict | None = None
        self.purchase_weights: dict[float, list[float]] = {}

    # -- small pieces --

    @staticmethod
    def copy(value: Any) -> Any:
        return orjson.loads(orjson.dumps(value))

    def hex_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def edrpou(self, digits: int = 8) -> str:
        while True:
            value = f"{self.rng.randrange(10 ** (digits - 1), 10 ** digits)}"
            if value not in self.edrpou_seen:
                self.edrpou_seen.add(value)
                return value

    def phone(self) -> str:
        return f"+380{self.rng.choice((44, 50, 67, 63, 97, 93, 66))}{self.rng.randrange(1_000_000, 9_999_999)}"

    def person(self) -> str:
        return f"{self.rng.choice(_SURNAMES)} {self.rng.choice(_FIRST_NAMES)}"

    def address(self, region: tuple) -> dict:
        name, city, postal, _ = region
        return {"streetAddress": f"{self.rng.choice(_STREETS)}, {self.rng.randint(1, 120)}",
                "locality": city, "region": name,
                "postalCode": f"{postal}{self.rng.randrange(0, 999):03d}", "countryName": "Україна"}

    def new_buyer(self, profile: str, position: int) -> dict:
        rng = self.rng
        region = _weighted(rng, _REGIONS, 3)
        template, kind, _, _ = _weighted(rng, [t for t in _BUYER_TEMPLATES if t[3] == profile], 2)
        name = template.format(n=rng.randint(1, 12), n4=rng.randint(1000, 4999))
        edrpou = self.edrpou()
        self.profiles[edrpou] = profile
        strict = position in _STRICT_AT or rng.random() < _REJECTS[1]
        self.reject_rates[edrpou] = _REJECTS[2] if strict else _REJECTS[0] * rng.uniform(0.3, 1.7)
        return {"name": name,
                "identifier": {"scheme": "UA-EDR", "id": edrpou, "legalName": f"{name} ({region[1]})"},
                "address": self.address(region),
                "contactPoint": {"name": self.person(), "telephone": self.phone(),
                                 "email": f"zakupivli{edrpou[-4:]}@ukr.net"},
                "kind": kind}

    def firm(self, short: str, long: str, word: str, scale: str) -> dict:
        region = _weighted(self.rng, _REGIONS, 3)
        return {"name": f"{short} «{word}»", "identifier": {"scheme": "UA-EDR", "id": self.edrpou(),
                                                            "legalName": f"{long} «{word.upper()}»"},
                "address": self.address(region), "scale": scale}

    def new_supplier(self, trade: str) -> dict:
        rng = self.rng
        words, forms, sole_share = _TRADES[trade]
        if rng.random() < sole_share:
            region = _weighted(rng, _REGIONS, 3)
            name = f"ФОП {self.person()}"
            return {"name": name, "identifier": {"scheme": "UA-EDR", "id": self.edrpou(10), "legalName": name},
                    "address": self.address(region), "scale": "micro"}
        short, long = rng.choice(forms)
        for attempt in range(20):  # a name not taken yet, when one is left
            word = rng.choice(words)
            if rng.random() < 0.5 or attempt >= 10:
                word = f"{word}-{rng.choice(_NAME_SUFFIXES)}"
            if f"{short} {word}" not in self.names_seen:
                break
        self.names_seen.add(f"{short} {word}")
        return self.firm(short, long, word, rng.choice(("micro", "sme", "sme", "mid", "large")))

    def recurring(self, pool: _Generator._Pool, make: Callable[[], dict], recur: tuple[float, float]) -> int:
        """The index of a pooled organization: a new one, one of the known ones at random, or
        one in proportion to its past appearances."""
        rng = self.rng
        new_share, any_share = recur
        draw = rng.random()
        if not pool.members or draw < new_share:
            index = pool.add(make())
        elif draw < new_share + any_share:
            index = rng.randrange(len(pool.members))
        else:
            index = rng.choice(pool.tickets)
        pool.tickets.append(index)
        return index

    def purchase(self, median: float) -> tuple:
        """What is bought in a procedure whose expected values centre on ``median``: purchases
        whose usual value is near it are likelier (a stationery order is not an EU tender)."""
        weights = self.purchase_weights.get(median)
        if weights is None:
            weights = self.purchase_weights[median] = [
                row[1] * math.exp(-math.log(median / row[2]) ** 2 / (2 * _VALUE_SPREAD ** 2)) for row in _PURCHASES]
        return self.rng.choices(_PURCHASES, weights=weights)[0]

    def buyer(self, purchase: tuple) -> dict:
        profiles = purchase[3]
        weights = collections.Counter()
        for template in _BUYER_TEMPLATES:
            if template[3] in profiles:
                weights[template[3]] += template[2]
        profile = self.rng.choices(list(weights), weights=list(weights.values()))[0]
        pool = self.buyers[profile]
        index = self.recurring(pool, lambda: self.new_buyer(profile, len(pool.members)), _RECUR_BUYER)
        return self.copy(pool.members[index])

    def habitual_losers(self, trade: str) -> list[dict]:
        if trade not in self.habitual:
            self.habitual[trade] = [self.new_supplier(trade) for _ in range(_HABITUAL_LOSERS.get(trade, 0))]
            self.habitual_ids.update(firm["identifier"]["id"] for firm in self.habitual[trade])
        return self.habitual[trade]

    def winner(self, trade: str) -> dict:
        """The supplier to award."""
        if trade in _GENERALIST_TRADES and self.rng.random() < _GENERALIST_SHARE:
            if self.generalist is None:
                short, long, word = _GENERALIST
                self.generalist = self.firm(short, long, word, "mid")
            return self.copy(self.generalist)
        pool = self.suppliers[trade]
        index = self.recurring(pool, lambda: self.new_supplier(trade), _RECUR_WINNER)
        return self.copy(pool.members[index])

    def loser(self, trade: str, exclude: set[str]) -> dict:
        """A losing bidder: a habitual loser; now and then a newcomer; otherwise an established
        firm of the trade, the busier the likelier, that has lost less than ``_LOSER[1]`` bids
        per win (firms mostly bid where they can win); a habitual loser when none has."""
        rng = self.rng
        habitual = [firm for firm in self.habitual_losers(trade) if firm["identifier"]["id"] not in exclude]
        if habitual and rng.random() < _HABITUAL_SHARE:
            return self.copy(rng.choice(habitual))
        pool = self.suppliers[trade]
        index = None
        if rng.random() >= _LOSER[0]:
            known = [0 if member["identifier"]["id"] in exclude else wins ** 3
                     for member, wins in zip(pool.members, pool.wins)]
            room = [weight if losses < _LOSER[1] * wins - 0.5 else 0
                    for weight, wins, losses in zip(known, pool.wins, pool.losses)]
            if any(room):
                index = rng.choices(range(len(room)), weights=room)[0]
            elif habitual:
                return self.copy(rng.choice(habitual))
            elif any(known):
                index = rng.choices(range(len(known)), weights=known)[0]
        if index is None:
            index = pool.add(self.new_supplier(trade))
        pool.tickets.append(index)
        return self.copy(pool.members[index])

    def money(self, median: float) -> float:
        return round(min(max(math.exp(self.rng.gauss(math.log(median), 0.9)), 500.0), 80_000_000.0), 2)

    def between(self, start_ms: int, spread_ms: int) -> int:
        return start_ms + self.rng.randrange(max(1, spread_ms))

    def sequence_id(self, prefix: str, created_ms: int) -> str:
        day = kyiv_iso(created_ms)[:10]
        counter = self.day_counters.get(day)
        if counter is None:
            counter = self.rng.randint(1, 4000)
        self.day_counters[day] = counter + 1
        return f"{prefix}{day}-{counter:06d}-a"

    def items(self, purchase: tuple, buyer: dict, delivery_ms: int, count: int) -> list[dict]:
        rng = self.rng
        code, _, _, _, _, phrases = purchase
        name, unit = _CPV[code]
        place = _PLACES[self.profiles.get(buyer["identifier"]["id"], "social")]
        items = []
        for phrase in rng.sample(phrases, min(count, len(phrases))):
            item = {"id": self.hex_id(), "description": phrase.format(place=place),
                    "classification": {"scheme": "ДК021", "id": code, "description": name},
                    "quantity": float(1 if unit is _SERVICE else rng.choice((1, 1, 2)) if code.startswith("341")
                                      else rng.choice((1, 2, 5, 10, 12, 50, 100, 250, 1000))),
                    "unit": {"code": unit[0], "name": unit[1]},
                    "deliveryDate": {"endDate": kyiv_iso(delivery_ms)}}
            if unit is not _SERVICE:
                item["deliveryAddress"] = {key: buyer["address"][key] for key in ("region", "countryName")}
            if code.startswith("336") and rng.random() < 0.5:
                inn, atc = rng.choice(_INN)
                item["additionalClassifications"] = [{"scheme": "INN", "id": inn, "description": inn},
                                                     {"scheme": "ATC", "id": atc, "description": inn}]
            items.append(item)
        return items

    @staticmethod
    def kekv(code: str) -> tuple[str, str]:
        """The economic classification of expenditure (КЕКВ, standards kekv_uk.json) a buyer
        would plan this purchase under."""
        if code.startswith(("33600", "33690", "3314")):
            return "2220", "Медикаменти та перев'язувальні матеріали"
        if code.startswith(("158", "155", "032", "5552")):
            return "2230", "Продукти харчування"
        if code.startswith("0931"):
            return "2273", "Оплата електроенергії"
        if code.startswith("0912"):
            return "2274", "Оплата природного газу"
        if code.startswith(("3319", "341")):
            return "3110", "Придбання обладнання і предметів довгострокового користування"
        if int(code[:2]) >= 45:
            return "2240", "Оплата послуг (крім комунальних)"
        return "2210", "Предмети, матеріали, обладнання та інвентар"

    # -- competition --

    def rejected_count(self, buyer: dict, bids: int) -> int:
        """How many of the lowest bids the buyer rejects before it awards one."""
        rate = self.reject_rates.get(buyer["identifier"]["id"], _REJECTS[0])
        rejected = 0
        while rejected < bids - 1 and self.rng.random() < rate:
            rejected += 1
        return rejected

    def bidders(self, trade: str, count: int, rejected: int, decided: bool) -> list[dict]:
        """``count`` distinct tenderers from the cheapest bid up: the ``rejected`` lowest, then
        the one awarded (when ``rejected < count``), then the losers. ``decided``: the award is
        final, and counts as a win and losses of the firms (what ``loser`` weighs)."""
        rng = self.rng
        if rejected >= count:  # every bid rejected: nobody wins
            taken: set[str] = set()
            firms = []
            for _ in range(count):
                firms.append(self.loser(trade, taken))
                taken.add(firms[-1]["identifier"]["id"])
            return firms
        winner = self.winner(trade)
        taken = {winner["identifier"]["id"]}
        losers = []
        for _ in range(count - 1):
            loser = self.loser(trade, taken)
            taken.add(loser["identifier"]["id"])
            losers.append(loser)
        habitual = [n for n, firm in enumerate(losers) if firm["identifier"]["id"] in self.habitual_ids]
        if habitual and rng.random() < _HABITUAL_WINS:
            n = rng.choice(habitual)
            winner, losers[n] = losers[n], winner
        cheaper, dearer = [], []
        for firm in losers:  # rejected bids are ordinary ones; habitual losers price themselves out
            (dearer if firm["identifier"]["id"] in self.habitual_ids else cheaper).append(firm)
        rng.shuffle(cheaper)
        ordered = cheaper + dearer
        pool = self.suppliers[trade]
        for position, firm in enumerate([winner] + ordered[rejected:] if decided else ()):
            index = pool.index_of.get(firm["identifier"]["id"])
            if index is not None:
                if position:
                    pool.losses[index] += 1
                else:
                    pool.wins[index] += 1
        return ordered[:rejected] + [winner] + ordered[rejected:]

    def bid_amounts(self, expected: float, firms: list[dict], rejected: int) -> list[float]:
        """Ascending bid amounts: the dearest near the expected value, each a few percent above
        the one below it; now and then the runner-up shadows the winner within 0.5 %."""
        rng = self.rng
        if len(firms) == 1:
            return [round(expected * rng.uniform(0.93, 0.999), 2)]
        gaps = [min(0.25, max(0.03, math.exp(rng.gauss(math.log(0.06), 0.3)))) for _ in firms[1:]]
        runner_up = rejected + 1
        if runner_up < len(firms):
            shadow = _CLOSE_BID[0] if firms[runner_up]["identifier"]["id"] in self.habitual_ids else _CLOSE_BID[1]
            if rng.random() < shadow:
                gaps[rejected] = rng.uniform(0.0005, 0.005)
        amounts = [expected * rng.uniform(0.88, 0.999)]
        for gap in reversed(gaps):
            amounts.append(amounts[-1] / (1 + gap))
        return [round(amount, 2) for amount in reversed(amounts)]

    # -- objects --

    def tender(self) -> dict:
        rng = self.rng
        method_type, method, _, median, auction = _weighted(rng, _METHODS, 2)
        family = "limited" if method == "limited" else "selective" if method == "selective" else "open"
        status, _ = _weighted(rng, _STATUSES[family], 1)
        purchase = self.purchase(median)
        code, trade = purchase[0], purchase[4]
        buyer = self.buyer(purchase)
        amount = self.money(median)
        created = self.between(self.start_ms, self.end_ms - self.start_ms)
        category = "works" if code.startswith("45") else "services" if int(code[:2]) >= 50 else "goods"
        items = self.items(purchase, buyer, created + rng.randint(30, 200) * _DAY_MS,
                           rng.choice((1, 1, 1, 1, 1, 2, 2, 3)))
        data: dict[str, Any] = {
            "id": self.hex_id(), "tenderID": self.sequence_id("UA-", created),
            "title": items[0]["description"] if rng.random() < 0.6 else f"ДК 021:2015: {code} — {_CPV[code][0]}",
            "status": status, "procurementMethod": method, "procurementMethodType": method_type,
            "mainProcurementCategory": category,
            "value": {"amount": amount, "currency": "UAH", "valueAddedTaxIncluded": rng.random() < 0.7},
            "procuringEntity": buyer, "items": items, "owner": rng.choice(_OWNERS),
        }
        vat = data["value"]["valueAddedTaxIncluded"]
        events = [created]
        decisions: list[str] = []  # award statuses, in the order of the bids they judge
        firms: list[dict] = []
        bids: list[dict] = []
        if family != "limited":
            enquiry_days = rng.randint(3, 5) if method_type == "belowThreshold" else 0
            tender_start = created + enquiry_days * _DAY_MS + rng.randint(1, 20) * _HOUR_MS
            low, high, _ = _weighted(rng, _TENDER_DAYS[method_type], 2)
            tender_end = tender_start + rng.randint(low, high) * _DAY_MS + rng.randint(0, 12) * _HOUR_MS
            if method_type == "belowThreshold":
                data["enquiryPeriod"] = {"startDate": kyiv_iso(created), "endDate": kyiv_iso(tender_start)}
            data["tenderPeriod"] = {"startDate": kyiv_iso(tender_start), "endDate": kyiv_iso(tender_end)}
            if auction:
                data["submissionMethod"] = "electronicAuction"
            if status == "active.tendering":
                events.append(self.between(tender_start, tender_end - tender_start))
            elif status in ("active.qualification", "active.awarded", "complete", "unsuccessful"):
                if status == "unsuccessful":  # no bids, or every bid rejected
                    count = rng.choice((0, 0, 0, 1, 1, 2))
                    rejected = count
                else:
                    count = _weighted(rng, _BID_COUNTS, 1)[0]
                    rejected = self.rejected_count(buyer, count)
                if count:
                    firms = self.bidders(trade, count, rejected, decided=status in ("complete", "active.awarded"))
                    for firm, value in zip(firms, self.bid_amounts(amount, firms, min(rejected, count - 1))):
                        bids.append({"id": self.hex_id(),
                                     "date": kyiv_iso(self.between(tender_start, tender_end - tender_start)),
                                     "status": "active", "tenderers": [firm],
                                     "value": {"amount": value, "currency": "UAH", "valueAddedTaxIncluded": vat}})
                    decisions = ["unsuccessful"] * min(rejected, count)
                    if rejected < count:
                        decisions.append("pending" if status == "active.qualification" else "active")
                events.append(tender_end)
            elif status == "cancelled":
                events.append(self.between(created + _DAY_MS, 10 * _DAY_MS))
        elif status in ("active", "complete"):
            decisions = ["active" if status == "complete" or rng.random() < 0.5 else "pending"]
            firms = [self.winner(trade)]
        else:
            events.append(self.between(created + _HOUR_MS, 5 * _DAY_MS))
        if bids:
            data["bids"] = bids
        awards = []
        award_date = events[-1]
        for number, award_status in enumerate(decisions):
            award_date += (rng.randint(1, 72) if number == 0 else rng.randint(24, 120)) * _HOUR_MS
            if bids:
                award_value = dict(bids[number]["value"])
            else:
                award_value = {"amount": round(amount * rng.uniform(0.9, 1.0), 2), "currency": "UAH",
                               "valueAddedTaxIncluded": vat}
            award = {"id": self.hex_id(), "status": award_status, "date": kyiv_iso(award_date),
                     "value": award_value, "suppliers": [firms[number]]}
            if bids:
                award["bid_id"] = bids[number]["id"]
            if award_status == "active":
                award.update(qualified=True, eligible=True)
            elif award_status == "unsuccessful":
                award.update(qualified=False)
            awards.append(award)
        if awards:
            data["awards"] = awards
            events.append(award_date)
            if status == "complete":
                events.append(award_date + rng.randint(6, 25) * _DAY_MS)
        if status == "cancelled":
            reason_type, reason = rng.choice(_CANCEL_REASONS)
            data["cancellations"] = [{"id": self.hex_id(), "status": "active", "reasonType": reason_type,
                                      "reason": reason, "cancellationOf": "tender", "date": kyiv_iso(events[-1])}]
        modified = events[-1] + rng.randrange(1, 2 * _DAY_MS)
        data["date"] = kyiv_iso(events[-1])
        data["dateCreated"] = kyiv_iso(created)
        data["dateModified"] = modified  # replaced by its stamp's ISO text when written
        config = {"hasAuction": auction, "hasAwardingOrder": True, "hasValueRestriction": method != "limited",
                  "valueCurrencyEquality": True, "hasPrequalification": method_type == "aboveThresholdEU",
                  "minBidsNumber": 1, "hasPreSelectionAgreement": method_type == "priceQuotation",
                  "restricted": False}
        return {"data": data, "config": config}

    def contract(self, tender: dict | None, number: int) -> dict:
        rng = self.rng
        standstill = 0
        if tender is not None:
            data_t = tender["data"]
            award = next(award for award in data_t["awards"] if award["status"] == "active")
            tender_id, tender_code, award_id = data_t["id"], data_t["tenderID"], award["id"]
            start = (_parse_datetime(award["date"]) - EPOCH) // _ONE_MS
            supplier, value = self.copy(award["suppliers"][0]), dict(award["value"])
            buyer = self.copy(data_t["procuringEntity"])
            items = self.copy(data_t["items"])
            title = data_t["title"]
            standstill = _STANDSTILL_DAYS.get(data_t["procurementMethodType"], 0)
        else:  # a world without tenders: a contract of a tender that is not in it
            start = self.between(self.start_ms, self.end_ms - self.start_ms)
            tender_id, tender_code, award_id = self.hex_id(), self.sequence_id("UA-", start), self.hex_id()
            purchase = self.purchase(90_000.0)
            supplier = self.winner(purchase[4])
            buyer = self.buyer(purchase)
            items = self.items(purchase, buyer, start + 90 * _DAY_MS, 1)
            title = items[0]["description"]
            value = {"amount": self.money(90_000.0), "currency": "UAH", "valueAddedTaxIncluded": True}
        vat = value.get("valueAddedTaxIncluded", True)
        value["amountNet"] = round(value["amount"] / 1.2, 2) if vat else value["amount"]
        share = len(items)
        for item in items:
            item["unit"]["value"] = {"amount": round(value["amount"] / share / max(item["quantity"], 1.0), 2),
                                     "currency": "UAH", "valueAddedTaxIncluded": vat}
        created = start + rng.randint(1, 48) * _HOUR_MS
        status = rng.choices(("active", "terminated", "pending"), weights=(0.6, 0.35, 0.05))[0]
        data: dict[str, Any] = {
            "id": self.hex_id(), "contractID": f"{tender_code}-a{number}",
            "contractNumber": f"{rng.randint(1, 999)}/{kyiv_iso(created)[2:4]}", "title": title,
            "status": status, "tender_id": tender_id, "awardID": award_id, "owner": rng.choice(_OWNERS),
            "value": value, "suppliers": [supplier], "buyer": buyer, "items": items,
        }
        modified = created + rng.randrange(1, _DAY_MS)
        if status != "pending":
            # signed once the award can no longer be challenged
            signed = max(created, start + standstill * _DAY_MS) + rng.randint(1, 10) * _DAY_MS
            data["dateSigned"] = kyiv_iso(signed)
            data["period"] = {"startDate": kyiv_iso(signed),
                              "endDate": kyiv_iso(signed + rng.randint(60, 330) * _DAY_MS)}
            modified = signed + rng.randrange(1, 120 * _DAY_MS)
            if status == "terminated":
                paid = round(value["amount"] * rng.uniform(0.85, 1.0), 2)
                data["amountPaid"] = {"amount": paid, "currency": "UAH", "valueAddedTaxIncluded": vat,
                                      "amountNet": round(paid / 1.2, 2) if vat else paid}
        data["date"] = kyiv_iso(created)
        data["dateCreated"] = kyiv_iso(created)
        data["dateModified"] = modified
        return {"data": data, "config": {"restricted": False}}

    def plan(self, unplanned: list[dict]) -> dict:
        """A plan; a completed one describes the purchase of a tender taken from ``unplanned``."""
        rng = self.rng
        status = rng.choices(("scheduled", "complete", "cancelled"), weights=(0.5, 0.4, 0.1))[0]
        tender = unplanned.pop()["data"] if status == "complete" and unplanned else None
        if tender is not None:
            tender_created = (_parse_datetime(tender["dateCreated"]) - EPOCH) // _ONE_MS
            created = min(max(self.start_ms, tender_created - rng.randint(5, 90) * _DAY_MS), tender_created - _HOUR_MS)
            planned = self.between(created, tender_created - created)
            year = kyiv_iso(tender_created)[:4]
            buyer = tender["procuringEntity"]
            items = self.copy(tender["items"])
            for item in items:
                item["id"] = self.hex_id()
            title = tender["title"]
            expected = tender["value"]["amount"]
            amount = expected if rng.random() < 0.5 else round(expected * rng.uniform(1.0, 1.1), 2)
            method, method_type = tender["procurementMethod"], tender["procurementMethodType"]
            modified = tender_created + rng.randrange(1, _HOUR_MS)  # completed when the tender was announced
        else:
            purchase = self.purchase(150_000.0)
            buyer = self.buyer(purchase)
            created = self.between(self.start_ms, self.end_ms - self.start_ms)
            planned = created + rng.randint(5, 60) * _DAY_MS
            year = kyiv_iso(planned)[:4]
            items = self.items(purchase, buyer, created + rng.randint(60, 300) * _DAY_MS, 1)
            title = items[0]["description"]
            amount = self.money(150_000.0)
            method_type, method, *_ = _weighted(rng, _METHODS, 2)
            if method == "limited" and rng.random() < 0.3:  # planned without the e-system
                method = method_type = ""
            modified = None
        code = items[0]["classification"]["id"]
        data: dict[str, Any] = {
            "id": self.hex_id(), "planID": self.sequence_id("UA-P-", created), "status": status,
            "procuringEntity": {key: buyer[key] for key in ("name", "identifier", "address", "kind")},
            "buyers": [{key: buyer[key] for key in ("name", "identifier", "address", "kind")}],
            "budget": {"id": f"{rng.randint(1000000, 9999999)}", "description": title,
                       "amount": amount, "amountNet": round(amount / 1.2, 2), "currency": "UAH",
                       "period": {"startDate": f"{year}-01-01T00:00:00+02:00", "endDate": f"{year}-12-31T00:00:00+02:00"},
                       "breakdown": [{"id": self.hex_id(), "title": rng.choice(("local", "local", "state", "own")),
                                      "description": "Фінансування закупівлі",
                                      "value": {"amount": amount, "currency": "UAH"}}]},
            "classification": dict(items[0]["classification"]),
            "additionalClassifications": [dict(zip(("scheme", "id", "description"),
                                                   ("КЕКВ", *self.kekv(code))))],
            "items": items,
            "tender": {"procurementMethod": method, "procurementMethodType": method_type,
                       "tenderPeriod": {"startDate": kyiv_iso(planned)}},
            "owner": rng.choice(_OWNERS),
        }
        if tender is not None:
            data["tender_id"] = tender["id"]
        published = created + rng.randint(1, 600) * 1000
        data["dateCreated"] = kyiv_iso(created)
        data["datePublished"] = kyiv_iso(published)
        data["dateModified"] = max(modified or 0, published + rng.randrange(1, 30 * _DAY_MS))
        return {"data": data}

    def build(self, tenders: int, contracts: int, plans: int) -> list[tuple[str, int, dict]]:
        tender_envelopes = [self.tender() for _ in range(tenders)]
        awarded = [envelope for envelope in tender_envelopes
                   if any(award["status"] == "active" for award in envelope["data"].get("awards", ()))]
        per_tender: collections.Counter = collections.Counter()
        contract_envelopes = []
        for number in range(contracts):
            tender = awarded[number % len(awarded)] if awarded else None
            if tender is not None:
                per_tender[tender["data"]["id"]] += 1
            contract_envelopes.append(self.contract(tender, per_tender[tender["data"]["id"]] if tender else 1))
        unplanned = list(tender_envelopes)
        self.rng.shuffle(unplanned)
        plan_envelopes = [self.plan(unplanned) for _ in range(plans)]
        # One clock for the whole world, as the API's public_modified: every object is stamped
        # at its dateModified instant (moved 1 ms on when it would tie with the one before).
        written = [(envelope["data"]["dateModified"], order, number, resource, envelope)
                   for order, (resource, envelopes) in enumerate((("tenders", tender_envelopes),
                                                                   ("contracts", contract_envelopes),
                                                                   ("plans", plan_envelopes)))
                   for number, envelope in enumerate(envelopes)]
        written.sort(key=lambda row: row[:3])
        stamped, last = [], 0
        for modified, _, _, resource, envelope in written:
            last = max(modified, last + 1)
            envelope["data"]["dateModified"] = kyiv_iso(last)
            stamped.append((resource, last, envelope))
        return stamped


# --- command line ------------------------------------------------------------------------------

def _parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m monitor.testing.replay_server",
        description="Serve a generated or recorded ProZorro world on a loopback port until SIGTERM/SIGINT.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--generate", type=int, metavar="N", help="generate N tenders")
    source.add_argument("--jsonl", type=Path, metavar="PATH", help="envelopes, one per line (.gz too)")
    parser.add_argument("--resource", default="tenders", choices=RESOURCES, help="resource of the --jsonl objects")
    parser.add_argument("--contracts", type=int, default=0, metavar="N", help="with --generate: N contracts")
    parser.add_argument("--plans", type=int, default=0, metavar="N", help="with --generate: N plans")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated world and of the faults")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-prefix", default=API_PREFIX)
    parser.add_argument("--fault-rate", type=float, default=0.0, metavar="R")
    parser.add_argument("--fault-kinds", default=",".join(FAULT_KINDS), metavar="K,K")
    parser.add_argument("--retry-after", default="1", metavar="V", help="Retry-After of a 429 ('' sends none)")
    parser.add_argument("--latency", type=float, default=0.0, metavar="S", help="seconds added to every response")
    parser.add_argument("--feed-only", action="store_true", help="faults on feed pages only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_arguments(argv)
    if args.jsonl is not None:
        world = World.from_jsonl(args.jsonl, args.resource)
    else:
        world = World.generated(args.generate, contracts=args.contracts, plans=args.plans, seed=args.seed)
    faults = Faults(rate=args.fault_rate, kinds=tuple(kind for kind in args.fault_kinds.split(",") if kind),
                    retry_after=args.retry_after or None, latency=args.latency, seed=args.seed,
                    feed_only=args.feed_only)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with ReplayServer(world, faults, host=args.host, port=args.port, api_prefix=args.api_prefix) as server:
        print(f"serving {server.url}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
