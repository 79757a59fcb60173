"""Database base class, column types, engine and session factories."""

from labyard.db.base import Base, utcnow
from labyard.db.engine import Database

__all__ = ["Base", "Database", "utcnow"]
