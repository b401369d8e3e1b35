"""Large .json documents are streamed one element at a time; damaged files keep what came before the damage.

The streaming threshold (64 MiB) is lowered to 0 here so the real fixtures take the streamed path; each
streamed load is compared with the same file parsed whole.
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import zlib
from pathlib import Path

import duckdb
import pytest

from conftest import LIFT_REPAIR, MICROSCOPES, OCDS_RECORDS, OCDS_RELEASES, read_json, summary
from monitor.loading import files, packages


@pytest.fixture
def streamed(monkeypatch: pytest.MonkeyPatch):
    """Stream every .json document that is a package or a list; parsing one whole fails the test."""
    monkeypatch.setattr(packages, "STREAM_MIN_BYTES", 0)

    def whole(path, *_):
        raise AssertionError(f"{path} was parsed whole")

    monkeypatch.setattr(files, "_whole_document", whole)


def _tables(db: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            "raw": con.execute("SELECT kind, id, ocid, sha256 FROM raw_records ORDER BY ALL").fetchall(),
            "processes": con.execute("SELECT ocid, raw_key, title, value_amount, contracts_count FROM processes "
                                     "ORDER BY ALL").fetchall(),
            "contracts": con.execute("SELECT ocid, contract_id, value_amount FROM contracts ORDER BY ALL").fetchall(),
            "quarantine": con.execute("SELECT locator, reason FROM quarantine ORDER BY ALL").fetchall(),
        }
    finally:
        con.close()


def _releases(count: int) -> list[dict]:
    """``count`` releases of distinct ocids, copied from the ten real ones."""
    real = read_json(OCDS_RELEASES)["releases"]
    releases = []
    for n in range(count):
        release = copy.deepcopy(real[n % len(real)])
        release["ocid"] = f"{release['ocid']}-{n:04d}"
        release["id"] = f"{release['id']}-{n:04d}"
        releases.append(release)
    return releases


def _package(releases: list[dict]) -> bytes:
    return json.dumps({"uri": "https://example.org/package.json", "version": "1.1",
                       "publisher": {"name": "test"}, "releases": releases}, ensure_ascii=False).encode()


def _tender_list(tmp_path: Path) -> Path:
    path = tmp_path / "tenders.json"
    path.write_text(json.dumps([read_json(MICROSCOPES), read_json(LIFT_REPAIR)], ensure_ascii=False))
    return path


def _gz_of(path: Path, tmp_path: Path) -> Path:
    target = tmp_path / f"{path.name}.gz"
    target.write_bytes(gzip.compress(path.read_bytes()))
    return target


@pytest.mark.parametrize("make", [
    pytest.param(lambda tmp: OCDS_RELEASES, id="release-package"),
    pytest.param(lambda tmp: OCDS_RECORDS, id="record-package"),
    pytest.param(_tender_list, id="list-of-prozorro-tenders"),
    pytest.param(lambda tmp: _gz_of(OCDS_RELEASES, tmp), id="release-package-gz"),
])
def test_streamed_document_stores_what_parsing_it_whole_stores(tmp_path, run_cli, monkeypatch, make):
    path = make(tmp_path)
    assert run_cli("--db", tmp_path / "whole.duckdb", "load", path)[0] == 0
    whole = _tables(tmp_path / "whole.duckdb")
    with monkeypatch.context() as patch:
        patch.setattr(packages, "STREAM_MIN_BYTES", 0)
        patch.setattr(files, "_whole_document", lambda *_: pytest.fail("parsed whole"))
        code, out, _ = run_cli("--db", tmp_path / "streamed.duckdb", "load", path)
    assert code == 0
    assert summary(out)["new"] == len(whole["raw"]) > 0
    assert _tables(tmp_path / "streamed.duckdb") == whole


def test_package_that_breaks_off_keeps_the_releases_before_the_break(tmp_path, run_cli, query, db_path, streamed):
    releases = _releases(40)
    data = _package(releases)
    cut = data.index(json.dumps(releases[25]["ocid"]).encode())  # inside release 25
    path = tmp_path / "broken.json"
    path.write_bytes(data[:cut] + b"!" + data[cut:])
    code, out, _ = run_cli("--db", db_path, "load", path)
    assert code == 0
    assert summary(out)["new"] == 25 and summary(out)["quarantined"] == 1
    assert query("SELECT ocid FROM processes ORDER BY ocid") == sorted((r["ocid"],) for r in releases[:25])
    [(locator, reason)] = query("SELECT locator, reason FROM quarantine")
    assert locator == "/releases/25"
    assert reason.startswith("invalid JSON after 25 elements of the package:")
    assert "the rest of the file was not read" in reason


@pytest.mark.parametrize("stream", [True, False], ids=["streamed-package", "json-lines"])
def test_truncated_gz_keeps_the_records_before_the_damage(tmp_path, run_cli, query, db_path, monkeypatch, stream):
    """A download cut short: the whole records in the readable part are stored, the file is quarantined
    once with a reason that says what happened, and the run completes."""
    releases = _releases(400)
    if stream:
        monkeypatch.setattr(packages, "STREAM_MIN_BYTES", 0)
        data, name = _package(releases), "cut.json.gz"
    else:
        compiled = [dict(r, tag=["compiled"]) for r in releases]
        data, name = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in compiled), "cut.jsonl.gz"
    compressed = gzip.compress(data)
    path = tmp_path / name
    path.write_bytes(compressed[: len(compressed) * 3 // 5])
    readable = zlib.decompressobj(wbits=31).decompress(path.read_bytes())  # what survives of the text
    code, out, _ = run_cli("--db", db_path, "load", path)
    assert code == 0
    stored = [ocid for (ocid,) in query("SELECT ocid FROM processes ORDER BY ocid")]
    complete = [r["ocid"] for r in releases if json.dumps(r["ocid"]).encode() in readable]
    if stream:  # every release parsed whole is kept; the one cut off is the only loss
        assert len(complete) - 1 <= len(stored) <= len(complete) and stored == sorted(complete[: len(stored)])
    else:  # every whole line is kept
        assert stored == sorted(complete[: readable.count(b"\n")])
    [(origin, reason)] = query("SELECT origin, reason FROM quarantine")
    assert origin == str(path)
    assert reason.startswith("the file cannot be read to its end (EOFError: ")
    assert query("SELECT status FROM runs") == [("complete",)]


def test_streamed_list_of_the_other_family_is_refused_before_anything_is_stored(tmp_path, run_cli, query, db_path,
                                                                                streamed):
    compiled = [record["compiledRelease"] for record in read_json(OCDS_RECORDS)["records"]]
    path = tmp_path / "compiled.json"
    path.write_text(json.dumps(compiled, ensure_ascii=False))
    code, _, err = run_cli("--db", db_path, "load", path, "--format", "prozorro")
    assert code == 2
    assert "10 of the first 10 objects of the list are like it" in err
    assert query("SELECT count(*) FROM raw_records") == [(0,)]


def test_package_under_the_other_format_is_refused_from_its_head(tmp_path, run_cli, query, db_path, streamed):
    """Refused with the same message as when read whole, without parsing the rest of the file."""
    code, _, err = run_cli("--db", db_path, "load", OCDS_RELEASES, "--format", "prozorro")
    assert code == 2
    assert "an OCDS release package, but --format prozorro was given" in err
    assert query("SELECT count(*) FROM raw_records") == [(0,)]


@pytest.mark.parametrize(("document", "expected"), [
    (b'[{"ocid": "a"}]', ("item", None)),
    (b'{"uri": "u", "publisher": {"name": "p", "uri": ["x"]}, "extensions": [], "releases": [{"ocid": "a"}]}',
     ("releases.item", {"uri": "u", "publisher": {}, "extensions": [], "releases": []})),
    (b'{"records": [{"ocid": "a"}], "uri": "after the array is not read"}', ("records.item", {"records": []})),
    (b'{"ocid": "a", "releases": [{"ocid": "a"}]}', ("releases.item", {"ocid": "a", "releases": []})),
    (b'{"data": {"tenderID": "UA-1"}}', None),  # one object: parsed whole
    (b'{"ocid": "a"}\n{"ocid": "b"}\n', None),  # JSON Lines under .json
    (b'{"releases": ', None),
    (b'', None),
])
def test_outline_finds_the_array_of_a_package_or_gives_up(document, expected):
    where = packages.outline(io.BytesIO(document))
    assert (where and (where.prefix, where.head)) == expected


def test_a_record_with_its_ocid_before_its_releases_is_parsed_whole(tmp_path, monkeypatch):
    """Its outline finds a releases array, but the ocid before it makes the object an OCDS record."""
    monkeypatch.setattr(packages, "STREAM_MIN_BYTES", 0)
    record = tmp_path / "record.json"
    record.write_text(json.dumps({"ocid": "ocds-a", "releases": _releases(2)}))
    package = tmp_path / "package.json"
    package.write_bytes(_package(_releases(2)))
    options = files.ReadOptions()
    assert files._stream_outline(record, options) is None
    assert files._stream_outline(package, options) == packages.Outline("releases.item", {
        "uri": "https://example.org/package.json", "version": "1.1", "publisher": {}, "releases": []})


def test_large_json_lines_named_json_are_streamed_as_json_lines(tmp_path, run_cli, query, db_path, streamed):
    compiled = [record["compiledRelease"] for record in read_json(OCDS_RECORDS)["records"]]
    path = tmp_path / "compiled-releases.json"
    path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in compiled))
    code, out, _ = run_cli("--db", db_path, "load", path)
    assert code == 0 and summary(out)["new"] == 10
    assert query("SELECT count(*), count(DISTINCT ocid) FROM processes") == [(10, 10)]
    assert query("SELECT origin FROM raw_records ORDER BY origin") == sorted((f"{path}:{n}",) for n in range(1, 11))
