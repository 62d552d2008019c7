"""The MongoDB backend (Motor); see store.py for how it keeps writes atomic."""

from .store import MongoStore

__all__ = ["MongoStore"]
