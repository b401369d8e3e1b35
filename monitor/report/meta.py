"""Names and descriptions the report shows: rule titles from rules/flags/, category names from rules/classify/.

Read leniently: a rule file that is invalid right now (being edited) still lends its title to the
flags it raised earlier, and a flag whose rule file is gone is shown under its rule id.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from monitor.classify.categories import category_files
from monitor.flags.rules import rule_files
from monitor.rulefiles import read_yaml

SEVERITIES = ("high", "medium", "low", "info")
KINDS = ("opportunity", "anomaly")


@dataclasses.dataclass(frozen=True)
class RuleInfo:
    id: str
    title: str
    kind: str
    severity: str
    description: str
    references: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        """The first sentence of the description: the one-liner under a rule's table."""
        text = " ".join(self.description.split())
        end = text.find(". ")
        return text if end < 0 else text[: end + 1]


@dataclasses.dataclass(frozen=True)
class CategoryInfo:
    id: str
    name: str
    parent: str | None

    @property
    def depth(self) -> int:
        """0 for a sector (health, social), 1 for a sub-category or a programme tag."""
        return 0 if "." not in self.id else 1


def _documents(files: list[Path]) -> list[dict]:
    documents = []
    for path in files:
        document = read_yaml(path, [], lines=False)  # titles and kinds only: no lines needed, the fast parser
        if isinstance(document, dict) and isinstance(document.get("id"), str):
            documents.append(document)
    return documents


def rule_infos(folder: Path | None = None) -> dict[str, RuleInfo]:
    """Rule id → its title, kind, severity and description (invalid files included where readable)."""
    infos = {}
    for document in _documents(rule_files(folder)):
        infos[document["id"]] = RuleInfo(
            id=document["id"],
            title=str(document.get("title") or document["id"]),
            kind=str(document.get("kind") or "anomaly"),
            severity=str(document.get("severity") or "info"),
            description=str(document.get("description") or ""),
            references=tuple(str(r) for r in document.get("references") or []),
        )
    return infos


def category_infos(folder: Path | None = None) -> list[CategoryInfo]:
    """Categories in reading order: each sector followed by its sub-categories, programme tags last."""
    try:
        files = category_files(folder)
    except OSError:
        files = []
    infos = [CategoryInfo(d["id"], str(d.get("name") or d["id"]), d.get("parent")) for d in _documents(files)]
    return sorted(infos, key=lambda c: (c.id.startswith("programme."), c.id))
