"""Bulk loading of local files: ProZorro native JSON and OCDS packages, plain or gzipped."""
