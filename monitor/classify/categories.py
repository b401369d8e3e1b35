"""Category files (``rules/classify/*.yaml``): loading, validation, and the rules hash.

A category file defines one category::

    id: programme.hiv                  # = the file name without .yaml
    name: HIV prevention, care and treatment
    parent: health                     # optional; a category implies its parent
    description: Why analysts track it.
    codes: ["85323"]                   # CPV/ДК021 prefixes or full codes: strong evidence
    context_codes: ["336514"]          # weak evidence (counts only with another signal)
    exclude_codes: ["3368"]            # items with these codes give this category no evidence
    medicines:
      inn: [zidovudine, dolutegravir]  # INN of item additionalClassifications: strong evidence
      atc: [J05AE, J05AF]              # ATC prefixes: strong evidence
      atc_exclude: [J05AF10]
      negative_atc: [N02AE]            # an item with this ATC voids the category's keyword evidence (whole process)
    budget_codes:                      # budget programme codes: supporting evidence (1 point each), plans only
      tpkvkmb: ["2143"]                # ТПКВКМБ local-budget programme (plan budget.breakdown, scheme ТПКВКМБ)
      kpk: ["2301400"]                 # КПКВК state-budget programme (scheme КПК-<year>)
    keywords:                          # one point per distinct keyword matched (keyword_score)
      uk: ["туберкул", {pattern: "ВІЛ", case_sensitive: true, whole_word: true, score: 2}]
      ru: ["туберкул"]
    keyword_score: 1                   # 2 when the category's keywords are specific enough alone
    context_keywords: ["соціальн\\w* супровід"]   # weak cues that never satisfy require_keyword
    negative: ["тварин"]               # any text of the process matching one voids the category's keyword evidence
    buyer_kinds: [social]              # weak evidence
    min_score: 2                       # strong evidence scores 2, each weak signal 1
    require_keyword: false             # true: codes and buyer alone never assign it (a text cue is needed)

Keywords are Rust-regex fragments (the engine is Polars): no look-around; ``\\b`` is Unicode-aware.
A plain string is case-insensitive and must start at a word boundary; ``whole_word`` also requires
a boundary at its end. Every CPV code must exist in the ДК021 list (``data/reference/derived``); every
budget code in the ТПКВКМБ list (``prozorro-standards/classifiers/tkpkmb.json``) or the КПКВК list
(``kpk.json``, any year).

Budget codes are read where the data carries them: plans (``plans.budget_breakdown``: scheme and code
of each ``budget.breakdown[].classification``). Processes (tenders) carry no budget codes in the
common model, so for them ``budget_codes`` gives no evidence.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from monitor.reference import PROJECT_ROOT, reference_dir
from monitor.rulefiles import (
    RuleFileError,
    key_line,
    lines_on_error,
    path_line,
    read_yaml,
    schema_problems,
)

DEFAULT_DIR = PROJECT_ROOT / "rules" / "classify"
LANGUAGES = ("uk", "ru", "en", "ky")

_PATTERN = {
    "oneOf": [
        {"type": "string", "minLength": 1},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["pattern"],
            "properties": {
                "pattern": {"type": "string", "minLength": 1},
                "case_sensitive": {"type": "boolean"},
                "whole_word": {"type": "boolean"},
                "score": {"enum": [1, 2]},
            },
        },
    ]
}
# "853" = every code starting 853; "85311000-2" = that code and the codes under it;
# "=45215210" = exactly that code (its siblings and children stay in)
_CODES = {"type": "array", "items": {"type": "string", "pattern": r"^=?\d{2,8}(-\d)?$"}}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "name", "description"],
    "properties": {
        "id": {"type": "string", "pattern": r"^[a-z]+(\.[a-z][a-z0-9-]*)*$"},
        "name": {"type": "string", "minLength": 1},
        "parent": {"type": "string"},
        "description": {"type": "string", "minLength": 1},
        "codes": _CODES,
        "context_codes": _CODES,
        "exclude_codes": _CODES,
        "medicines": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "inn": {"type": "array", "items": {"type": "string", "minLength": 2}},
                "atc": {"type": "array", "items": {"type": "string", "pattern": r"^[A-Z](\d{2}[A-Z0-9]*)?$"}},
                "atc_exclude": {"type": "array", "items": {"type": "string", "pattern": r"^[A-Z](\d{2}[A-Z0-9]*)?$"}},
                "negative_atc": {"type": "array", "items": {"type": "string", "pattern": r"^[A-Z](\d{2}[A-Z0-9]*)?$"}},
            },
        },
        "budget_codes": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "tpkvkmb": {"type": "array", "items": {"type": "string", "pattern": r"^\d{4}$"}},
                "kpk": {"type": "array", "items": {"type": "string", "pattern": r"^\d{7}$"}},
            },
        },
        "keywords": {
            "type": "object",
            "additionalProperties": False,
            "properties": {lang: {"type": "array", "items": _PATTERN} for lang in LANGUAGES},
        },
        "context_keywords": {"type": "array", "items": _PATTERN},
        "keyword_score": {"enum": [1, 2]},
        "negative": {"type": "array", "items": _PATTERN},
        "buyer_kinds": {
            "type": "array",
            "items": {"enum": ["authority", "central", "defense", "general", "other", "social", "special"]},
        },
        "min_score": {"type": "integer", "minimum": 1},
        "require_keyword": {"type": "boolean"},
    },
}


class CategoryError(RuleFileError):
    """One or more category files are invalid; ``problems`` are ``file:line: key: message`` strings."""


@dataclasses.dataclass(frozen=True)
class Category:
    """A validated category, with its keyword patterns compiled to Rust-regex strings."""

    id: str
    name: str
    description: str
    parent: str | None
    codes: tuple[str, ...]
    context_codes: tuple[str, ...]
    exclude_codes: tuple[str, ...]
    inn: tuple[str, ...]
    atc: tuple[str, ...]
    atc_exclude: tuple[str, ...]
    negative_atc: tuple[str, ...]
    budget_codes: tuple[tuple[str, str], ...]  # (scheme key "tpkvkmb" | "kpk", code)
    keywords: tuple[tuple[str, int], ...]  # (ready-to-use regex, score) per keyword
    context_keywords: tuple[str, ...]  # weak cues that never satisfy require_keyword
    negative: tuple[str, ...]
    buyer_kinds: tuple[str, ...]
    min_score: int
    require_keyword: bool
    path: str


def _digits(code: str) -> str:
    """The regex an item's 8 digits must match: ``85311000-2`` → ``85311``, ``853`` → ``853``,
    ``=45215210`` → ``45215210$`` (exactly that code)."""
    if code.startswith("="):
        return code[1:].split("-")[0].ljust(8, "0") + "$"
    return code.split("-")[0].rstrip("0") or "0"


def to_regex(entry: str | dict) -> str:
    """The regex a keyword entry stands for (case and word-boundary rules applied)."""
    if isinstance(entry, str):
        entry = {"pattern": entry}
    pattern = f"\\b(?:{entry['pattern']})"
    if entry.get("whole_word"):
        pattern += "\\b"
    # scoped flags, so patterns can be joined into one alternation without leaking case rules
    return f"(?:{pattern})" if entry.get("case_sensitive") else f"(?i:{pattern})"


@cache
def cpv_codes() -> dict[str, str]:
    """ДК021/CPV code → Ukrainian name, from the reference list."""
    path = reference_dir() / "derived" / "cpv_dk021_uk_en_ru.csv"
    with path.open(encoding="utf-8") as handle:
        return {row["code"]: row["name_uk"] for row in csv.DictReader(handle)}


@cache
def _cpv_digits() -> frozenset[str]:
    return frozenset(code.split("-")[0] for code in cpv_codes())


@cache
def cpv_names_by_digits() -> dict[str, str]:
    """ДК021 name per code without its check digit (``85311000`` → name)."""
    return {code.split("-")[0]: name for code, name in cpv_codes().items()}


BUDGET_SCHEMES = {"tpkvkmb": "ТПКВКМБ", "kpk": "КПК"}


@cache
def budget_code_names() -> dict[str, dict[str, str]]:
    """Budget programme code → name per scheme key: ТПКВКМБ (tkpkmb.json) and КПКВК (kpk.json; the
    newest name of each code)."""
    classifiers = reference_dir() / "prozorro-standards" / "classifiers"
    tpkvkmb = json.loads((classifiers / "tkpkmb.json").read_text(encoding="utf-8"))
    kpk: dict[str, str] = {}
    for entry in sorted(json.loads((classifiers / "kpk.json").read_text(encoding="utf-8")),
                        key=lambda e: max(e.get("years") or [0])):
        kpk[entry["code"]] = entry["name"]
    return {"tpkvkmb": {code: entry["name"] for code, entry in tpkvkmb.items()}, "kpk": kpk}


@cache
def _regex_problems(patterns: tuple[str, ...]) -> tuple[str | None, ...]:
    """Each pattern's error as polars' regex engine (the classifier's) reports it, or None.

    All of a file's patterns are compiled in one polars call; only when one is invalid are they
    compiled one by one, to name each bad pattern. Compiling is what costs (a few ms per file: the
    patterns are case-insensitive Unicode), so a process that loads the categories again (the
    scheduler, the tests) reuses the answer.
    """
    import polars as pl  # here, not at the top: the flag command reads this module for the category names only

    def problem(pattern: pl.Expr | str) -> str | None:
        try:
            pl.DataFrame({"pattern": patterns}).select(pl.lit("", pl.String).str.contains(pattern))
        except Exception as exc:  # polars raises ComputeError for an invalid pattern
            return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())[:300]
        return None

    if not patterns or problem(pl.col("pattern")) is None:
        return (None,) * len(patterns)
    return tuple(problem(pattern) for pattern in patterns)


def _validate(path: Path, document: Any, problems: list[str]) -> Category | None:
    name = str(path)
    before = len(problems)
    problems += schema_problems(name, document, SCHEMA)
    if not isinstance(document, dict) or any(not isinstance(document.get(k), str) for k in ("id", "name")):
        return None
    schema_failed = len(problems) > before
    if document["id"] != path.stem:
        problems.append(f"{name}:{key_line(document, 'id')}: id: {document['id']!r} must equal the file name "
                        f"{path.stem!r}")
    for key in ("codes", "context_codes", "exclude_codes"):
        codes = document.get(key, [])
        for index, code in enumerate(codes if isinstance(codes, list) else []):
            if not isinstance(code, str):
                continue
            code = code.lstrip("=")
            full = "-" in code
            if (full and code not in cpv_codes()) or (not full and code.ljust(8, "0") not in _cpv_digits()):
                problems.append(f"{name}:{key_line(document[key], index)}: {key}: unknown ДК021/CPV code {code!r} "
                                "(not in data/reference/derived/cpv_dk021_uk_en_ru.csv)")
    budget = document.get("budget_codes", {})
    for scheme, codes in (budget.items() if isinstance(budget, dict) else []):
        known = budget_code_names().get(scheme)
        for index, code in enumerate(codes if isinstance(codes, list) and known is not None else []):
            if isinstance(code, str) and code not in known:
                source = "tkpkmb.json" if scheme == "tpkvkmb" else "kpk.json"
                problems.append(f"{name}:{key_line(codes, index)}: budget_codes.{scheme}: unknown "
                                f"{BUDGET_SCHEMES[scheme]} code {code!r} (not in data/reference/prozorro-standards/"
                                f"classifiers/{source})")
    keywords = document.get("keywords", {}) if isinstance(document.get("keywords", {}), dict) else {}
    keyword_entries = [(("keywords", lang, i), entry) for lang, entries in keywords.items()
                       if isinstance(entries, list) for i, entry in enumerate(entries)]
    for key in ("negative", "context_keywords"):
        entries = document.get(key, [])
        keyword_entries += [((key, i), entry) for i, entry in enumerate(entries if isinstance(entries, list) else [])]
    keyword_entries = [(where, entry) for where, entry in keyword_entries
                       if isinstance(entry, str) or (isinstance(entry, dict) and "pattern" in entry)]
    for (where, _), problem in zip(keyword_entries,
                                   _regex_problems(tuple(to_regex(entry) for _, entry in keyword_entries))):
        if problem:
            problems.append(f"{name}:{path_line(document, list(where))}: {'.'.join(map(str, where))}: "
                            f"invalid pattern: {problem}")
    if len(problems) > before or schema_failed:
        return None
    medicines = document.get("medicines", {})
    keyword_score = int(document.get("keyword_score", 1))
    return Category(
        id=document["id"],
        name=document["name"],
        description=document["description"],
        parent=document.get("parent"),
        codes=tuple(_digits(c) for c in document.get("codes", [])),
        context_codes=tuple(_digits(c) for c in document.get("context_codes", [])),
        exclude_codes=tuple(_digits(c) for c in document.get("exclude_codes", [])),
        inn=tuple(i.lower() for i in medicines.get("inn", [])),
        atc=tuple(medicines.get("atc", [])),
        atc_exclude=tuple(medicines.get("atc_exclude", [])),
        negative_atc=tuple(medicines.get("negative_atc", [])),
        budget_codes=tuple((scheme, code) for scheme, codes in document.get("budget_codes", {}).items()
                           for code in codes),
        keywords=tuple(
            (to_regex(e), int(e.get("score", keyword_score)) if isinstance(e, dict) else keyword_score)
            for entries in document.get("keywords", {}).values() for e in entries),
        context_keywords=tuple(to_regex(e) for e in document.get("context_keywords", [])),
        negative=tuple(to_regex(e) for e in document.get("negative", [])),
        buyer_kinds=tuple(document.get("buyer_kinds", [])),
        min_score=int(document.get("min_score", 2)),
        require_keyword=bool(document.get("require_keyword", False)),
        path=name,
    )


def category_files(folder: Path | Sequence[Path] | None = None) -> list[Path]:
    """The category files of a folder (``*.yaml``), a single file, or a list of files."""
    if folder is not None and not isinstance(folder, Path):
        return list(folder)
    folder = folder or DEFAULT_DIR
    if folder.is_file():
        return [folder]
    return sorted(folder.glob("*.yaml"))


def load_categories(folder: Path | Sequence[Path] | None = None, known_parents: Iterable[str] = ()) -> list[Category]:
    """Every category of ``folder`` (default rules/classify; or one file, or a list of files), validated;
    raises CategoryError with all problems. ``known_parents``: ids a ``parent:`` may name besides the
    loaded categories (the shipped ones, when checking single files)."""
    return lines_on_error(lambda lines: _load_categories(folder, known_parents, lines))


def _load_categories(folder: Path | Sequence[Path] | None, known_parents: Iterable[str], lines: bool) -> list[Category]:
    problems: list[str] = []
    categories: list[Category] = []
    parent_lines: dict[str, int] = {}
    files = category_files(folder)
    if not files:
        raise CategoryError([f"{folder or DEFAULT_DIR}: no category files (*.yaml)"])
    for path in files:
        document = read_yaml(path, problems, lines)
        if document is None:
            continue
        category = _validate(path, document, problems)
        if category:
            categories.append(category)
            parent_lines[category.path] = key_line(document, "parent")
    ids = {c.id for c in categories} | set(known_parents)
    for category in categories:
        if category.parent and category.parent not in ids:
            problems.append(f"{category.path}:{parent_lines[category.path]}: parent: unknown category "
                            f"{category.parent!r}; known: {', '.join(sorted(ids))}")
    if problems:
        raise CategoryError(problems)
    return categories


def rules_hash(folder: Path | None = None) -> str:
    """sha256 over the names and contents of the category files: a change means re-classify all."""
    digest = hashlib.sha256()
    for path in category_files(folder):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
