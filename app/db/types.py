"""Column types: a `StrEnum` stored as plain text, so states are types in Python and
stay readable (and migration-free) in SQL."""

from __future__ import annotations

import enum
from typing import Any, Generic, TypeVar

from sqlalchemy import String, text
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import TypeDecorator

E = TypeVar("E", bound=enum.StrEnum)


class EnumText(TypeDecorator[E], Generic[E]):
    impl = String
    cache_ok = True

    def __init__(self, enum_type: type[E], length: int) -> None:
        super().__init__(length)
        self.enum_type = enum_type

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        # Accepts a member or its value; an unknown string fails here, not in the database.
        return None if value is None else self.enum_type(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        return None if value is None else self.enum_type(value)

    @property
    def python_type(self) -> type[E]:
        return self.enum_type


def status_in(statuses: frozenset[Any]) -> TextClause:
    """`status IN (...)` over a status set, for partial-index predicates."""
    listed = ", ".join(f"'{s.value}'" for s in sorted(statuses))
    return text(f"status IN ({listed})")
