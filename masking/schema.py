"""A database-neutral description of the tables a policy applies to.

Reflection (in the ``cleanroom`` plugin package) fills these from SQLAlchemy; the policy
check, the transforms and the SQL artifact read them. They serialise to plain dicts so they
can travel through XCom.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Logical column types that transforms declare they accept.
STRING = "string"
INTEGER = "integer"
FLOAT = "float"
DECIMAL = "decimal"
BOOLEAN = "boolean"
DATE = "date"
TIMESTAMP = "timestamp"
TIME = "time"
BINARY = "binary"
JSON = "json"
UUID = "uuid"
OTHER = "other"
LOGICAL_TYPES = (STRING, INTEGER, FLOAT, DECIMAL, BOOLEAN, DATE, TIMESTAMP, TIME, BINARY, JSON, UUID, OTHER)
TEXTUAL = frozenset({STRING, JSON, UUID})


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    logical: str
    nullable: bool = True
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    primary_key: bool = False
    unique: bool = False
    default: str | None = None

    @property
    def needs_injective(self) -> bool:
        return self.primary_key or self.unique


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    unique_sets: tuple[tuple[str, ...], ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    schema: str | None = None
    row_estimate: int | None = None

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Table":
        return cls(
            name=data["name"],
            columns=tuple(Column(**c) for c in data["columns"]),
            primary_key=tuple(data.get("primary_key", ())),
            unique_sets=tuple(tuple(u) for u in data.get("unique_sets", ())),
            foreign_keys=tuple(
                ForeignKey(tuple(f["columns"]), f["ref_table"], tuple(f["ref_columns"]))
                for f in data.get("foreign_keys", ())
            ),
            schema=data.get("schema"),
            row_estimate=data.get("row_estimate"),
        )


@dataclass(frozen=True)
class Schema:
    """All tables of one source, by name."""

    tables: dict[str, Table] = field(default_factory=dict)
    dialect: str = "sqlite"

    def to_dict(self) -> dict:
        return {"dialect": self.dialect, "tables": [t.to_dict() for t in self.tables.values()]}

    @classmethod
    def from_dict(cls, data: dict) -> "Schema":
        tables = [Table.from_dict(t) for t in data["tables"]]
        return cls(tables={t.name: t for t in tables}, dialect=data.get("dialect", "sqlite"))
