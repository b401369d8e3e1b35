"""Read files and folders into batches of raw records for ``monitor.store.records.store_batch``.

A file is JSON Lines when its name says so (``.jsonl``, ``.ndjson``) or when it does not parse as
one JSON document but its first line does; otherwise it is one JSON document (a package, an API
envelope, a bare object or a list of objects). ``.gz`` is read transparently. JSON Lines are
streamed: only the first line is parsed in Python (to recognise the format) unless the lines are
packages; parsing and mapping happen in DuckDB.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pyarrow as pa

from monitor.loading import detect as shapes
from monitor.store.records import BATCH_SCHEMA

JSON_LINES_SUFFIXES = {".jsonl", ".ndjson", ".jsonlines"}
LOADABLE_SUFFIXES = {".json"} | JSON_LINES_SUFFIXES
READ_CHUNK = 16 << 20


class InputError(Exception):
    """A path that cannot be read at all (missing, unreadable, not a file we know)."""


@dataclasses.dataclass
class FileResult:
    """What one file contained, for the load summary."""

    path: str
    shape: str = "unknown"
    records: int = 0
    bytes_read: int = 0


def find_files(paths: list[str]) -> list[Path]:
    """Every loadable file under ``paths`` (files as given, folders recursively, sorted)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise InputError(f"{raw}: no such file or folder")
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file() and _logical_suffix(p) in LOADABLE_SUFFIXES
                )
            )
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"{raw}: not a regular file or folder")
    for path in found:
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise InputError(f"{path}: cannot be read ({exc.strerror})") from exc
    return found


def _logical_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _open(path: Path) -> BinaryIO:
    raw = path.open("rb")
    if path.suffix.lower() == ".gz":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    return raw


class BatchBuilder:
    """Accumulates candidate records and hands out Arrow batches of bounded size."""

    def __init__(self, source: str, origin: str, max_rows: int, max_bytes: int) -> None:
        self.source, self.origin = source, origin
        self.max_rows, self.max_bytes = max_rows, max_bytes
        self._columns: dict[str, list[Any]] = {name: [] for name in BATCH_SCHEMA.names}
        self._bytes = 0
        self.total = 0

    def add(self, hint: str, text: str | None, *, line: int | None = None, locator: str | None = None,
            error: str | None = None, source: str | None = None) -> pa.Table | None:
        columns = self._columns
        columns["source"].append(source or self.source)
        columns["hint"].append(hint)
        columns["origin"].append(self.origin)
        columns["line"].append(line)
        columns["locator"].append(locator)
        columns["text"].append(text)
        columns["error"].append(error)
        self._bytes += len(text) if text else 0
        self.total += 1
        if len(columns["text"]) >= self.max_rows or self._bytes >= self.max_bytes:
            return self.flush()
        return None

    def flush(self) -> pa.Table | None:
        if not self._columns["text"]:
            return None
        table = pa.table(self._columns, schema=BATCH_SCHEMA)
        self._columns = {name: [] for name in BATCH_SCHEMA.names}
        self._bytes = 0
        return table


@dataclasses.dataclass
class ReadOptions:
    """How to read: the --format option, source names, size limits."""

    forced_format: str = "auto"
    prozorro_source: str = "prozorro"
    ocds_source: str = "ocds"
    max_record_bytes: int = 8 << 20
    batch_rows: int = 50_000
    batch_bytes: int = 192 << 20


def read_file(path: Path, options: ReadOptions, result: FileResult) -> Iterator[pa.Table]:
    """Yield batches of candidate records from one file."""
    builder = BatchBuilder(options.ocds_source, str(path), options.batch_rows, options.batch_bytes)
    if _logical_suffix(path) in JSON_LINES_SUFFIXES:
        yield from _read_lines(path, options, builder, result)
    else:
        with _open(path) as handle:
            content = handle.read()
        result.bytes_read = len(content)
        try:
            document = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            first_line = content.split(b"\n", 1)[0]
            if b"\n" in content.strip() and _parses(first_line):
                yield from _read_lines(path, options, builder, result)
                return
            text = content[: options.max_record_bytes].decode("utf-8", errors="replace")
            reason = f"invalid JSON: {exc}" if not _bad_utf8(content) else f"invalid UTF-8: {_bad_utf8(content)}"
            builder.add("prozorro", text, line=1, error=reason)
        else:
            _add_document(document, options, builder, result, locator="")
    batch = builder.flush()
    if batch is not None:
        yield batch
    result.records = builder.total


def _parses(data: bytes) -> bool:
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True


def _bad_utf8(data: bytes) -> str | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"byte {exc.start} ({data[exc.start:exc.start + 1]!r}) is not UTF-8"
    return None


def _dump(value: Any) -> str:
    return orjson.dumps(value).decode()


def _hint_source(hint: str, options: ReadOptions) -> str:
    return options.prozorro_source if hint == shapes.PROZORRO else options.ocds_source


def _add_document(document: Any, options: ReadOptions, builder: BatchBuilder, result: FileResult,
                  locator: str, line: int | None = None) -> list[pa.Table]:
    """Add the records of one parsed JSON value; return any batches that filled up."""
    batches: list[pa.Table | None] = []
    shape = shapes.detect(document, options.forced_format)
    if result.shape == "unknown" and shape:
        result.shape = shape
    if isinstance(document, list):
        for index, element in enumerate(document):
            batches += _add_document(element, options, builder, result, f"{locator}/{index}", line)
        return [b for b in batches if b is not None]
    if shape == shapes.RELEASE_PACKAGE:
        for index, release in enumerate(document["releases"]):
            hint = shapes.OCDS_COMPILED if isinstance(release, dict) and shapes.is_compiled_release(release) \
                else shapes.OCDS_RELEASE
            batches.append(builder.add(hint, _dump(release), line=line, locator=f"{locator}/releases/{index}",
                                       source=options.ocds_source))
    elif shape == shapes.RECORD_PACKAGE:
        for index, record in enumerate(document["records"]):
            batches += _add_record(record, options, builder, f"{locator}/records/{index}", line)
    elif shape == shapes.OCDS_RECORD:
        batches += _add_record(document, options, builder, locator, line)
    elif shape is None:
        batches.append(builder.add(
            shapes.PROZORRO, _dump(document), line=line, locator=locator or None,
            error="not recognised as ProZorro or OCDS data (no data, tenderID, contractID, planID, id or ocid)",
        ))
    else:
        batches.append(builder.add(shape, _dump(document), line=line, locator=locator or None,
                                   source=_hint_source(shape, options)))
    return [b for b in batches if b is not None]


def _add_record(record: Any, options: ReadOptions, builder: BatchBuilder, locator: str,
                line: int | None) -> list[pa.Table | None]:
    """A record with a compiledRelease is stored as is; one with embedded releases only is merged."""
    embedded = record.get("releases") if isinstance(record, dict) else None
    if (isinstance(record, dict) and not record.get("compiledRelease") and isinstance(embedded, list)
            and embedded and all(isinstance(r, dict) and "ocid" in r for r in embedded)):
        return [
            builder.add(shapes.OCDS_RELEASE, _dump(release), line=line, locator=f"{locator}/releases/{index}",
                        source=options.ocds_source)
            for index, release in enumerate(embedded)
        ]
    return [builder.add(shapes.OCDS_RECORD, _dump(record), line=line, locator=locator, source=options.ocds_source)]


def _iter_lines(handle: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of every line, reading in large chunks."""
    number = 0
    pending = b""
    while True:
        chunk = handle.read(READ_CHUNK)
        if not chunk:
            break
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for data in lines:
            number += 1
            yield number, data
    if pending:
        yield number + 1, pending


def _read_lines(path: Path, options: ReadOptions, builder: BatchBuilder, result: FileResult) -> Iterator[pa.Table]:
    hint: str | None = None
    limit = options.max_record_bytes
    with _open(path) as raw_handle:
        handle = io.BufferedReader(raw_handle, READ_CHUNK) if not isinstance(raw_handle, io.BufferedReader) \
            else raw_handle
        for number, data in _iter_lines(handle):
            result.bytes_read += len(data) + 1
            if not data.strip():
                continue
            error = None
            if len(data) > limit:
                error = (f"record is {len(data) / (1 << 20):.1f} MiB, over the {limit / (1 << 20):.0f} MiB limit "
                         "(max_record_mb in the config)")
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                text = data.decode("utf-8", errors="replace")
                error = error or f"invalid UTF-8: byte {exc.start} ({data[exc.start:exc.start + 1]!r}) is not UTF-8"
            if hint is None and error is None:
                hint = _line_hint(text, options)
                result.shape = hint
            line_hint = hint or shapes.PROZORRO
            if line_hint in (shapes.RELEASE_PACKAGE, shapes.RECORD_PACKAGE) and error is None:
                try:
                    document = orjson.loads(text)
                except orjson.JSONDecodeError as exc:
                    batch = builder.add(line_hint, text, line=number, error=f"invalid JSON: {exc}")
                    batches = [batch]
                else:
                    batches = _add_document(document, options, builder, result, locator="", line=number)
            else:
                batches = [builder.add(line_hint, text, line=number, error=error,
                                       source=_hint_source(line_hint, options))]
            for batch in batches:
                if batch is not None:
                    yield batch


def _line_hint(text: str, options: ReadOptions) -> str:
    """The shape of the lines of a file, from its first good line."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return shapes.OCDS_COMPILED if options.forced_format == "ocds" else shapes.PROZORRO
    shape = shapes.detect(value, options.forced_format)
    if shape is None:
        return shapes.PROZORRO
    return shape
