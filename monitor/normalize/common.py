"""SQL macros shared by every mapping: timestamps, masked values, organization ids, regions."""

from __future__ import annotations

import duckdb

from monitor.reference import install_region_aliases

# ProZorro masks restricted tenders for anonymous readers: strings become "Приховано"/"Hidden",
# numbers 0.0 and dates 1970-01-01 (openprocurement.api mask.py). Those values must not count.
MASKED_STRINGS = ("Приховано", "Hidden")

# pm_str: a text field. json_transform hands a VARCHAR field that held a JSON array or object over as
# that JSON in compact form ('["a","b"]'); such a value is of the wrong type and becomes NULL. Only the
# exact compact JSON of an array or object is dropped, so a real text such as "[1, 2]" or "{x}" stays.
# Numbers and booleans arrive as their text ('123', 'true') and stay: an id or a code given as a JSON
# number (identifier.id: 12345678) is still that id.
# A secondary date without an offset is read as UTC: the one real case (a contract change in the
# API docs) is the same instant as the change's "+02:00" date in another copy of the contract.
# The versioning date of a record must carry an offset (see store.records).
_MACROS = f"""
CREATE OR REPLACE TEMP MACRO pm_str(x) AS
    CASE WHEN x IN {MASKED_STRINGS!r} THEN NULL
         WHEN (starts_with(x, '[') OR starts_with(x, '{{')) AND json_valid(x) AND json(x) = x THEN NULL
         ELSE nullif(trim(x), '') END;
CREATE OR REPLACE TEMP MACRO pm_ts(x) AS
    CASE WHEN x IS NULL OR starts_with(x, '1970-01-01') THEN NULL ELSE TRY_CAST(x AS TIMESTAMPTZ) END;
CREATE OR REPLACE TEMP MACRO pm_money(amount, masked) AS
    CASE WHEN masked AND amount = 0 THEN NULL ELSE amount END;
CREATE OR REPLACE TEMP MACRO pm_org_id(scheme, ident) AS
    CASE WHEN pm_str(ident) IS NULL THEN NULL
         WHEN pm_str(scheme) IS NULL THEN trim(ident)
         ELSE trim(scheme) || '-' || trim(ident) END;
-- A ProZorro contract object (from the contracts feed) is the contract: the copies of it in its tender
-- (slim) and in an OCDS release of its process are left out.
CREATE OR REPLACE TEMP MACRO pm_has_contract_object(p_contract_id) AS
    EXISTS (SELECT 1 FROM contracts k WHERE k.origin = 'contract' AND k.contract_id = p_contract_id);
"""


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Create the temp macros and the region alias table on this connection (idempotent)."""
    con.execute(_MACROS)
    install_region_aliases(con)
