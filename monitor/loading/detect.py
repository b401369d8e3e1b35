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
