"""The DuckDB store: connection, schema migrations, read-only access."""

from monitor.store.db import (
    DatabaseBusy,
    SchemaTooNewError,
    StoreError,
    connect,
    connect_read_only,
    current_schema_version,
    latest_schema_version,
)

__all__ = [
    "DatabaseBusy",
    "SchemaTooNewError",
    "StoreError",
    "connect",
    "connect_read_only",
    "current_schema_version",
    "latest_schema_version",
]
