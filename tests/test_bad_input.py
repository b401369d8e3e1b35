"""Bad input is quarantined with file, line and reason; the rest of the load goes on; stored data is
untouched; usage errors exit 2.

Each bad record is a mutated copy of a real tender (the Kyiv lift repair, already stored with
dateModified 2023-03-01) given a *later* dateModified, so a bad copy that slipped through would
replace the good stored one.
"""

from __future__ import annotations

import copy
import json
import os

import pytest
from conftest import (
    CARDINAL,
    LIFT_REPAIR,
    MICROSCOPES,
    OCDS,
    OCDS_RECORDS,
    PROZORRO,
    body,
    mutated,
    read_json,
    summary,
    write_json,
    write_lines,
)

LIFT_ID = "de80d4f75fbf4062905c5e1c1d9afe5c"
LIFT_OCID = "ocds-be6bcu-UA-2023-02-16-009364-a"
LATER = "2023-03-02T12:00:00.000000+02:00"
PLAN_ID = "cccb8928810c4bda97b1eabb9c4c4f9b"


def _lift(**changes) -> dict:
    def change(t):
        t["dateModified"] = LATER
        t.update(changes)

    return mutated(LIFT_REPAIR, change)


def _text(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def _truncated() -> bytes:
    text = _text(_lift(title="обрізаний запис")).encode("utf-8")
    return text[: len(text) // 2]


def _string_amount() -> bytes:
    tender = _lift()
    tender["value"]["amount"] = "12 000,50"
    return _text(tender).encode("utf-8")


def _missing_id() -> bytes:
    tender = _lift()
    del tender["id"]
    return _text(tender).encode("utf-8")


def _naive_date_modified() -> bytes:
    tender = _lift()
    tender["dateModified"] = "2023-02-16T10:00:00"
    return _text(tender).encode("utf-8")


def _number_date_modified() -> bytes:
    tender = _lift()
    tender["dateModified"] = 12345
    return _text(tender).encode("utf-8")


def _invalid_utf8() -> bytes:
    text = _text(_lift()).encode("utf-8")
    word = "Дарницького".encode("utf-8")
    assert word in text
    return text.replace(word, b"\xff\xfe" + word[2:], 1)


def _huge_description() -> bytes:
    return _text(_lift(description="x" * (10 << 20))).encode("utf-8")  # a 10 MiB description


def _data_is_a_list() -> bytes:
    return _text({"data": [_lift()], "config": {"restricted": False}}).encode("utf-8")


# (case id, line builder, words the reason must contain)
CASES = [
    ("truncated-json", _truncated, ["invalid JSON"]),
    ("amount-as-string", _string_amount, ["string", "12 000,50"]),
    ("missing-id", _missing_id, ["missing id"]),
    ("date-modified-without-timezone", _naive_date_modified, ["timezone", "2023-02-16T10:00:00"]),
    ("date-modified-a-number", _number_date_modified, ["unreadable dateModified: 12345"]),
    ("invalid-utf8", _invalid_utf8, ["UTF-8"]),
    ("record-over-size-limit", _huge_description, ["MiB", "limit"]),
    ("data-is-a-list", _data_is_a_list, ['"data" is a list']),
]


@pytest.fixture
def stored(load_once, query):
    """A database that already holds the real lift-repair tender and a plan."""
    code, out, _ = load_once(LIFT_REPAIR, PROZORRO / "plan-complete.json")
    assert code == 0 and summary(out)["new"] == 2

    def snapshot():
        return {
            "raw": query("SELECT source, kind, id, sha256, fetched_at, origin FROM raw_records "
                         "WHERE id IN (?, ?) ORDER BY id", [LIFT_ID, PLAN_ID]),
            "process": query("SELECT * FROM processes WHERE ocid = ?", [LIFT_OCID]),
            "bids": query("SELECT * FROM bids WHERE ocid = ? ORDER BY ALL", [LIFT_OCID]),
            "plans": query("SELECT * FROM plans"),
        }

    return snapshot


def _good_lines():
    microscopes = body(read_json(MICROSCOPES))
    esco = read_json(PROZORRO / "tender-esco-cancelled.json")  # an API envelope
    return microscopes, esco


@pytest.mark.parametrize(("case", "build", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_line_is_quarantined_and_the_load_goes_on(tmp_path, load, query, stored, case, build, words):
    before = stored()
    good_first, good_last = _good_lines()
    path = write_lines(tmp_path / f"{case}.jsonl", [good_first, build(), good_last])

    code, out, err = load(path)

    assert code == 0, err[-2000:]
    counts = summary(out)
    assert (counts["quarantined"], counts["new"], counts["updated"]) == (1, 2, 0)
    assert "1 quarantined" in out
    [(origin, line, reason)] = query("SELECT origin, line, reason FROM quarantine")
    assert origin == str(path)
    assert line == 2
    for word in words:
        assert word in reason, f"{word!r} not in {reason!r}"
    # the good lines before and after the bad one are stored
    assert query("SELECT origin FROM raw_records WHERE origin LIKE ? ORDER BY origin", [f"{path}:%"]) == [
        (f"{path}:1",), (f"{path}:3",)]
    assert query("SELECT count(*) FROM processes") == [(3,)]
    # what was stored before is untouched
    assert stored() == before
    assert query("SELECT status FROM runs ORDER BY run_id") == [("complete",), ("complete",)]


def test_all_bad_lines_in_one_file(tmp_path, load, query, stored):
    before = stored()
    good_first, good_last = _good_lines()
    lines = [good_first] + [build() for _, build, _ in CASES] + [good_last]
    path = write_lines(tmp_path / "all-bad.jsonl", lines)

    code, out, err = load(path)

    assert code == 0, err[-2000:]
    assert summary(out)["quarantined"] == len(CASES)
    assert f"{len(CASES)} quarantined" in out
    rows = query("SELECT line, reason FROM quarantine ORDER BY line")
    assert [line for line, _ in rows] == list(range(2, 2 + len(CASES)))
    for (_, reason), (case, _, words) in zip(rows, CASES):
        assert all(word in reason for word in words), (case, reason)
    assert query("SELECT count(*) FROM raw_records WHERE origin LIKE ?", [f"{path}:%"]) == [(2,)]
    assert stored() == before


def test_quarantine_keeps_the_record_id_and_raw_text(tmp_path, load, query):
    path = write_lines(tmp_path / "one.jsonl", [_naive_date_modified()])
    load(path)
    [(record_id, raw, source)] = query("SELECT record_id, raw, source FROM quarantine")
    assert record_id == LIFT_ID
    assert source == "prozorro"
    assert json.loads(raw)["dateModified"] == "2023-02-16T10:00:00"


def test_oversized_record_keeps_only_the_first_mib(tmp_path, load, query):
    path = write_lines(tmp_path / "big.jsonl", [_huge_description()])
    load(path)
    [(length, reason)] = query("SELECT length(raw), reason FROM quarantine")
    assert length <= 1 << 20
    assert "MiB" in reason


def test_truncated_json_document_file(tmp_path, load, query):
    """A .json file (one pretty-printed document) cut short: quarantined, the next file still loads."""
    text = LIFT_REPAIR.read_bytes()
    bad = tmp_path / "cut.json"
    bad.write_bytes(text[: len(text) // 2].decode("utf-8", errors="ignore").encode("utf-8"))
    code, out, err = load(bad, MICROSCOPES)
    assert code == 0, err[-2000:]
    counts = summary(out)
    assert (counts["quarantined"], counts["new"]) == (1, 1)
    [(origin, reason)] = query("SELECT origin, reason FROM quarantine")
    assert origin == str(bad)
    assert "invalid JSON" in reason
    assert query("SELECT ocid FROM processes") == [("ocds-be6bcu-UA-2022-07-23-000100-a",)]


def test_unrecognised_json_is_quarantined_not_dropped(tmp_path, load, query):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"hello": "world", "items": [1, 2]}), encoding="utf-8")
    code, out, _ = load(path)
    assert code == 0
    assert summary(out)["quarantined"] == 1
    [(reason,)] = query("SELECT reason FROM quarantine")
    assert "not recognised" in reason


def test_a_newer_bad_copy_does_not_replace_the_stored_good_one(tmp_path, load, query, stored):
    before = stored()
    load(write_lines(tmp_path / "bad.jsonl", [_string_amount()]))
    assert stored() == before
    assert query("SELECT value_amount FROM processes WHERE ocid = ?", [LIFT_OCID]) == [(4177.0,)]


def test_blank_lines_are_ignored_and_line_numbers_count_them(tmp_path, load, query):
    good_first, good_last = _good_lines()
    path = write_lines(tmp_path / "gaps.jsonl", [good_first, "", "   ", _missing_id(), good_last])
    code, out, _ = load(path)
    assert code == 0
    assert summary(out)["quarantined"] == 1
    assert query("SELECT line FROM quarantine") == [(4,)]
    assert query("SELECT origin FROM raw_records ORDER BY origin") == [(f"{path}:1",), (f"{path}:5",)]


# --- usage errors ------------------------------------------------------------------------------


def test_missing_path_exits_2_naming_the_path(tmp_path, load, db_path):
    missing = tmp_path / "no-such-dir" / "tenders.jsonl"
    code, out, err = load(LIFT_REPAIR, missing)
    assert code == 2
    assert str(missing) in err
    assert "loaded" not in out


def test_directory_without_loadable_files_is_fine(tmp_path, load, query):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("nothing to load", encoding="utf-8")
    (empty / "table.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    code, out, _ = load(empty)
    assert code == 0
    counts = summary(out)
    assert counts["files"] == 0 and counts["new"] == 0 and counts["quarantined"] == 0
    assert query("SELECT count(*) FROM raw_records") == [(0,)]
    assert query("SELECT status FROM runs") == [("complete",)]


def test_directories_are_searched_recursively_for_loadable_files(tmp_path, load, query):
    tree = tmp_path / "tree" / "2023" / "03"
    tree.mkdir(parents=True)
    (tree / "lift.json").write_bytes(LIFT_REPAIR.read_bytes())
    write_lines(tmp_path / "tree" / "micro.jsonl", [body(read_json(MICROSCOPES))])
    (tmp_path / "tree" / "readme.txt").write_text("ignored", encoding="utf-8")
    code, out, _ = load(tmp_path / "tree")
    assert code == 0
    assert summary(out)["files"] == 2
    assert query("SELECT count(*) FROM processes") == [(2,)]


def test_unknown_format_option_is_a_usage_error(load):
    code, _, err = load(LIFT_REPAIR, options=("--format", "csv"))
    assert code == 2
    assert "csv" in err


def test_line_numbers_stay_right_across_read_chunks(tmp_path, load, query):
    """Two 10 MiB lines push the rest of the file past the reader's first 16 MiB chunk."""
    huge = _huge_description()
    path = write_lines(tmp_path / "long.jsonl", [huge, huge, _naive_date_modified(), body(read_json(MICROSCOPES))])
    assert path.stat().st_size > 20 << 20
    code, out, _ = load(path)
    assert code == 0
    assert summary(out)["quarantined"] == 3
    assert [line for (line,) in query("SELECT line FROM quarantine ORDER BY line")] == [1, 2, 3]
    assert query("SELECT origin FROM raw_records") == [(f"{path}:4",)]


def test_gzipped_json_lines_quarantine_names_the_file_and_line(tmp_path, load, query):
    import gzip

    good_first, good_last = _good_lines()
    plain = write_lines(tmp_path / "plain.jsonl", [good_first, _missing_id(), good_last])
    path = tmp_path / "tenders.jsonl.gz"
    path.write_bytes(gzip.compress(plain.read_bytes()))
    code, out, _ = load(path)
    assert code == 0
    assert summary(out)["new"] == 2 and summary(out)["quarantined"] == 1
    assert query("SELECT origin, line, reason FROM quarantine") == [(str(path), 2, "missing id")]


# --- a record over the size limit in a single-document file ----------------------------------------

HUGE = "x" * (10 << 20)  # a 10 MiB description; the limit is 8 MiB (max_record_mb)


def _compiled_release() -> dict:
    return copy.deepcopy(read_json(OCDS_RECORDS)["records"][0]["compiledRelease"])


def _huge_envelope() -> tuple[dict, str | None]:
    return {"data": _lift(description=HUGE), "config": {"restricted": False}}, None


def _huge_compiled_release() -> tuple[dict, str | None]:
    release = _compiled_release()
    release["tender"]["description"] = HUGE
    return release, None


def _huge_second_release_in_a_package() -> tuple[dict, str | None]:
    package = read_json(OCDS / "release-package-tender-then-award.json")
    package["releases"][1]["description"] = HUGE
    return package, "/releases/1"


def _huge_compiled_release_in_a_record_package() -> tuple[dict, str | None]:
    package = read_json(OCDS_RECORDS)
    package["records"][3]["compiledRelease"]["tender"]["description"] = HUGE
    return package, "/records/3"


@pytest.mark.parametrize("build", [_huge_envelope, _huge_compiled_release, _huge_second_release_in_a_package,
                                   _huge_compiled_release_in_a_record_package],
                         ids=["api-envelope", "compiled-release", "release-package", "record-package"])
def test_record_over_the_size_limit_in_a_json_document_is_quarantined(tmp_path, load, query, stored, build):
    before = stored()
    document, locator = build()
    path = write_json(tmp_path / "big.json", document)
    code, out, err = load(path)
    assert code == 0, err[-2000:]
    assert summary(out)["quarantined"] == 1
    [(origin, line, where, reason, raw_length)] = query(
        "SELECT origin, line, locator, reason, length(raw) FROM quarantine")
    assert (origin, line, where) == (str(path), None, locator)
    assert "over the 8 MiB limit" in reason and "MiB" in reason.split("over")[0]
    assert raw_length <= 1 << 20
    assert query("SELECT count(*) FROM raw_records WHERE length(json) > 8 << 20") == [(0,)]
    assert stored() == before
    if build is _huge_compiled_release_in_a_record_package:  # the other nine records load
        assert summary(out)["new"] == 9


# --- a folder that cannot be read ----------------------------------------------------------------


def _deny_listing(monkeypatch, folder):
    """Listing ``folder`` fails with EACCES (chmod does not deny root, so os.scandir is patched)."""
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(folder):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_unreadable_folder_exits_2_naming_it(tmp_path, load, monkeypatch):
    """Path.rglob of Python 3.11 skipped such a folder in silence. Tests run as root, where chmod does
    not deny, so the listing of one sub-folder fails through a patched os.scandir."""
    tree = tmp_path / "tree"
    locked = tree / "locked"
    locked.mkdir(parents=True)
    (tree / "lift.json").write_bytes(LIFT_REPAIR.read_bytes())
    (locked / "micro.json").write_bytes(MICROSCOPES.read_bytes())
    _deny_listing(monkeypatch, locked)
    code, out, err = load(tree)
    assert code == 2
    assert f"{locked}: folder cannot be read (Permission denied)" in err
    assert "loaded" not in out


def test_unreadable_top_folder_exits_2(tmp_path, load, monkeypatch):
    tree = tmp_path / "tree"
    tree.mkdir()
    _deny_listing(monkeypatch, tree)
    code, _, err = load(tree)
    assert code == 2
    assert str(tree) in err and "Permission denied" in err


# --- --format of the other family --------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "forced", "words"),
    [
        (OCDS / "release-package-tender-then-award.json", "prozorro", "an OCDS release package"),
        (OCDS_RECORDS, "prozorro", "an OCDS record package"),
        (LIFT_REPAIR, "ocds", "a ProZorro tender (it has tenderID)"),
        (PROZORRO / "tender-esco-cancelled.json", "ocds", "a ProZorro API response with a tender"),
    ],
    ids=["release-package-as-prozorro", "record-package-as-prozorro", "tender-as-ocds", "envelope-as-ocds"],
)
def test_a_file_of_the_other_family_than_format_is_refused(load, query, path, forced, words):
    right = "ocds" if forced == "prozorro" else "prozorro"
    code, out, err = load(path, options=("--format", forced))
    assert code == 2
    assert f"{path}: {words}" in err
    assert f"but --format {forced} was given (use --format {right} or auto)" in err
    assert "missing id" not in err and "missing ocid" not in err
    assert "loaded" not in out
    assert query("SELECT count(*) FROM raw_records") == [(0,)]
    assert query("SELECT count(*) FROM quarantine") == [(0,)]
    [(status, error)] = query("SELECT status, error FROM runs")
    assert status == "failed" and words in error


@pytest.mark.parametrize(("forced", "lines", "words"), [
    ("prozorro", lambda: [_compiled_release()] * 3, "an OCDS compiled release (3 of the first 3 JSON lines"),
    ("ocds", lambda: [_lift(), body(read_json(MICROSCOPES))], "a ProZorro tender (it has tenderID) (2 of the first 2"),
], ids=["compiled-releases-as-prozorro", "tenders-as-ocds"])
def test_json_lines_of_the_other_family_are_refused(tmp_path, load, query, forced, lines, words):
    path = write_lines(tmp_path / "lines.jsonl", lines())
    code, _, err = load(path, options=("--format", forced))
    assert code == 2
    assert f"{path}: {words}" in err and f"--format {forced} was given" in err
    assert query("SELECT count(*) FROM raw_records") == [(0,)]


def test_a_cardinal_file_with_format_prozorro_is_refused(load):
    path = min(CARDINAL.glob("*.jsonl"))
    code, _, err = load(path, options=("--format", "prozorro"))
    assert code == 2
    assert "an OCDS compiled release" in err and "--format prozorro was given" in err


def test_one_object_of_the_other_family_in_a_list_is_quarantined_with_that_reason(tmp_path, load, query):
    path = write_json(tmp_path / "mixed.json", [body(read_json(MICROSCOPES)), _compiled_release()])
    code, out, err = load(path, options=("--format", "prozorro"))
    assert code == 0, err[-2000:]
    assert (summary(out)["new"], summary(out)["quarantined"]) == (1, 1)
    assert query("SELECT locator, reason FROM quarantine") == [
        ("/1", "an OCDS compiled release, but --format prozorro was given (use --format ocds or auto)")]


def test_format_still_decides_what_auto_cannot_tell(tmp_path, load, query):
    """An object with neither an ocid nor a ProZorro id is not refused: --format says how to read it."""
    path = write_json(tmp_path / "vague.json", {"id": "abc", "title": "a thing"})
    code, out, _ = load(path, options=("--format", "ocds"))
    assert code == 0 and summary(out)["quarantined"] == 1
    assert query("SELECT reason FROM quarantine") == [("missing ocid",)]
    # and files of the named family load as before
    code, out, _ = load(LIFT_REPAIR, OCDS_RECORDS, options=("--format", "auto"))
    assert code == 0 and summary(out)["new"] == 11
    code, out, _ = load(LIFT_REPAIR, options=("--format", "prozorro"))
    assert code == 0 and summary(out)["unchanged"] == 1


# --- versioning dates that are not dates ---------------------------------------------------------


@pytest.mark.parametrize(("value", "shown"), [
    (12345, "12345"), ("yesterday", '"yesterday"'), ("infinity", '"infinity"'), ("2023-02-30T10:00:00+02:00",
                                                                                  '"2023-02-30T10:00:00+02:00"'),
    (True, "true"),
], ids=["number", "word", "infinity", "no-such-day", "boolean"])
def test_unreadable_date_modified_is_not_called_a_timezone_problem(tmp_path, load, query, value, shown):
    tender = _lift()
    tender["dateModified"] = value
    path = write_json(tmp_path / "tender.json", {"data": tender})
    code, out, _ = load(path)
    assert code == 0 and summary(out)["quarantined"] == 1
    assert query("SELECT reason FROM quarantine") == [(f"unreadable dateModified: {shown}",)]


@pytest.mark.parametrize(("value", "shown"), [(12345, "12345"), ("soon", '"soon"')], ids=["number", "word"])
def test_unreadable_release_and_record_dates(tmp_path, load, query, value, shown):
    release = _compiled_release()
    release["date"] = value
    record = {"ocid": "ocds-x-1", "compiledRelease": dict(_compiled_release(), ocid="ocds-x-1", date=value)}
    path = write_lines(tmp_path / "dates.jsonl", [release])
    packaged = write_json(tmp_path / "records.json", {"records": [record]})
    code, out, _ = load(path, packaged)
    assert code == 0 and summary(out)["quarantined"] == 2
    assert query("SELECT reason FROM quarantine ORDER BY origin") == [
        (f"unreadable release date: {shown}",), (f"unreadable dateModified: {shown}",)]


# --- text fields of the wrong type -------------------------------------------------------------


def test_a_text_field_of_the_wrong_type_becomes_null_but_numbers_stay(tmp_path, load, query_one):
    tender = _lift(title=["a", "b"], description={"uk": "опис"})
    tender["items"][0]["description"] = ["x"]
    tender["procuringEntity"]["identifier"]["id"] = 39604270  # an EDRPOU given as a JSON number
    tender["procuringEntity"]["name"] = "[1, 2]"  # a real text that only looks like JSON stays
    path = write_json(tmp_path / "tender.json", {"data": tender})
    code, out, err = load(path)
    assert code == 0 and summary(out)["new"] == 1, err[-2000:]
    assert query_one("SELECT title, description, buyer_id, procuring_entity_name FROM processes") == (
        None, None, "UA-EDR-39604270", "[1, 2]")
    assert query_one("SELECT description FROM items") == (None,)

