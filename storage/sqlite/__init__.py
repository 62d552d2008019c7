"""The embedded SQLite store: SqliteStore (store.py) and the modules it delegates to."""
