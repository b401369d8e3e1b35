"""Bad input is quarantined with file, line and reason; the rest of the load goes on; stored data is
untouched; usage errors exit 2.

Each bad record is a mutated copy of a real tender (the Kyiv lift repair, already stored with
dateModified 2023-03-01) given a *later* dateModified, so a bad copy that slipped through would
replace the good stored one.
"""

from __future__ import annotations

import json

import pytest

from conftest import (
    LIFT_REPAIR,
    MICROSCOPES,
    PROZORRO,
    body,
    mutated,
    read_json,
    summary,
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
