"""The MongoDB backend (Motor): MongoStore (store.py lists the parts it is made of)."""

from .store import MongoStore

__all__ = ["MongoStore"]
