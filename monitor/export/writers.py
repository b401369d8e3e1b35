"""Write a query's rows as Parquet, CSV (UTF-8 with BOM) or sheets of one Excel workbook.

Parquet keeps every type (lists, structs, the JSON evidence, timestamps). CSV and Excel turn nested
values into JSON text and neutralise spreadsheet formulas: a text cell starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return gets a leading apostrophe, so Excel or LibreOffice shows it
as text instead of running it; numbers stay numbers.

The work is done by DuckDB (COPY for Parquet and CSV; the worksheet XML is built in SQL and streamed
into the zip), so an export of 100k flags with their rows takes seconds, not minutes. The workbook
itself (styles, bold frozen header, column widths, filters) is made by xlsxwriter.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import re
import shutil
import threading
import zipfile
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from monitor.formulas import FORMULA_START
from monitor.store.db import sql_ident, sql_literal

BOM = "\ufeff".encode()

EXCEL_MAX_ROWS = 1_048_576          # per sheet, the header row included
EXCEL_MAX_CELL = 32_767             # characters in a cell
TRUNCATION_MARKER = " …[cut: Excel holds 32,767 characters per cell; full text in the CSV or Parquet export]"


@dataclasses.dataclass
class Column:
    name: str
    type: str

    @property
    def kind(self) -> str:
        t = self.type.upper()
        if t == "VARCHAR":
            return "text"
        if t == "JSON":
            return "json"
        if t.endswith("]") or t.startswith(("STRUCT", "MAP", "UNION")):
            return "nested"
        if t.startswith("TIMESTAMP") or t == "DATE":
            return "time"
        if t == "BOOLEAN":
            return "bool"
        if t in ("DOUBLE", "FLOAT", "REAL") or t.startswith("DECIMAL"):
            return "float"
        if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"):
            return "int"
        return "other"


def columns_of(con: duckdb.DuckDBPyConnection, query: str) -> list[Column]:
    return [Column(row[0], row[1]) for row in con.execute(f"DESCRIBE {query}").fetchall()]


TEXTUAL = ("text", "json", "nested", "other")


def neutralised(expression: str) -> str:
    """SQL: text with a leading apostrophe when it starts like a formula."""
    starts = ", ".join(sql_literal(c) if c not in "\t\r" else ("chr(9)" if c == "\t" else "chr(13)") for c in FORMULA_START)
    return f"(CASE WHEN left({expression}, 1) IN ({starts}) THEN '''' || {expression} ELSE {expression} END)"


def as_text(column: Column) -> str:
    """SQL: the column as text for a spreadsheet cell (NULL stays NULL), formulas neutralised."""
    name = sql_ident(column.name)
    if column.kind == "text":
        return neutralised(name)
    if column.kind == "json":
        return neutralised(f"{name}::VARCHAR")
    if column.kind in ("nested", "other"):
        return neutralised(f"to_json({name})::VARCHAR")
    return f"{name}::VARCHAR"


# -- Parquet -----------------------------------------------------------------------------------


def write_parquet(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> int:
    """Every column typed as in the database (lists, structs, JSON, timestamps in UTC); zstd."""
    return copy_to(con, query, path, "FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880")


def copy_to(con: duckdb.DuckDBPyConnection, query: str, path: Path, options: str) -> int:
    """COPY the query's rows to ``path``; the number of rows written."""
    return con.execute(f"COPY ({query}) TO {sql_literal(str(path))} ({options})").fetchall()[0][0]


def _count(con: duckdb.DuckDBPyConnection, query: str) -> int:
    return con.execute(f"SELECT count(*) FROM ({query})").fetchall()[0][0]


# -- CSV ---------------------------------------------------------------------------------------


def csv_query(con: duckdb.DuckDBPyConnection, query: str) -> str:
    """The query with nested values as JSON text and text cells neutralised (numbers and times as they are)."""
    columns = columns_of(con, query)
    exprs = []
    for column in columns:
        if column.kind in TEXTUAL:
            exprs.append(f"{as_text(column)} AS {sql_ident(column.name)}")
        else:
            exprs.append(sql_ident(column.name))
    return f"SELECT {', '.join(exprs)} FROM ({query})"


def write_csv(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> int:
    """UTF-8 with a byte-order mark (so Excel reads Cyrillic), comma-separated, a header row."""
    body = path.with_name(path.name + ".body")
    rows = copy_to(con, csv_query(con, query), body, "FORMAT csv, HEADER true")
    with open(path, "wb") as out, open(body, "rb") as src:
        out.write(BOM)
        out.flush()
        size = os.fstat(src.fileno()).st_size
        sent = 0
        try:
            while sent < size:
                done = os.sendfile(out.fileno(), src.fileno(), sent, size - sent)
                if done == 0:
                    break
                sent += done
        except OSError:
            src.seek(sent)
            out.seek(len(BOM) + sent)
            shutil.copyfileobj(src, out, 1 << 20)
    body.unlink()
    return rows


# -- Excel ---------------------------------------------------------------------------------------

# Characters XML 1.0 cannot hold (tab, LF and CR can): replaced by U+FFFD in Excel cells.
_XML_ILLEGAL = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]"
_WIDTHS = {"text": 24, "json": 40, "nested": 30, "other": 20, "time": 19, "bool": 8, "float": 14, "int": 10}
_WIDE = re.compile(r"(title|description|name|evidence|rationale|url)")


_XML_SPECIAL = r"[&<>\r\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]"


def _xml_text(expression: str) -> str:
    """SQL: text escaped for an XML text node (characters XML cannot hold become U+FFFD; CR is kept as &#13;).

    Most texts need nothing: one regex test, and the replacements only for those that do."""
    clean = f"regexp_replace({expression}, {sql_literal(_XML_ILLEGAL)}, {sql_literal(chr(0xFFFD))}, 'g')"
    escaped = f"replace(replace(replace(replace({clean}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), chr(13), '&#13;')"
    return f"(CASE WHEN regexp_matches({expression}, {sql_literal(_XML_SPECIAL)}) THEN {escaped} ELSE {expression} END)"


def _astral(expression: str) -> str:
    """SQL: how many characters of the text take two UTF-16 units (Excel counts those twice)."""
    return f"length(regexp_extract_all({expression}, '[\\x{{10000}}-\\x{{10FFFF}}]'))"


def _truncated(expression: str) -> str:
    """SQL: the text cut to fit an Excel cell (counted in UTF-16 units, as Excel does), with a marker."""
    keep = EXCEL_MAX_CELL - len(TRUNCATION_MARKER) - 2
    astral = _astral(expression)
    return (f"(CASE WHEN strlen({expression}) <= {EXCEL_MAX_CELL} THEN {expression} "
            f"WHEN length({expression}) + {astral} <= {EXCEL_MAX_CELL} THEN {expression} "
            f"ELSE left({expression}, {keep} - {astral}) || {sql_literal(TRUNCATION_MARKER)} END)")


def _too_long(expression: str) -> str:
    return (f"(strlen({expression}) > {EXCEL_MAX_CELL} "
            f"AND length({expression}) + {_astral(expression)} > {EXCEL_MAX_CELL})")


@dataclasses.dataclass
class Sheet:
    table: str
    name: str
    query: str        # the table's rows, unordered
    order: str        # its sort keys
    columns: list[Column]
    first: int        # rows first+1 .. last of the table (in sort order) go on this sheet
    last: int
    total: int        # rows of the table

    def numbered(self) -> str:
        """SQL: this sheet's rows with x_rn, their row number on the sheet (2 = the first under the header)."""
        return (f"SELECT * EXCLUDE (x_n), x_n - {self.first} + 1 AS x_rn FROM ("
                f"SELECT *, row_number() OVER (ORDER BY {self.order}) AS x_n FROM ({self.query})) "
                f"WHERE x_n > {self.first} AND x_n <= {self.last}")


@dataclasses.dataclass
class XlsxResult:
    rows: dict[str, int]                                   # sheet name → data rows
    truncated: list[dict[str, Any]]                        # {sheet, column, cells}
    split: dict[str, list[str]]                            # table → its sheets, when over Excel's row limit


def write_xlsx(con: duckdb.DuckDBPyConnection, tables: list[tuple[str, str, str]], path: Path,
               progress=None) -> XlsxResult:
    """One workbook, one sheet per table (a table over Excel's row limit continues on 'name (2)'...)."""
    import xlsxwriter

    per_sheet = EXCEL_MAX_ROWS - 1
    sheets: list[Sheet] = []
    split: dict[str, list[str]] = {}
    for table, query, order in tables:
        columns = columns_of(con, query)
        count = _count(con, query)
        parts = max(1, -(-count // per_sheet))
        names = [table if k == 0 else f"{table} ({k + 1})" for k in range(parts)]
        if parts > 1:
            split[table] = names
        for k, name in enumerate(names):
            sheets.append(Sheet(table, name, query, order, columns, k * per_sheet, min(count, (k + 1) * per_sheet),
                                count))

    skeleton = path.with_name(path.name + ".skeleton")
    workbook = xlsxwriter.Workbook(str(skeleton), {
        "strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False,
    })
    header = workbook.add_format({"bold": True, "bg_color": "#EEEEEE", "bottom": 1})
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    for sheet in sheets:
        worksheet = workbook.add_worksheet(sheet.name)
        for index, column in enumerate(sheet.columns):
            width = 40 if column.kind == "text" and _WIDE.search(column.name) else _WIDTHS[column.kind]
            worksheet.set_column(index, index, width, date_format if column.kind == "time" else None)
            worksheet.write_string(0, index, column.name, header)
        worksheet.freeze_panes(1, 0)
        if sheet.columns:
            worksheet.autofilter(0, 0, max(1, sheet.last - sheet.first), len(sheet.columns) - 1)
    workbook.close()
    date_style = date_format.xf_index

    truncated: list[dict[str, Any]] = []
    rows: dict[str, int] = {}
    try:
        with zipfile.ZipFile(skeleton) as source, \
                zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as target:
            sheet_files = _sheet_files(source)
            for info in source.infolist():
                data = source.read(info.filename)
                position = sheet_files.get(info.filename)
                if position is None:
                    target.writestr(info, data)
                    continue
                sheet = sheets[position]
                rows[sheet.name] = sheet.last - sheet.first
                long = _long_columns(con, sheet)
                _write_sheet(con, target, info.filename, data, sheet, date_style, long)
                truncated.extend(_count_truncated(con, sheet, long))
                if progress:
                    progress(sheet.name)
    finally:
        skeleton.unlink(missing_ok=True)
    return XlsxResult(rows, truncated, split)


def _sheet_files(archive: zipfile.ZipFile) -> dict[str, int]:
    """xl/worksheets/sheetN.xml → position of the sheet in the workbook (N - 1)."""
    found = {}
    for name in archive.namelist():
        match = re.fullmatch(r"xl/worksheets/sheet(\d+)\.xml", name)
        if match:
            found[name] = int(match.group(1)) - 1
    return found


def _rows_query(sheet: Sheet, date_style: int, long: set[str]) -> str:
    """SQL: one <row> element per row of the sheet, in order.

    Two steps, so each text is made (JSON, neutralised, cut when its column is in ``long``) once and
    then escaped. (The cut is left out where no cell needs it: DuckDB plans it slowly.)"""
    # imported here, not at the top: xlsxwriter takes ~40 ms to import, on every monitor command
    from xlsxwriter.utility import xl_col_to_name

    inner = []
    for index, column in enumerate(sheet.columns):
        if column.kind in TEXTUAL:
            value = _truncated(as_text(column)) if column.name in long else as_text(column)
        else:
            value = sql_ident(column.name)
        inner.append(f"{value} AS c{index}")
    cells = []
    for index, column in enumerate(sheet.columns):
        ref = f"'<c r=\"{xl_col_to_name(index)}', x_r, '\""   # pieces of one concat(): fewer copies than ||
        value = f"c{index}"
        if column.kind in ("float", "int"):
            finite = f"{value} IS NOT NULL" + (f" AND isfinite({value})" if column.kind == "float" else "")
            cells.append(f"CASE WHEN {finite} THEN concat({ref}><v>', {value}::VARCHAR, '</v></c>') END")
        elif column.kind == "bool":
            cells.append(f"CASE WHEN {value} IS NOT NULL THEN concat({ref} t=\"b\"><v>', {value}::INTEGER, '</v></c>') END")
        elif column.kind == "time":
            # Excel's serial date (days since 1899-12-30) in UTC with a date-time style; a date Excel
            # cannot show (before 1900-03-01) is written as text
            moment = f"{value}::TIMESTAMPTZ"
            cells.append(
                f"CASE WHEN {value} IS NULL THEN NULL WHEN {moment} >= TIMESTAMPTZ '1900-03-01 00:00:00+00' "
                f"THEN concat({ref} s=\"{date_style}\"><v>', round(epoch({moment}) / 86400.0 + 25569, 8)::VARCHAR, '</v></c>') "
                f"ELSE concat({ref} t=\"inlineStr\"><is><t>', {value}::VARCHAR, '</t></is></c>') END")
        else:
            cells.append(f"CASE WHEN {value} IS NOT NULL THEN concat({ref} t=\"inlineStr\"><is><t xml:space=\"preserve\">', "
                         f"{_xml_text(value)}, '</t></is></c>') END")
    return (f"SELECT concat('<row r=\"', x_r, '\">', {', '.join(cells)}, '</row>') AS x FROM ("
            f"SELECT x_rn, x_rn::VARCHAR AS x_r, {', '.join(inner)} FROM ({sheet.numbered()})) ORDER BY x_rn")


def _write_sheet(con: duckdb.DuckDBPyConnection, target: zipfile.ZipFile, member: str, skeleton: bytes,
                 sheet: Sheet, date_style: int, long: set[str]) -> None:
    """The skeleton's sheet XML (header row, frozen pane, widths, filter) with the data rows inserted."""
    from xlsxwriter.utility import xl_col_to_name

    text = skeleton.decode("utf-8")
    end = text.index("</sheetData>")
    head, tail = text[:end], text[end:]
    last_column = xl_col_to_name(max(0, len(sheet.columns) - 1))
    head = re.sub(r'<dimension ref="[^"]*"/>',
                  f'<dimension ref="A1:{last_column}{max(1, sheet.last - sheet.first + 1)}"/>', head, count=1)
    with target.open(member, "w", force_zip64=True) as out:
        out.write(head.encode("utf-8"))
        if sheet.last > sheet.first:
            for batch in _prefetched(con.sql(_rows_query(sheet, date_style, long)).to_arrow_reader(32_768)):
                _write_strings(out, batch.column(0))
        out.write(tail.encode("utf-8"))


def _prefetched(reader, depth: int = 4):
    """The reader's batches, fetched by a thread: DuckDB makes the next rows while zlib compresses
    these (both release the GIL)."""
    batches: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def fetch() -> None:
        try:
            for batch in reader:
                while not stop.is_set():
                    try:
                        batches.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            batches.put(done)
        except BaseException as exc:  # handed to the consumer
            batches.put(exc)

    thread = threading.Thread(target=fetch, name="xlsx-rows", daemon=True)
    thread.start()
    try:
        while True:
            item = batches.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _write_strings(out, array: pa.Array) -> None:
    """Write the concatenated values of a string array (no separators) without copying them in Python."""
    if len(array) == 0:
        return
    if pa.types.is_string(array.type) or pa.types.is_binary(array.type):
        offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)
    elif pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type):
        offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)
    else:
        out.write("".join(array.to_pylist()).encode("utf-8"))
        return
    start, stop = int(offsets[array.offset]), int(offsets[array.offset + len(array)])
    out.write(memoryview(array.buffers()[2])[start:stop])


def _long_columns(con: duckdb.DuckDBPyConnection, sheet: Sheet) -> set[str]:
    """Text columns with a cell that may not fit in an Excel cell (over 32,766 bytes of UTF-8, the
    apostrophe a formula-like text may get aside)."""
    textual = [c for c in sheet.columns if c.kind in TEXTUAL]
    if not textual or sheet.last <= sheet.first:
        return set()
    lengths = ", ".join(f"max(strlen({sql_ident(c.name) if c.kind == 'text' else as_text(c)}))" for c in textual)
    rows = sheet.query if sheet.first == 0 and sheet.last == sheet.total else sheet.numbered()
    found = con.execute(f"SELECT {lengths} FROM ({rows})").fetchall()[0]
    return {c.name for c, n in zip(textual, found) if n is not None and n >= EXCEL_MAX_CELL}


def _count_truncated(con: duckdb.DuckDBPyConnection, sheet: Sheet, long: set[str]) -> list[dict[str, Any]]:
    """How many cells of each long column were cut to Excel's limit."""
    columns = [c for c in sheet.columns if c.name in long]
    if not columns:
        return []
    exact = ", ".join(f"count(*) FILTER (WHERE {_too_long(as_text(c))})" for c in columns)
    counts = con.execute(f"SELECT {exact} FROM ({sheet.numbered()})").fetchall()[0]
    return [{"sheet": sheet.name, "column": c.name, "cells": n} for c, n in zip(columns, counts) if n]
