"""Procurement Monitor: ingest, classify and flag public procurement for NGO budget analysts."""

__version__ = "0.1.0"
