"""The declarative base with a naming convention, the UTC timestamp type and the checked
integer every `Mapped[int]` column gets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Integer, MetaData, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase

from labyard.errors import InvalidInput
from labyard.numbers import INT_MAX

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite forgets zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# PostgreSQL's INTEGER; SQLite's is wider, so both refuse the same values


class NumberOutOfRange(InvalidInput):
    """A number from the user does not fit the database (an id past INTEGER, an offset)."""

    def __init__(self, value: int) -> None:
        shown = str(value) if len(str(value)) <= 30 else f"a {len(str(value))}-digit number"
        super().__init__(f"The number {shown} is out of range.")


class NulInText(InvalidInput):
    """Text from the user holds a NUL character, which PostgreSQL cannot store or compare."""

    def __init__(self) -> None:
        super().__init__("Text must not contain NUL characters (\\x00).")


class CheckedInteger(TypeDecorator[int]):
    """INTEGER that refuses a value the column cannot hold as InvalidInput (422), so an id like
    `/projects/99999999999999999999` is the user's error on SQLite and PostgreSQL, not a
    driver's OverflowError (500). Columns that need more say BigInteger."""

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, int) and not -INT_MAX - 1 <= value <= INT_MAX:
            raise NumberOutOfRange(value)
        return value


class Base(DeclarativeBase):
    """Base of every Labyard table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), int: CheckedInteger()}
