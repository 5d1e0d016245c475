"""Persistence: the schema, the database engine, migrations and repositories."""
