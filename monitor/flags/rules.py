"""Rule files: one YAML file per rule in ``rules/flags/``, validated like code.

Checks (all problems are collected, each as ``file:line: key: message``): the schema (unknown keys
rejected), ``id`` equal to the file name, the query is exactly one read-only SELECT, it reads no
files, every ``$param`` it uses is declared, ``references`` to published indicators are written
exactly (``Cardinal R018``, ``prozorro-risks sas24-3-2``), and example fixtures exist.

The query returns one row per flag: ``subject_id`` (required), ``ocid`` (required when the subject
is a process), ``value`` (optional number), and any other columns, which become the evidence.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import duckdb

from monitor.reference import PROJECT_ROOT
from monitor.rulefiles import RuleFileError, key_line, read_yaml, schema_problems

DEFAULT_DIR = PROJECT_ROOT / "rules" / "flags"
SUBJECTS = ("process", "plan", "buyer", "procuring-entity", "tenderer", "buyer-tenderer", "region")
# Functions that reach outside the database. The sandbox (read-only, external access disabled)
# refuses them at run time as well; naming them here gives the rule author an error at check time.
_FILE_FUNCTIONS = re.compile(
    r"\b(read_(csv|csv_auto|json|json_auto|json_objects|ndjson|parquet|text|blob|xlsx)|parquet_scan|glob|"
    r"sniff_csv|iceberg_scan|delta_scan|sqlite_scan|postgres_scan|mysql_scan|query_table|getenv)\s*\(",
    re.IGNORECASE)
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


def check_sql(sql: str) -> str | None:
    """None when ``sql`` is a single read-only SELECT reading no files, else what is wrong and the fix."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        return f"the SQL does not parse: {str(exc).splitlines()[0]}"
    if len(statements) != 1:
        return f"the query must be exactly one SELECT statement, found {len(statements)}; remove the others"
    if statements[0].type != duckdb.StatementType.SELECT:
        return (f"the query must be a read-only SELECT, not {statements[0].type.name}; rules cannot write, "
                "COPY, ATTACH or INSTALL")
    found = _FILE_FUNCTIONS.search(sql)
    if found:
        return (f"the query calls {found.group(1)}(): rules read only the monitor's tables; load outside data "
                "with monitor load instead")
    return None


def _validate(path: Path, document: Any, problems: list[str]) -> Rule | None:
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
    if len(problems) > before:
        return None
    return Rule(
        id=document["id"], title=document["title"], kind=document["kind"], severity=document["severity"],
        subject=document["subject"], categories=tuple((document.get("scope") or {}).get("categories", [])),
        params=dict(params), references=tuple(document.get("references") or []),
        description=document["description"], falsepositives=tuple(document.get("falsepositives") or []),
        query=document["query"], examples=tuple(dict(e) for e in document.get("examples") or []), path=path,
    )


def rule_files(path: Path | None = None) -> list[Path]:
    path = path or DEFAULT_DIR
    return [path] if path.is_file() else sorted(path.glob("*.yaml"))


def load_rules(path: Path | None = None, known_categories: set[str] | None = None) -> list[Rule]:
    """Every rule under ``path`` (default rules/flags), validated; raises RuleError listing all problems."""
    problems: list[str] = []
    rules: list[Rule] = []
    for file in rule_files(path):
        document = read_yaml(file, problems)
        if document is None:
            continue
        rule = _validate(file, document, problems)
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
