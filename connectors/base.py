"""What every connector yields: pages of raw records with the cursor that follows each page."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Protocol, runtime_checkable

# Given a record kind and (id, dateModified) pairs listed by a feed, the ids already stored with that
# dateModified or a newer one. Supplied by the ingest run (which owns the database), so connectors
# can skip unchanged objects without knowing where they are stored.
KnownLookup = Callable[[str, list[tuple[str, str]]], set[str]]


def nothing_known(kind: str, listed: list[tuple[str, str]]) -> set[str]:
    """The lookup for a first run, or for connectors used without a store."""
    return set()


@dataclasses.dataclass
class FetchedRecord:
    """One record as the API returned it, or the reason it could not be fetched."""

    hint: str  # how to read text: prozorro | ocds-compiled | ocds-release | ocds-record
    url: str
    text: str | None
    error: str | None = None
    object_id: str | None = None  # the id the feed listed (connectors that fetch objects one by one)
    # the server or the network failed to give it after every attempt: says nothing about the object,
    # so it is not quarantined; the ingest run defers it to the retry queue or fails the page
    retry: bool = False


@dataclasses.dataclass
class Page:
    """Records of one feed page; ``cursor`` resumes right after them."""

    records: list[FetchedRecord]
    cursor: str | None
    listed: int = 0  # ids the feed page listed
    known: int = 0  # of those, skipped as already stored
    end: bool = False  # the feed is exhausted for now
    restarted: bool = False  # the stored cursor was rejected; paging restarted from the start
    rejected: str | None = None  # on a restart page: the offset the server rejected


class Connector(Protocol):
    """A source: ``name`` is its cursor key; ``source`` the name its raw records are stored under."""

    name: str
    source: str

    def pages(self, cursor: str | None) -> AsyncIterator[Page]: ...


@runtime_checkable
class RefetchingConnector(Connector, Protocol):
    """A connector that fetches listed objects one by one, and so can fetch deferred ones again (the
    ingest run keeps a retry queue for these only)."""

    kind: str  # the raw record kind of its objects

    async def refetch(self, object_ids: list[str], listed: dict[str, str] | None = None) -> list[FetchedRecord]: ...
