"""Shared sets: relations several rules need, computed once per evaluation instead of once per rule.

A shared set is one SQL file in ``rules/flags/shared/`` (the file name, in snake_case, is the name
rules read it by), holding one read-only SELECT without parameters, checked like a rule's query. The
comment lines at its top say what one row is. A rule that names a shared set in its query gets it:
the engine evaluates every set the selected rules use once, on the sandboxed connection, before the
rules, and each rule reads the result as if it were a table. A set may read earlier sets; a loop
between sets is an error.

Rules in another folder (``monitor rules check PATH``) see the sets of ``rules/flags/shared/`` and
those of their own folder's ``shared/``; a set of the same name in their own folder wins.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from monitor.flags.sqlcheck import check_sql
from monitor.store.db import model_tables

SHARED_FOLDER = "shared"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclasses.dataclass(frozen=True)
class SharedSet:
    name: str
    query: str
    description: str
    path: Path
    reads: tuple[str, ...] = ()   # the other shared sets its query names


# comments and string literals, which name no relation
NOT_CODE = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/", re.DOTALL)


def mentions(query: str, names: set[str] | dict) -> list[str]:
    """The names (of shared sets) that ``query`` mentions as whole words outside comments and string
    literals, in any letter case as SQL reads them, in sorted order."""
    words = {word.lower() for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", NOT_CODE.sub(" ", query))}
    return sorted(name for name in names if name in words)


def _description(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:].strip())
    return " ".join(lines).strip()


def load_shared(folders: list[Path], problems: list[str]) -> dict[str, SharedSet]:
    """The shared sets in ``folders`` (later folders win by name); problems as ``file:line: message``."""
    found: dict[str, SharedSet] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.sql")) if folder.is_dir() else []:
            before = len(problems)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(f"{path}:1: cannot read the shared set: {exc}")
                continue
            if not _NAME.match(path.stem):
                problems.append(f"{path}:1: the file name {path.stem!r} must be a snake_case name (a-z, 0-9, _), "
                                "which rules use to read the set; rename the file")
            if path.stem.lower() in model_tables():
                problems.append(f"{path}:1: {path.stem!r} is a table of the database; a shared set of that name "
                                "would hide it from the rules, so rename the file")
            if not _description(text):
                problems.append(f"{path}:1: start the file with '--' comment lines saying what one row is")
            problem = check_sql(text)
            if problem:
                problems.append(f"{path}:1: {problem.replace('the query', 'the shared set')}")
            for param in sorted(set(_PARAM.findall(text))):
                problems.append(f"{path}:1: ${param}: a shared set takes no parameters (every rule reads the same "
                                "rows); filter by the parameter in the rules instead")
            if len(problems) == before:
                found[path.stem] = SharedSet(path.stem, text, _description(text), path)
    resolved = {name: dataclasses.replace(each, reads=tuple(mentions(each.query, found)))
                for name, each in found.items()}
    loops = {name: _loop(name, resolved) for name in resolved}
    for name, loop in loops.items():
        if loop:
            problems.append(f"{resolved[name].path}:1: the shared sets read each other in a loop "
                            f"({' -> '.join(loop)}); one of them must not read the other")
    return {} if any(loops.values()) else resolved


def _loop(start: str, sets: dict[str, SharedSet]) -> list[str] | None:
    path: list[str] = []

    def visit(name: str) -> bool:
        if name in path:
            path.append(name)
            return True
        path.append(name)
        if any(visit(read) for read in sets[name].reads):
            return True
        path.pop()
        return False

    return path if visit(start) else None


def needed_by(query: str, sets: dict[str, SharedSet]) -> tuple[SharedSet, ...]:
    """The shared sets ``query`` reads, directly or through other sets, each after the sets it reads."""
    ordered: list[SharedSet] = []

    def add(name: str) -> None:
        if any(each.name == name for each in ordered):
            return
        for read in sets[name].reads:
            add(read)
        ordered.append(sets[name])

    for name in mentions(query, sets):
        add(name)
    return tuple(ordered)
