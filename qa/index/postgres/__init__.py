"""The shared backend: an index in PostgreSQL + pgvector, for workers on any number of machines."""

from qa.index.postgres.backend import PostgresIndex
from qa.index.postgres.location import is_postgres_url

__all__ = ["PostgresIndex", "is_postgres_url"]
