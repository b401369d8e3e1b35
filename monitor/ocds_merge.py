"""Merge OCDS releases of one ocid into a compiled release with the ``ocdsmerge`` library.

The merge rules (which fields are omitted when merged, which lists are replaced whole) come from
the OCDS 1.1 release schema; they are shipped pre-derived in
``data/reference/ocds/release-merge-rules.json`` so merging never fetches the schema at run time.
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

import ocdsmerge
import ocdsmerge.exceptions
import orjson
import structlog

from monitor.reference import reference_dir

log = structlog.get_logger(__name__)


class MergeError(Exception):
    """The releases cannot be merged (missing dates, inconsistent ids, ...)."""


@cache
def _merger() -> ocdsmerge.Merger:
    path = reference_dir() / "ocds" / "release-merge-rules.json"
    document = orjson.loads(path.read_bytes())
    rules = {tuple(path_parts): rule for path_parts, rule in document["rules"]}
    return ocdsmerge.Merger(merge_rules=rules)


def compile_releases(releases: list[dict[str, Any]]) -> dict[str, Any]:
    """The compiled release of ``releases`` (all of one ocid), by the OCDS merge routine."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            compiled = _merger().create_compiled_release(releases)
        except (ocdsmerge.exceptions.OCDSMergeError, KeyError, TypeError) as exc:
            raise MergeError(str(exc) or exc.__class__.__name__) from exc
    for warning in caught:
        log.warning("ocds merge", ocid=releases[0].get("ocid") if releases else None, message=str(warning.message))
    return compiled

