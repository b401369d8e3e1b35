"""Recognise what a parsed JSON value is: a ProZorro object or envelope, or an OCDS shape."""

from __future__ import annotations

from typing import Any

PROZORRO = "prozorro"
OCDS_COMPILED = "ocds-compiled"
OCDS_RELEASE = "ocds-release"
OCDS_RECORD = "ocds-record"
RELEASE_PACKAGE = "release-package"
RECORD_PACKAGE = "record-package"

_PROZORRO_KEYS = ("tenderID", "contractID", "planID", "monitoring_id", "complaintID")


def is_compiled_release(release: dict[str, Any]) -> bool:
    """A release whose tag says compiled, or one without tag (Cardinal and Kingfisher write those)."""
    tag = release.get("tag")
    return tag is None or (isinstance(tag, list) and "compiled" in tag)


def detect(value: Any, forced: str = "auto") -> str | None:
    """The shape of ``value``, or None when it is neither ProZorro nor OCDS.

    ``forced`` is the --format option: ``prozorro`` or ``ocds`` restrict the answer to that family.
    """
    if not isinstance(value, dict):
        return PROZORRO if forced == "prozorro" else None
    if forced != "prozorro":
        if isinstance(value.get("releases"), list) and "ocid" not in value:
            return RELEASE_PACKAGE
        if isinstance(value.get("records"), list):
            return RECORD_PACKAGE
        if "ocid" in value and ("compiledRelease" in value or "releases" in value) and "tag" not in value:
            return OCDS_RECORD
        if "ocid" in value:
            return OCDS_COMPILED if is_compiled_release(value) else OCDS_RELEASE
        if forced == "ocds":
            return OCDS_COMPILED
    if forced != "ocds":
        if "data" in value or any(key in value for key in _PROZORRO_KEYS):
            return PROZORRO
        if "id" in value or "_id" in value or forced == "prozorro":
            return PROZORRO
    return None


_PROZORRO_KINDS = {"tenderID": "tender", "contractID": "contract", "planID": "plan",
                   "monitoring_id": "monitoring object", "complaintID": "complaint"}


def other_family(value: Any, forced: str) -> str | None:
    """What ``value`` unmistakably is when that is not the family ``--format`` forced, else None.

    "Unmistakably": OCDS when it has an ``ocid`` or is a release/record package, ProZorro when it is
    an API envelope (``data``) or has a ProZorro public id (tenderID, contractID, ...), and not both.
    A value with neither mark (e.g. only an ``id``) is ambiguous: the forced format applies to it.
    """
    if forced not in (PROZORRO, "ocds") or not isinstance(value, dict):
        return None
    ocds = _ocds_kind(value)
    prozorro = _prozorro_kind(value)
    if forced == PROZORRO and ocds and not prozorro:
        return ocds
    if forced == "ocds" and prozorro and not ocds:
        return prozorro
    return None


def _ocds_kind(value: dict[str, Any]) -> str | None:
    if isinstance(value.get("releases"), list) and "ocid" not in value:
        return "an OCDS release package"
    if isinstance(value.get("records"), list) and "ocid" not in value:
        return "an OCDS record package"
    if "ocid" not in value:
        return None
    if "tag" not in value and ("compiledRelease" in value or "releases" in value):
        return "an OCDS record"
    return "an OCDS compiled release" if is_compiled_release(value) else "an OCDS release"


def _prozorro_kind(value: dict[str, Any]) -> str | None:
    if "data" in value:
        data = value["data"]
        inner = _prozorro_object(data) if isinstance(data, dict) else None
        return f"a ProZorro API response with a {inner}" if inner else 'a ProZorro API response ({"data": ...})'
    inner = _prozorro_object(value)
    return f"a ProZorro {inner}" if inner else None


def _prozorro_object(value: dict[str, Any]) -> str | None:
    for key, kind in _PROZORRO_KINDS.items():
        if key in value:
            return f"{kind} (it has {key})"
    return None


def family_mismatch(document: Any, forced: str) -> str | None:
    """``other_family`` for a whole parsed document; a list counts when all its objects are the other family."""
    if isinstance(document, list):
        objects = [element for element in document if isinstance(element, dict)]
        kinds = [other_family(element, forced) for element in objects]
        if objects and all(kinds):
            return f"a list of {len(objects)} objects ({kinds[0]} first)"
        return None
    return other_family(document, forced)


def mismatch_reason(what: str, forced: str) -> str:
    """The reason given for data of the other family: what it is and which --format was given."""
    right = "ocds" if forced == PROZORRO else PROZORRO
    return f"{what}, but --format {forced} was given (use --format {right} or auto)"

