"""The store: SQLAlchemy tables, the engine, migrations and repositories.

SQLite is the embedded default; PostgreSQL is used by URL. Anything that differs
between the two stays inside this package.
"""
