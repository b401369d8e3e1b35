"""Rule files: one YAML file per rule in ``rules/flags/``, validated like code.

Checks (all problems are collected, each as ``file:line: key: message``): the schema (unknown keys
rejected), ``id`` equal to the file name, the query is exactly one read-only SELECT, it reads no
files, every ``$param`` it uses is declared, ``references`` to published indicators are written
exactly (``Cardinal R018``, ``prozorro-risks sas24-3-2``), example fixtures exist, and a rule marked
``incremental`` is about processes and reads neither the clock nor tables beyond a process's rows.

The query returns one row per flag: ``subject_id`` (required), ``ocid`` (required when the subject
is a process), ``value`` (optional number), and any other columns, which become the evidence.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from monitor.flags.incremental import data_problems, incremental_problems
from monitor.flags.shared import SHARED_FOLDER, SharedSet, load_shared, needed_by
from monitor.flags.sqlcheck import check_sql
from monitor.reference import PROJECT_ROOT
from monitor.rulefiles import RuleFileError, key_line, lines_on_error, read_yaml, schema_problems

DEFAULT_DIR = PROJECT_ROOT / "rules" / "flags"
SUBJECTS = ("process", "plan", "buyer", "procuring-entity", "tenderer", "buyer-tenderer", "region")
# the evaluation clock every rule may read without declaring it (monitor flag --as-of, default now)
BUILTIN_AS_OF = "as_of"
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_REFERENCE = re.compile(r"^(Cardinal R\d{3}|prozorro-risks (sas\d+|ari|risk)[-a-z0-9]*)$")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "title", "kind", "severity", "subject", "description", "query"],
    "properties": {
        "id": {"type": "string", "pattern": r"^[a-z0-9]+(-[a-z0-9]+)*$"},
        "title": {"type": "string", "minLength": 1},
        "kind": {"enum": ["anomaly", "opportunity"]},
        "severity": {"enum": ["info", "low", "medium", "high"]},
        "subject": {"enum": list(SUBJECTS)},
        "scope": {
            "type": "object", "additionalProperties": False,
            "properties": {"categories": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
        },
        "params": {"type": "object"},
        "references": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "description": {"type": "string", "minLength": 1},
        "falsepositives": {"type": "array", "items": {"type": "string"}},
        "query": {"type": "string", "minLength": 1},
        "incremental": {"type": "boolean"},
        "examples": {
            "type": "array",
            "items": {
                "type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 2,
                "properties": {
                    "flagged": {"type": "string"}, "not_flagged": {"type": "string"},
                    "params": {"type": "object"},
                },
            },
        },
    },
}


class RuleError(RuleFileError):
    """Invalid flag rule files; ``problems`` are ``file:line: key: message`` strings."""


@dataclasses.dataclass(frozen=True)
class Rule:
    id: str
    title: str
    kind: str
    severity: str
    subject: str
    categories: tuple[str, ...]
    params: dict[str, Any]
    references: tuple[str, ...]
    description: str
    falsepositives: tuple[str, ...]
    query: str
    examples: tuple[dict[str, Any], ...]
    path: Path
    shared: tuple[SharedSet, ...] = ()   # the shared sets the query reads, each after those it reads
    incremental: bool = False            # flags on a process depend on its rows alone (monitor.flags.incremental)
    data_bound: bool = False             # flags depend on process rows alone, no clock: they stand while none changes


def _validate(path: Path, document: Any, problems: list[str], sets: dict[str, SharedSet]) -> Rule | None:
    name, before = str(path), len(problems)
    problems += schema_problems(name, document, SCHEMA)
    if not isinstance(document, dict) or not isinstance(document.get("query"), str):
        return None
    if isinstance(document.get("id"), str) and document["id"] != path.stem:
        problems.append(f"{name}:{key_line(document, 'id')}: id: {document['id']!r} must equal the file name "
                        f"{path.stem!r}; rename the file or the id")
    query_line = key_line(document, "query")
    problem = check_sql(document["query"])
    if problem:
        problems.append(f"{name}:{query_line}: query: {problem}")
    params = document.get("params") or {}
    for used in sorted(set(_PARAM.findall(document["query"]))):
        if used not in params and used != BUILTIN_AS_OF:
            problems.append(f"{name}:{query_line}: query: ${used} is not declared; add it under params with its default")
    for index, reference in enumerate(document.get("references") or []):
        lowered = str(reference).lower()
        if ("cardinal" in lowered or "prozorro-risks" in lowered or "sas24" in lowered) and \
                not _REFERENCE.match(str(reference)):
            problems.append(f"{name}:{key_line(document, 'references')}: references.{index}: write published indicators "
                            f"exactly as 'Cardinal R018' or 'prozorro-risks sas24-3-2', not {reference!r}")
    for index, example in enumerate(document.get("examples") or []):
        if isinstance(example, dict):
            for key in ("flagged", "not_flagged"):
                if key in example and not (path.parent / str(example[key])).exists():
                    problems.append(f"{name}:{key_line(document, 'examples')}: examples.{index}.{key}: fixture "
                                    f"{example[key]!r} not found next to the rule")
    shared = needed_by(document["query"], sets)
    data = data_problems(document["query"], shared)
    if document.get("incremental") is True:
        for problem in incremental_problems(str(document.get("subject")), data):
            problems.append(f"{name}:{key_line(document, 'incremental')}: incremental: {problem}")
    if len(problems) > before:
        return None
    return Rule(
        id=document["id"], title=document["title"], kind=document["kind"], severity=document["severity"],
        subject=document["subject"], categories=tuple((document.get("scope") or {}).get("categories", [])),
        params=dict(params), references=tuple(document.get("references") or []),
        description=document["description"], falsepositives=tuple(document.get("falsepositives") or []),
        query=document["query"], examples=tuple(dict(e) for e in document.get("examples") or []), path=path,
        shared=shared, incremental=document.get("incremental") is True,
        data_bound=not data,
    )


def rule_files(path: Path | None = None) -> list[Path]:
    path = path or DEFAULT_DIR
    return [path] if path.is_file() else sorted(path.glob("*.yaml"))


def load_rules(path: Path | None = None, known_categories: set[str] | None = None) -> list[Rule]:
    """Every rule under ``path`` (default rules/flags), validated; raises RuleError listing all problems.

    The shared sets the rules read come from ``rules/flags/shared/`` and the ``shared/`` folder beside
    the rules (see ``monitor.flags.shared``); they are checked too.
    """
    return lines_on_error(lambda lines: _load_rules(path, known_categories, lines))


def _load_rules(path: Path | None, known_categories: set[str] | None, lines: bool) -> list[Rule]:
    problems: list[str] = []
    rules: list[Rule] = []
    path = path or DEFAULT_DIR
    folder = path if path.is_dir() else path.parent
    shared_folders = dict.fromkeys([(DEFAULT_DIR / SHARED_FOLDER).resolve(), (folder / SHARED_FOLDER).resolve()])
    sets = load_shared(list(shared_folders), problems)
    for file in rule_files(path):
        document = read_yaml(file, problems, lines)
        if document is None:
            continue
        rule = _validate(file, document, problems, sets)
        if rule and known_categories is not None:
            for category in rule.categories:
                if category not in known_categories:
                    problems.append(f"{file}:{key_line(document, 'scope')}: scope.categories: unknown category "
                                    f"{category!r}; known: {', '.join(sorted(known_categories))}")
                    rule = None
                    break
        if rule:
            rules.append(rule)
    if problems:
        raise RuleError(problems)
    return rules
