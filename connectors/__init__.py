"""Connectors: one module per source, plus the shared HTTP layer (``connectors.http``).

A connector knows how to page through one source and how to resume; it yields pages of raw
records with the cursor that follows each page, and never touches the database.
"""
