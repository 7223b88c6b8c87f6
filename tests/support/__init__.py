"""Test infrastructure: a throwaway PostgreSQL cluster, headless chromium, a live server, reference data.

tests/conftest.py imports the fixtures it wants from here (``from tests.support.postgres import
postgres_cluster``) and registers the reference-data plugin (``pytest_plugins =
["tests.support.reference"]``).
"""
