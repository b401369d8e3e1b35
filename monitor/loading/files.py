"""Read files and folders into batches of raw records for ``monitor.store.records.store_batch``.

A file is JSON Lines when its name says so (``.jsonl``, ``.ndjson``) or when it does not parse as
one JSON document but its first line does; otherwise it is one JSON document (a package, an API
envelope, a bare object or a list of objects). ``.gz`` is read transparently. JSON Lines are
streamed: only the first line is parsed in Python (to recognise the format) unless the lines are
packages; parsing and mapping happen in DuckDB. A document of 64 MiB or more that is a package or a
list is streamed too, one element at a time (``monitor.loading.packages``); smaller ones and single
objects are parsed whole.

Every record, a JSON line or an object inside a document, over ``max_record_bytes`` is quarantined.
With ``--format prozorro|ocds``, a file that is unmistakably of the other family (see
``detect.other_family``) is refused with an ``InputError`` (exit 2) before any of its records is
stored; one such object among records of the right family is quarantined with that reason.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import itertools
import os
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson
import pyarrow as pa

from monitor.loading import detect as shapes
from monitor.loading import packages
from monitor.store.records import BatchBuilder

JSON_LINES_SUFFIXES = {".jsonl", ".ndjson", ".jsonlines"}
LOADABLE_SUFFIXES = {".json"} | JSON_LINES_SUFFIXES
READ_CHUNK = 32 << 20
# what reading a truncated or damaged file raises (gzip: EOFError, BadGzipFile, zlib.error)
DAMAGED_FILE_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)
FIRST_VALUES = 64  # the first JSON lines (or elements of a streamed list) that decide a file's shape


class InputError(Exception):
    """A path that cannot be read at all (missing, unreadable, not a file we know), or a file that is
    all of the other family than ``--format`` says. ``monitor load`` turns it into a usage error (exit
    code 2), also when it is raised while a load is under way (files read before it stay loaded; the
    run is recorded as failed)."""


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
            found.extend(sorted(_walk(path)))
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


def _walk(folder: Path) -> Iterator[Path]:
    """Loadable files under ``folder``; a sub-folder that cannot be listed is an error, not skipped
    (``Path.rglob`` of Python 3.11 passes over it in silence). Symbolic links to folders are not
    followed, as with rglob."""

    def fail(exc: OSError) -> None:
        where = exc.filename if exc.filename is not None else folder
        raise InputError(f"{where}: folder cannot be read ({exc.strerror or exc})") from exc

    for root, _, names in os.walk(folder, onerror=fail):
        for name in names:
            candidate = Path(root, name)
            if _logical_suffix(candidate) in LOADABLE_SUFFIXES and candidate.is_file():
                yield candidate


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


@dataclasses.dataclass
class ReadOptions:
    """How to read: the --format option, source names, size limits."""

    forced_format: str = "auto"
    prozorro_source: str = "prozorro"
    ocds_source: str = "ocds"
    max_record_bytes: int = 8 << 20
    batch_rows: int = 50_000
    batch_bytes: int = 192 << 20
    current_path: Path | None = None


def read_file(path: Path, options: ReadOptions, result: FileResult) -> Iterator[pa.Table]:
    """Yield batches of candidate records from one file.

    A file that cannot be read to its end (a truncated or damaged .gz) keeps the records read before
    the damage and gets a quarantine entry that says so; the load goes on with the next file."""
    builder = BatchBuilder(options.ocds_source, str(path), options.batch_rows, options.batch_bytes)
    options.current_path = path
    try:
        if _logical_suffix(path) in JSON_LINES_SUFFIXES:
            yield from _read_lines(path, options, builder, result)
        elif (where := _stream_outline(path, options)) is not None:
            yield from _streamed_batches(path, where, options, builder, result)
        elif _json_lines_inside(path, options):
            yield from _read_lines(path, options, builder, result)
        else:
            yield from _whole_document(path, options, builder, result)
    except DAMAGED_FILE_ERRORS as exc:
        batch = builder.add(shapes.PROZORRO, None, error=(
            f"the file cannot be read to its end ({type(exc).__name__}: {exc}): a truncated or damaged download? "
            "The records read before the damage were loaded; load the file again once it is whole "
            "(nothing is stored twice)"
        ))
        if batch is not None:
            yield batch
    batch = builder.flush()
    if batch is not None:
        yield batch
    result.records += builder.total


def _whole_document(path: Path, options: ReadOptions, builder: BatchBuilder, result: FileResult) -> Iterator[pa.Table]:
    """A .json file parsed whole: one document, or JSON Lines under another name, or invalid JSON."""
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
        batch = builder.add("prozorro", text, line=1, error=reason)
        if batch is not None:  # with batch_rows = 1
            yield batch
    else:
        mismatch = shapes.family_mismatch(document, options.forced_format)
        if mismatch is not None:
            raise InputError(f"{path}: {shapes.mismatch_reason(mismatch, options.forced_format)}")
        yield from _document_batches(document, options, builder, result, locator="")


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


def _too_big(size: int, options: ReadOptions) -> str:
    """The quarantine reason of a record of ``size`` bytes over ``options.max_record_bytes``."""
    return (f"record is {size / (1 << 20):.1f} MiB, over the {options.max_record_bytes / (1 << 20):.0f} MiB limit "
            "(max_record_mb in the config)")


def _add_value(builder: BatchBuilder, options: ReadOptions, hint: str, value: Any, *, line: int | None,
               locator: str | None, source: str | None = None, error: str | None = None) -> pa.Table | None:
    """Add one parsed record; one whose text is over the size limit is marked for quarantine."""
    data = orjson.dumps(value)
    if error is None and len(data) > options.max_record_bytes:
        error = _too_big(len(data), options)
    return builder.add(hint, data.decode(), line=line, locator=locator or None, error=error, source=source)


def _hint_source(hint: str, options: ReadOptions) -> str:
    return options.prozorro_source if hint == shapes.PROZORRO else options.ocds_source


def _document_batches(document: Any, options: ReadOptions, builder: BatchBuilder, result: FileResult,
                      locator: str, line: int | None = None) -> Iterator[pa.Table]:
    """Add the records of one parsed JSON value; yield each batch as soon as it fills up."""
    if isinstance(document, list):
        for index, element in enumerate(document):
            yield from _document_batches(element, options, builder, result, f"{locator}/{index}", line)
        return
    shape = shapes.detect(document, options.forced_format)
    if result.shape == "unknown" and shape:
        result.shape = shape
    for batch in _document_values(document, shape, options, builder, locator, line):
        if batch is not None:
            yield batch


def _document_values(document: Any, shape: str | None, options: ReadOptions, builder: BatchBuilder,
                     locator: str, line: int | None) -> Iterator[pa.Table | None]:
    """What ``builder.add`` returns for each record of one JSON object (a batch when one filled up)."""
    mismatch = shapes.other_family(document, options.forced_format)
    if mismatch is not None:  # one object of the other family among the file's records
        yield _add_value(builder, options, shape or shapes.PROZORRO, document, line=line, locator=locator,
                         source=_hint_source(shape or shapes.PROZORRO, options),
                         error=shapes.mismatch_reason(mismatch, options.forced_format))
    elif shape in (shapes.RELEASE_PACKAGE, shapes.RECORD_PACKAGE):
        array = "releases" if shape == shapes.RELEASE_PACKAGE else "records"
        for index, member in enumerate(document[array]):
            yield _add_member(array, member, options, builder, f"{locator}/{array}/{index}", line)
    elif shape is None:
        yield _add_value(
            builder, options, shapes.PROZORRO, document, line=line, locator=locator,
            error="not recognised as ProZorro or OCDS data (no data, tenderID, contractID, planID, id or ocid)",
        )
    else:
        yield _add_value(builder, options, shape, document, line=line, locator=locator,
                         source=_hint_source(shape, options))


def _add_member(array: str, member: Any, options: ReadOptions, builder: BatchBuilder, locator: str,
                line: int | None) -> pa.Table | None:
    """Add one member of a package's ``releases`` (a compiled release, or a release to merge with its ocid's
    others) or ``records`` array, parsed whole or streamed. A record without compiledRelease is opened
    into its releases at store time (``expand_embedded_records``), whichever way it came."""
    if array == "records":
        hint = shapes.OCDS_RECORD
    elif isinstance(member, dict) and shapes.is_compiled_release(member):
        hint = shapes.OCDS_COMPILED
    else:
        hint = shapes.OCDS_RELEASE
    return _add_value(builder, options, hint, member, line=line, locator=locator, source=options.ocds_source)


def _stream_outline(path: Path, options: ReadOptions) -> packages.Outline | None:
    """Where the elements of a large package or list are; None for a small file or another document,
    which is parsed whole. A package of the other family than --format is refused here (InputError),
    from its head, without reading the rest."""
    if path.stat().st_size < packages.STREAM_MIN_BYTES:
        return None
    with _open(path) as handle:
        where = packages.outline(handle)
    if where is None or where.head is None:
        return where
    mismatch = shapes.other_family(where.head, options.forced_format)
    if mismatch is not None:
        raise InputError(f"{path}: {shapes.mismatch_reason(mismatch, options.forced_format)}")
    if shapes.detect(where.head, options.forced_format) in (shapes.RELEASE_PACKAGE, shapes.RECORD_PACKAGE):
        return where
    return None


def _json_lines_inside(path: Path, options: ReadOptions) -> bool:
    """Whether a large .json file is JSON Lines under another name (its first line a whole JSON value,
    more lines after it), so it is streamed as such instead of being read whole first. A single JSON
    document cannot look like that: after one whole value it would be invalid."""
    if path.stat().st_size < packages.STREAM_MIN_BYTES:
        return False
    with _open(path) as handle:
        first = handle.readline(options.max_record_bytes + 1)
        after = handle.read(1 << 16)
    return first.endswith(b"\n") and _parses(first) and bool(after.strip())


def _streamed_batches(path: Path, where: packages.Outline, options: ReadOptions, builder: BatchBuilder,
                      result: FileResult) -> Iterator[pa.Table]:
    """The records of a large package or list, read one element at a time (``monitor.loading.packages``).

    A list is refused, as JSON Lines are, when most of its first 64 objects are of the other family than
    --format. When the JSON breaks off, the records before the break are kept and the file gets a
    quarantine entry at the element where it broke."""
    array = where.prefix.removesuffix(".item")
    locator = f"/{array}" if where.head is not None else ""
    if where.head is not None:
        result.shape = shapes.detect(where.head, options.forced_format) or result.shape
    first: list[Any] = []
    with _open(path) as handle:
        stream = packages.elements(handle, where)
        try:
            if where.head is None:
                first = list(itertools.islice(stream, FIRST_VALUES))
                _refuse_other_family(first, options, "objects of the list")
            for index, element in enumerate(itertools.chain(first, stream)):
                at = f"{locator}/{index}"
                if where.head is None:
                    yield from _document_batches(element, options, builder, result, at)
                elif (batch := _add_member(array, element, options, builder, at, None)) is not None:
                    yield batch
        except packages.StreamError as exc:
            what = "list" if where.head is None else "package"
            reason = (f"invalid JSON after {exc.index:,} elements of the {what}: {exc}; "
                      "the elements before it were loaded, the rest of the file was not read")
            batch = builder.add(shapes.PROZORRO, None, locator=f"{locator}/{exc.index}", error=reason)
            if batch is not None:
                yield batch
        result.bytes_read = handle.tell()


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    """The file's bytes in pieces of about READ_CHUNK. When the file is damaged (a truncated .gz), what was
    read before the damage still comes out, then the error is raised."""
    parts: list[bytes] = []
    size = 0
    try:
        while piece := handle.read1(READ_CHUNK):  # type: ignore[attr-defined]
            parts.append(piece)
            size += len(piece)
            if size >= READ_CHUNK:
                yield b"".join(parts)
                parts, size = [], 0
    except DAMAGED_FILE_ERRORS:
        if parts:
            yield b"".join(parts)
        raise
    if parts:
        yield b"".join(parts)


def _blocks(handle: BinaryIO) -> Iterator[bytes]:
    """Blocks of whole lines (each ending in a newline), read in large chunks."""
    pending = b""
    for chunk in _chunks(handle):
        data = pending + chunk if pending else chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            pending = data
            continue
        pending = data[cut:]
        yield data[:cut]
    if pending:
        yield pending + b"\n"


def _read_lines(path: Path, options: ReadOptions, builder: BatchBuilder, result: FileResult) -> Iterator[pa.Table]:
    """Stream JSON Lines; fast path: whole blocks become Arrow batches without a Python loop per line."""
    hint: str | None = None
    first_line = 0
    collected: list[pa.Table] = []
    collected_rows = collected_bytes = 0
    try:
        with _open(path) as handle:
            for block in _blocks(handle):
                result.bytes_read += len(block)
                if hint is None:
                    hint = _first_hint(block, options)
                    if hint is not None:
                        result.shape = hint
                if hint in (shapes.RELEASE_PACKAGE, shapes.RECORD_PACKAGE):
                    yield from _package_lines(block, first_line, options, builder, result)
                else:
                    pending = builder.flush()  # keep records of earlier shapes (e.g. a package line) in order
                    if pending is not None:
                        yield pending
                    for table in _line_batches(block, first_line, hint or shapes.PROZORRO, options, result):
                        collected.append(table)
                        collected_rows += table.num_rows
                        collected_bytes += table["text"].nbytes
                        if collected_rows >= options.batch_rows or collected_bytes >= options.batch_bytes:
                            yield pa.concat_tables(collected)
                            collected, collected_rows, collected_bytes = [], 0, 0
                first_line += block.count(b"\n")
    except DAMAGED_FILE_ERRORS:
        if collected:  # the lines read before the damage
            yield pa.concat_tables(collected)
        raise
    if collected:
        yield pa.concat_tables(collected)


def _first_hint(block: bytes, options: ReadOptions) -> str | None:
    """The shape most of the first 64 lines of ``block`` have; one odd or broken line does not decide it.

    When most of them are of the other family than --format says, the file is refused (InputError).
    """
    values = []
    for data in block.split(b"\n", FIRST_VALUES)[:FIRST_VALUES]:
        if data.strip():
            try:
                values.append(orjson.loads(data))
            except orjson.JSONDecodeError:
                continue
    if not values:
        return None
    _refuse_other_family(values, options, "JSON lines")
    votes = Counter(_value_hint(value, options) for value in values)
    return votes.most_common(1)[0][0]


def _refuse_other_family(values: list[Any], options: ReadOptions, unit: str) -> None:
    """InputError when most of ``values`` (the first of a streamed file) are of the other family than --format."""
    mismatches = Counter(
        what for what in (shapes.other_family(value, options.forced_format) for value in values) if what
    )
    if mismatches and sum(mismatches.values()) * 2 > len(values):
        what, _ = mismatches.most_common(1)[0]
        counted = f"{what} ({sum(mismatches.values())} of the first {len(values)} {unit} are like it)"
        raise InputError(f"{options.current_path}: {shapes.mismatch_reason(counted, options.forced_format)}")


def _line_batches(block: bytes, first_line: int, hint: str, options: ReadOptions,
                  result: FileResult) -> Iterator[pa.Table]:
    """Arrow tables of the lines of ``block`` (ending in a newline), numbered from ``first_line`` + 1."""
    buffer = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(buffer == 10)
    starts = np.concatenate(([0], ends[:-1] + 1))
    cr = (ends > starts) & (buffer[np.maximum(ends - 1, 0)] == 13)
    stops = ends - cr
    lengths = stops - starts
    keep = np.flatnonzero(lengths > 0)
    short = keep[lengths[keep] < 64]  # a line of only spaces or tabs is blank too
    if len(short):
        blank = [i for i in short.tolist() if not block[starts[i]:stops[i]].strip()]
        if blank:
            keep = np.setdiff1d(keep, blank)
    for index in range(0, len(keep), options.batch_rows):
        rows = keep[index:index + options.batch_rows]
        yield _lines_to_batch(block, starts[rows], stops[rows], first_line + rows + 1, hint, options)
    result.records += len(keep)


def _lines_to_batch(block: bytes, starts: np.ndarray, stops: np.ndarray, line_numbers: np.ndarray, hint: str,
                    options: ReadOptions) -> pa.Table:
    count = len(starts)
    view = memoryview(block)
    errors: list[str | None] = [None] * count
    texts: pa.Array
    too_big = np.flatnonzero(stops - starts > options.max_record_bytes)
    for i in too_big:
        errors[i] = _too_big(int(stops[i] - starts[i]), options)
    # Values buffer holding the lines back to back (newlines dropped), then one UTF-8 check in Arrow.
    lengths = (stops - starts).astype(np.int64)
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = b"".join(view[a:b] for a, b in zip(starts.tolist(), stops.tolist()))
    binary = pa.Array.from_buffers(pa.large_binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(values)])
    try:
        texts = binary.cast(pa.large_string())
    except pa.ArrowInvalid:
        texts = _decode_one_by_one(binary, errors)
    hashes = [hashlib.sha256(view[a:b]).hexdigest() for a, b in zip(starts.tolist(), stops.tolist())]
    source = _hint_source(hint, options)
    return pa.table(
        {
            "seq": pa.array(line_numbers.astype(np.int64)),  # unique within the file, so batches can be joined
            "source": pa.array([source] * count, pa.string()),
            "hint": pa.array([hint] * count, pa.string()),
            "origin": pa.array([str(options.current_path)] * count, pa.string()),
            "line": pa.array(line_numbers.astype(np.int64)),
            "locator": pa.nulls(count, pa.string()),
            "text": texts.cast(pa.string()) if texts.nbytes < (1 << 31) else texts,
            "sha256": pa.array(hashes, pa.string()),
            "error": pa.array(errors, pa.string()),
        }
    )


def _decode_one_by_one(binary: pa.Array, errors: list[str | None]) -> pa.Array:
    """Slow path for a batch with invalid UTF-8: mark the bad lines, keep the rest."""
    decoded = []
    for index, value in enumerate(binary.to_pylist()):
        try:
            decoded.append(value.decode("utf-8"))
        except UnicodeDecodeError as exc:
            decoded.append(value.decode("utf-8", errors="replace"))
            errors[index] = errors[index] or (
                f"invalid UTF-8: byte {exc.start} ({value[exc.start:exc.start + 1]!r}) is not UTF-8")
    return pa.array(decoded, pa.large_string())


def _package_lines(block: bytes, first_line: int, options: ReadOptions, builder: BatchBuilder,
                   result: FileResult) -> Iterator[pa.Table]:
    """Slow path: each line is a whole package, parsed in Python."""
    for offset, data in enumerate(block.split(b"\n")):
        if not data.strip():
            continue
        number = first_line + offset + 1
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            batch = builder.add(shapes.PROZORRO, data.decode("utf-8", errors="replace"), line=number,
                                error=f"invalid JSON: {exc}")
            if batch is not None:
                yield batch
        else:
            yield from _document_batches(document, options, builder, result, locator="", line=number)


def _value_hint(value: Any, options: ReadOptions) -> str:
    """The shape of the lines of a file, from one of its good lines."""
    shape = shapes.detect(value, options.forced_format)
    if shape is None:
        return shapes.PROZORRO
    return shape
