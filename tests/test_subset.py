"""Subsetting: the WHERE fragments keep root rows, their children, and everything they reference.

Fragments are checked by running them: every foreign key of every kept row must find its
parent among the kept rows of the parent table (zero dangling references), on SQLite, on
PostgreSQL (Pagila, read-only, and a scratch database with a cycle) and on MariaDB.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from cleanroom import source as src
from cleanroom.subset import check_subset, plan_subset
from masking import schema as S
from masking.errors import ConfigError

# --- small schemas built by hand --------------------------------------------------------------


def _col(name: str, logical: str = S.INTEGER, pk: bool = False) -> S.Column:
    return S.Column(name, "INTEGER" if logical == S.INTEGER else "TEXT", logical, nullable=not pk, primary_key=pk)


def _table(name: str, *fks: tuple[str, str], pk: str | None = "id", extra: tuple[S.Column, ...] = ()) -> S.Table:
    columns = ((_col(pk, pk=True),) if pk else ()) + tuple(_col(c) for c, _ in fks) + extra
    foreign_keys = tuple(S.ForeignKey((c,), ref, ("id",)) for c, ref in fks)
    return S.Table(name, columns, (pk,) if pk else (), foreign_keys=foreign_keys)


def _schema(*tables: S.Table, dialect: str = "postgresql") -> S.Schema:
    return S.Schema({t.name: t for t in tables}, dialect)


SHOP = _schema(
    _table("country"),
    _table("customer", ("country_id", "country")),
    _table("orders", ("customer_id", "customer")),
    _table("audit"),
    _table("keyless", pk=None, extra=(_col("note", S.STRING),)),
    S.Table("textkey", (S.Column("code", "TEXT", S.STRING, nullable=False, primary_key=True),), ("code",)),
)


@pytest.mark.parametrize(
    ("roots", "expected"),
    [
        ({"nope": {"percent": 10}}, "'nope': is not a table"),
        ({"roots": {"customer": {"percent": 10}}}, r"put the tables under `subset: \{roots"),
        ({"customer": {"percent": 0}}, "above 0 and at most 100, got 0"),
        ({"customer": {"percent": 150}}, "at most 100, got 150"),
        ({"customer": {"percent": True}}, "must be a number, got bool"),
        ({"customer": {"percent": "10"}}, "must be a number, got str"),
        ({"customer": {"percent": 0.001}}, "keeps nothing"),
        ({"keyless": {"percent": 10}}, "has none; use `where:`"),
        ({"customer": {"where": "  "}}, "non-empty SQL condition"),
        ({"customer": {"where": "id = 1; DROP TABLE x"}}, "without `;`"),
        ({"customer": {"limit": 3}}, "unknown key"),
        ({"customer": 10}, "must be a mapping"),
        ({}, "non-empty mapping"),
    ],
    ids=["unknown-table", "roots-nested", "percent-zero", "percent-above-100", "percent-bool", "percent-text",
         "percent-too-small", "percent-without-key", "where-blank", "where-two-statements", "unknown-key",
         "spec-not-mapping", "no-roots"],
)
def test_check_subset_names_the_problem(roots, expected):
    problems = check_subset(SHOP, roots)

    assert len(problems) == 1
    assert re.search(expected, problems[0]), problems


def test_check_subset_accepts_percent_and_where_together():
    assert check_subset(SHOP, {"customer": {"percent": 10, "where": "id > 0"}, "audit": {"where": "id < 5"}}) == []


def test_sqlite_percent_needs_an_integer_key():
    schema = _schema(*SHOP.tables.values(), dialect="sqlite")

    assert check_subset(schema, {"customer": {"percent": 10}}) == []
    assert "single integer primary key" in check_subset(schema, {"textkey": {"percent": 10}})[0]


def test_plan_subset_raises_every_problem_at_once():
    with pytest.raises(ConfigError, match=r"2 problem\(s\).*'nope'.*at most 100"):
        plan_subset(SHOP, {"nope": {"percent": 5}, "customer": {"percent": 101}}, "postgresql")


def test_unrelated_tables_stay_whole_and_referenced_ones_are_filtered():
    plan = plan_subset(SHOP, {"customer": {"where": "id < 10"}}, "postgresql")

    assert plan["audit"] is None and plan["keyless"] is None
    assert plan["customer"].startswith("((id < 10) OR id IN (WITH RECURSIVE")  # seed, or referenced by orders
    assert "cr_seed" in plan["orders"]  # downward: orders of the kept customers
    assert plan["country"].startswith("id IN (WITH RECURSIVE")  # upward: countries of kept customers


@pytest.mark.parametrize(
    ("dialect", "needle"),
    [("postgresql", "md5(CAST(id AS text))"), ("mysql", "MOD(CRC32(id), 10000) < 1000"), ("sqlite", "* 7919")],
)
def test_percent_is_a_deterministic_key_hash_per_dialect(dialect, needle):
    schema = _schema(*SHOP.tables.values(), dialect=dialect)

    first = plan_subset(schema, {"customer": {"percent": 10}}, dialect)

    assert needle in first["customer"]
    assert first == plan_subset(schema, {"customer": {"percent": 10}}, dialect)


def test_hundred_percent_keeps_every_root_row():
    plan = plan_subset(SHOP, {"customer": {"percent": 100}}, "postgresql")

    assert plan["customer"].startswith("(1 = 1 OR")


# --- executing the fragments ------------------------------------------------------------------


def dangling(conn, schema: S.Schema, plan: dict[str, str | None]) -> dict[str, int]:
    """Kept rows whose foreign key finds no kept parent row, per foreign key."""
    q = conn.dialect.identifier_preparer.quote
    found = {}
    for table in schema.tables.values():
        for fk in table.foreign_keys:
            parent = schema.tables[fk.ref_table]
            outer = " AND ".join(f"o.{q(c)} IS NOT NULL" for c in fk.columns)
            join = " AND ".join(f"i.{q(r)} = o.{q(c)}" for c, r in zip(fk.columns, fk.ref_columns))
            sql = (
                f"SELECT count(*) FROM {q(table.name)} o WHERE ({plan[table.name] or '1 = 1'}) AND {outer} "
                f"AND NOT EXISTS (SELECT 1 FROM {q(parent.name)} i WHERE {join} AND ({plan[parent.name] or '1 = 1'}))"
            )
            found[f"{table.name}({','.join(fk.columns)})->{parent.name}"] = conn.execute(sa.text(sql)).scalar_one()
    return found


def kept(conn, schema: S.Schema, plan: dict[str, str | None]) -> dict[str, int]:
    return {name: src.count_rows(conn, schema.tables[name], plan[name]) for name in sorted(schema.tables)}


# A cycle (dept.head_id -> employee, employee.dept_id -> dept), a self-reference
# (employee.manager_id), a composite key, and a table unrelated to everything.
DDL = [
    "CREATE TABLE region (id INTEGER PRIMARY KEY, name VARCHAR(20))",
    "CREATE TABLE dept (id INTEGER PRIMARY KEY, region_id INTEGER NOT NULL, head_id INTEGER, "
    "FOREIGN KEY (region_id) REFERENCES region (id){head_fk})",
    "CREATE TABLE employee (id INTEGER PRIMARY KEY, dept_id INTEGER NOT NULL, manager_id INTEGER, "
    "FOREIGN KEY (dept_id) REFERENCES dept (id), FOREIGN KEY (manager_id) REFERENCES employee (id))",
    "CREATE TABLE project (id INTEGER PRIMARY KEY, dept_id INTEGER NOT NULL, lead_id INTEGER, "
    "FOREIGN KEY (dept_id) REFERENCES dept (id), FOREIGN KEY (lead_id) REFERENCES employee (id))",
    "CREATE TABLE assignment (employee_id INTEGER NOT NULL, project_id INTEGER NOT NULL, "
    "PRIMARY KEY (employee_id, project_id), FOREIGN KEY (employee_id) REFERENCES employee (id), "
    "FOREIGN KEY (project_id) REFERENCES project (id))",
    "CREATE TABLE note (id INTEGER PRIMARY KEY, body VARCHAR(40))",
]
HEAD_FK = ", FOREIGN KEY (head_id) REFERENCES employee (id)"
EMPLOYEES, DEPTS, PROJECTS = 90, 6, 20


def build_company(engine: sa.Engine) -> None:
    """Create and fill the company schema; the cycle's second key is added after both tables."""
    inline = engine.dialect.name == "sqlite"  # SQLite cannot add a foreign key later
    with engine.begin() as conn:
        for statement in DDL:
            conn.exec_driver_sql(statement.replace("{head_fk}", HEAD_FK if inline else ""))
        if not inline:
            conn.exec_driver_sql("ALTER TABLE dept ADD CONSTRAINT dept_head FOREIGN KEY (head_id) REFERENCES employee (id)")
        conn.execute(sa.text("INSERT INTO region VALUES (:id, :name)"), [{"id": i, "name": f"r{i}"} for i in range(1, 6)])
        conn.execute(
            sa.text("INSERT INTO dept VALUES (:id, :region, NULL)"),
            [{"id": d, "region": d % 5 + 1} for d in range(1, DEPTS + 1)],
        )
        conn.execute(
            sa.text("INSERT INTO employee VALUES (:id, :dept, :manager)"),
            [{"id": e, "dept": e % DEPTS + 1, "manager": e // 3 if e >= 3 else None} for e in range(1, EMPLOYEES + 1)],
        )
        conn.execute(
            sa.text("UPDATE dept SET head_id = :head WHERE id = :id"),
            [{"id": d, "head": (d * 7) % EMPLOYEES + 1} for d in range(1, DEPTS)],
        )
        conn.execute(
            sa.text("INSERT INTO project VALUES (:id, :dept, :lead)"),
            [{"id": p, "dept": p % DEPTS + 1, "lead": (p * 11) % EMPLOYEES + 1} for p in range(1, PROJECTS + 1)],
        )
        conn.execute(
            sa.text("INSERT INTO assignment VALUES (:e, :p)"),
            [{"e": e, "p": p} for e in range(1, EMPLOYEES + 1) for p in {e % PROJECTS + 1, (e * 3) % PROJECTS + 1}],
        )
        conn.execute(sa.text("INSERT INTO note VALUES (:id, 'x')"), [{"id": i} for i in range(1, 4)])
    if engine.dialect.name == "postgresql":
        # Unanalysed tables make the planner guess millions of recursive rows and switch on
        # JIT, which costs seconds per fragment; production tables carry statistics.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")


COMPANY_ROOTS = [
    pytest.param({"employee": {"percent": 20}}, id="employee-percent"),
    pytest.param({"project": {"where": "id <= 3"}}, id="project-where"),
    pytest.param({"dept": {"where": "id = 2"}}, id="dept-where-in-cycle"),
    pytest.param({"employee": {"percent": 30}, "region": {"where": "id IN (1, 2)"}}, id="two-roots"),
]


def assert_closed_subset(engine: sa.Engine, roots: dict) -> dict[str, int]:
    schema = src.reflect(engine)
    plan = plan_subset(schema, roots, schema.dialect)

    with src.read_only(engine) as conn:
        counts = kept(conn, schema, plan)
        broken = {fk: n for fk, n in dangling(conn, schema, plan).items() if n}
        total = {name: src.count_rows(conn, schema.tables[name]) for name in schema.tables}

    assert broken == {}
    assert plan["note"] is None and counts["note"] == total["note"]
    assert all(counts[root] > 0 for root in roots)
    assert sum(counts.values()) < sum(total.values())  # closure can reach a whole root, not all tables
    return counts


@pytest.fixture
def sqlite_company():
    engine = sa.create_engine("sqlite://", poolclass=StaticPool)
    build_company(engine)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("roots", COMPANY_ROOTS)
def test_sqlite_subset_is_referentially_closed(sqlite_company, roots):
    assert_closed_subset(sqlite_company, roots)


def test_sqlite_managers_of_kept_employees_are_kept_up_the_chain(sqlite_company):
    schema = src.reflect(sqlite_company)
    plan = plan_subset(schema, {"employee": {"where": "id = 81"}}, "sqlite")

    with src.read_only(sqlite_company) as conn:
        ids = {r[0] for r in conn.execute(sa.text(f"SELECT id FROM employee WHERE {plan['employee']}"))}

    # 81 -> 27 -> 9 -> 3 -> 1, plus the heads and leads the kept rows point at, and theirs.
    assert {81, 27, 9, 3, 1} <= ids
    assert len(ids) < EMPLOYEES


def test_sqlite_children_of_a_root_are_kept(sqlite_company):
    schema = src.reflect(sqlite_company)
    plan = plan_subset(schema, {"project": {"where": "id <= 3"}}, "sqlite")

    with src.read_only(sqlite_company) as conn:
        missing = conn.execute(sa.text(
            f"SELECT count(*) FROM assignment WHERE project_id <= 3 AND NOT ({plan['assignment']})"
        )).scalar_one()

    assert missing == 0


def test_postgresql_cycle_and_self_reference_are_closed(pg_database):
    engine = sa.create_engine(pg_database)
    try:
        build_company(engine)
        for roots in COMPANY_ROOTS:
            assert_closed_subset(engine, roots.values[0])
    finally:
        engine.dispose()


def test_mariadb_cycle_and_self_reference_are_closed(mariadb_database):
    engine = sa.create_engine(mariadb_database)
    try:
        build_company(engine)
        for roots in COMPANY_ROOTS:
            assert_closed_subset(engine, roots.values[0])
    finally:
        engine.dispose()


# --- Pagila, read-only ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pagila_subset(pagila_url):
    engine = src.create_engine(pagila_url)
    schema = src.reflect(engine)
    plan = plan_subset(schema, {"customer": {"percent": 10}}, schema.dialect)
    yield engine, schema, plan
    engine.dispose()


def test_pagila_ten_percent_of_customers_is_about_ten_percent(pagila_subset):
    engine, schema, plan = pagila_subset

    with src.read_only(engine) as conn:
        kept_customers = src.count_rows(conn, schema.tables["customer"], plan["customer"])
        all_customers = src.count_rows(conn, schema.tables["customer"])

    assert 0.05 * all_customers <= kept_customers <= 0.15 * all_customers


def test_pagila_every_rental_of_a_kept_customer_is_kept(pagila_subset):
    engine, _, plan = pagila_subset

    with src.read_only(engine) as conn:
        missing = conn.execute(sa.text(
            f"SELECT count(*) FROM rental WHERE customer_id IN (SELECT customer_id FROM customer WHERE {plan['customer']}) "
            f"AND NOT ({plan['rental']})"
        )).scalar_one()
        rentals = conn.execute(sa.text(f"SELECT count(*) FROM rental WHERE {plan['rental']}")).scalar_one()

    assert missing == 0
    assert rentals > 0


def test_pagila_subset_has_no_dangling_reference(pagila_subset):
    engine, schema, plan = pagila_subset

    with src.read_only(engine) as conn:
        found = dangling(conn, schema, plan)

    assert {"rental(inventory_id)->inventory", "inventory(film_id)->film", "customer(address_id)->address",
            "customer(store_id)->store", "staff(store_id)->store", "rental(staff_id)->staff"} <= set(found)
    assert {fk: n for fk, n in found.items() if n} == {}


def test_pagila_referenced_tables_shrink_and_unrelated_ones_stay_whole(pagila_subset):
    engine, schema, plan = pagila_subset

    with src.read_only(engine) as conn:
        counts = kept(conn, schema, plan)
        totals = {name: src.count_rows(conn, schema.tables[name]) for name in ("address", "inventory", "rental")}

    assert plan["actor"] is None and plan["category"] is None
    for name, total in totals.items():
        assert 0 < counts[name] < total, name


def test_pagila_percent_sample_is_stable_across_runs(pagila_subset):
    engine, schema, plan = pagila_subset

    again = plan_subset(src.reflect(engine), {"customer": {"percent": 10}}, "postgresql")
    with src.read_only(engine) as conn:
        first = conn.execute(sa.text(f"SELECT customer_id FROM customer WHERE {plan['customer']} ORDER BY 1")).all()
        second = conn.execute(sa.text(f"SELECT customer_id FROM customer WHERE {again['customer']} ORDER BY 1")).all()

    assert again == plan
    assert first == second
