"""Stream the elements of a large JSON document (a release or record package, or a list) with ijson.

Parsed whole, a JSON document takes several times its size in memory (a 1.34 GB release package:
9.59 GiB peak, against 3.11 GiB streamed; ``bench/load.py --kinds ocds-package``). From
``STREAM_MIN_BYTES`` of file size on, ``monitor.loading.files`` first peeks at the top of the document
(``outline``): when it is a list, or an object whose ``releases`` or ``records`` array comes before
anything that makes it something other than a package (an ``ocid``), its elements are read one at a
time (``elements``, ijson's C backend), so the file is never held in memory whole. Anything else (a
single object, JSON Lines in a file named .json, a document that is invalid at the top) is read whole
as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, BinaryIO

import ijson

STREAM_MIN_BYTES = 64 << 20  # file size (on disk) from which a .json document is streamed
PEEK_EVENTS = 10_000  # parser events read to find the array of a package before giving up
PACKAGE_ARRAYS = ("releases", "records")
_BUFFER = 1 << 20


@dataclasses.dataclass
class Outline:
    """Where the elements of a document are: ``releases.item``, ``records.item`` or ``item`` (a list),
    and the package's members read before its array (``head``: objects and arrays as empty ones)."""

    prefix: str
    head: dict[str, Any] | None


class StreamError(Exception):
    """The document became invalid JSON after ``index`` elements had been read."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


class _Pieces:
    """``handle`` read one underlying read at a time (``read1``): when a .gz is damaged, only the piece
    being read is lost, not the rest of ijson's buffer."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle

    def read(self, size: int = -1) -> bytes:
        return self.handle.read1(size)  # type: ignore[attr-defined]


def outline(handle: BinaryIO) -> Outline | None:
    """The outline of the JSON document in ``handle``, or None when it is not streamed (see module)."""
    events = ijson.parse(_Pieces(handle), buf_size=_BUFFER)
    head: dict[str, Any] = {}
    try:
        _, event, _ = next(events)
        if event == "start_array":
            return Outline("item", None)
        if event != "start_map":
            return None
        depth, key = 1, ""
        for count, (_, event, value) in enumerate(events):
            if count > PEEK_EVENTS:
                return None
            if event in ("end_map", "end_array"):
                depth -= 1
                if depth == 0:  # the whole object was one record, not a package
                    return None
                continue
            if depth == 1:
                if event == "map_key":
                    key = value
                    continue
                if event == "start_array" and key in PACKAGE_ARRAYS:
                    head[key] = []
                    return Outline(f"{key}.item", head)
                head[key] = {} if event == "start_map" else [] if event == "start_array" else value
            if event in ("start_map", "start_array"):
                depth += 1
    except (ijson.JSONError, StopIteration):
        return None
    return None


def elements(handle: BinaryIO, where: Outline) -> Iterator[Any]:
    """The elements at ``where.prefix``, one at a time; StreamError when the JSON breaks off."""
    index = 0
    try:
        for element in ijson.items(_Pieces(handle), where.prefix, use_float=True, buf_size=_BUFFER):
            yield element
            index += 1
    except ijson.JSONError as exc:
        raise StreamError(index, " ".join(str(exc).split())[:300]) from exc
