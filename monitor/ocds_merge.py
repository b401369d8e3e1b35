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


def compile_releases(releases: list[dict[str, Any]], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The compiled release of ``releases`` (all of one ocid, oldest first), merged on top of ``base``.

    ``base`` is a compiled release of the ocid published earlier (alone or in a record): the releases
    after it change what they change and keep the rest, as the OCDS merge routine would had it been given
    every release. The releases are merged in the order given; the caller sorts them by instant
    (ocdsmerge's own sort compares the date strings, which misorders dates written with other UTC offsets).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            merged = ocdsmerge.CompiledRelease(base, merge_rules=_merger().merge_rules)
            for release in releases:
                merged.append(release)
            compiled = merged.asdict()
        except (ocdsmerge.exceptions.OCDSMergeError, KeyError, TypeError) as exc:
            raise MergeError(str(exc) or exc.__class__.__name__) from exc
    for warning in caught:
        log.warning("ocds merge", ocid=releases[0].get("ocid") if releases else None, message=str(warning.message))
    return compiled
