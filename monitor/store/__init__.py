"""The DuckDB store: connection, schema migrations, read-only access."""

from monitor.store.db import (
    SchemaTooNewError,
    StoreError,
    connect,
    connect_read_only,
    current_schema_version,
    latest_schema_version,
)

__all__ = [
    "SchemaTooNewError",
    "StoreError",
    "connect",
    "connect_read_only",
    "current_schema_version",
    "latest_schema_version",
]
