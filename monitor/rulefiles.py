"""What the two kinds of rule file (categories, flag rules) share: YAML with line numbers,
schema errors as ``file:line: key: message``, and one error type that carries every problem."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError


class RuleFileError(Exception):
    """Invalid rule files; ``problems`` are ``file:line: key: message`` strings, all of them."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


T = TypeVar("T")


def read_yaml(path: Path, problems: list[str], lines: bool = True) -> Any:
    """The document of ``path``, or None with the problem recorded. With ``lines`` it is read round-trip,
    so it knows the line of every key (for messages); without, by ruamel.yaml's C parser (ruamel.yaml.clib),
    about ten times faster, the same data without the lines. Both read YAML 1.2."""
    try:
        return YAML(typ="rt" if lines else "safe", pure=False).load(path.read_text(encoding="utf-8"))
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(f"{path}:{(mark.line + 1) if mark else 1}: YAML: {getattr(exc, 'problem', exc)}")
        return None


def lines_on_error(load: Callable[[bool], T]) -> T:
    """``load(False)``: the files read fast, without lines; when they have problems, ``load(True)`` again,
    so that each problem raised names its line. Valid files, the usual case, are read once and fast."""
    try:
        return load(False)
    except RuleFileError:
        return load(True)


_QUERY_KEY = re.compile(r"^query\s*:", re.MULTILINE)


def query_line(path: Path) -> int | None:
    """1-based line of the top-level ``query`` key of a rule file, read from its text (so also in a file with
    a YAML error, and without parsing it again); None when it has none: a category file, never a flag rule."""
    text = path.read_text(encoding="utf-8")
    found = _QUERY_KEY.search(text)
    return text.count("\n", 0, found.start()) + 1 if found else None


def key_line(node: Any, key: str | int | None = None) -> int:
    """1-based line of ``node[key]`` (or of ``node``) in its YAML file; 1 when unknown."""
    try:
        if isinstance(node, CommentedMap) and key is not None:
            return node.lc.key(key)[0] + 1
        if isinstance(node, CommentedSeq) and key is not None:
            return node.lc.item(key)[0] + 1
        return node.lc.line + 1
    except (AttributeError, KeyError, IndexError, TypeError):
        return 1


def path_line(document: Any, path: list[str | int]) -> int:
    """Line of the value at ``path`` (the deepest part of it that exists)."""
    node, line = document, 1
    for part in path:
        try:
            line = key_line(node, part)
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    return line


def schema_problems(name: str, document: Any, schema: dict[str, Any]) -> list[str]:
    """Every schema violation of ``document``; an unknown key is named with its line and the allowed keys."""
    problems = []
    for error in sorted(jsonschema.Draft7Validator(schema).iter_errors(document), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in error.path) or "(top level)"
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = error.schema.get("properties", {})
            for key in error.instance:
                if key not in allowed:
                    problems.append(f"{name}:{key_line(error.instance, key)}: {where}: unknown key {key!r}; "
                                    f"allowed keys: {', '.join(sorted(allowed))}")
            continue
        problems.append(f"{name}:{path_line(document, list(error.path))}: {where}: {error.message}")
    return problems
