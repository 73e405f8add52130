"""Policy loading and the fail-closed check against a schema."""

from __future__ import annotations

import pytest

from masking import policy as P
from masking import schema as S
from masking import transforms as T
from masking.errors import PolicyError, SchemaDriftError


def _schema() -> S.Schema:
    customers = S.Table(
        "customers",
        (
            S.Column("id", "INTEGER", S.INTEGER, nullable=False, primary_key=True, unique=True),
            S.Column("email", "VARCHAR(120)", S.STRING, nullable=False, max_length=120, unique=True),
            S.Column("name", "TEXT", S.STRING),
        ),
        primary_key=("id",),
    )
    orders = S.Table(
        "orders",
        (
            S.Column("id", "INTEGER", S.INTEGER, nullable=False, primary_key=True, unique=True),
            S.Column("customer_email", "VARCHAR(120)", S.STRING, max_length=120),
            S.Column("note", "TEXT", S.STRING),
        ),
        primary_key=("id",),
        foreign_keys=(S.ForeignKey(("customer_email",), "customers", ("email",)),),
    )
    cards = S.Table("cards", (S.Column("pan", "TEXT", S.STRING),))
    return S.Schema(tables={t.name: t for t in (customers, orders, cards)})


GOOD = """
tables:
  customers:
    columns:
      id: keep
      email: {fake: email}
      name: {fake: name}
  orders:
    columns:
      id: keep
      customer_email: keep
      note: scrub
  cards: drop
"""


def test_good_policy_passes_and_foreign_key_inherits_the_referenced_transform():
    policy = P.check(P.loads(GOOD), _schema())
    assert policy.tables["cards"].action == P.DROP
    assert policy.rule("orders", "customer_email") == T.build({"fake": "email"})


def test_policy_sha256_changes_with_the_text():
    assert P.loads(GOOD).sha256 != P.loads(GOOD + "\n# edit\n").sha256


def test_every_problem_is_reported_at_once_with_lines():
    text = GOOD.replace("name: {fake: name}", "name: {fake: horoscope}\n      ghost: keep").replace(
        "id: keep\n      email", "id: null\n      email"
    )
    with pytest.raises(PolicyError) as err:
        P.check(P.loads(text, source="p.yaml"), _schema())
    rendered = str(err.value)
    assert "p.yaml:" in rendered
    assert "horoscope" in rendered
    # the unknown-kind problem is found at load time; fix it and the rest shows up together
    text = text.replace("horoscope", "name")
    with pytest.raises(PolicyError) as err:
        P.check(P.loads(text, source="p.yaml"), _schema())
    messages = [p.message for p in err.value.problems]
    assert any("not in the source table" in m for m in messages)  # ghost
    assert any("can map two values to one" in m or "NOT NULL" in m for m in messages)  # id: null
    lines = {p.column: p.line for p in err.value.problems}
    assert lines["ghost"] == 8


def test_uncovered_column_is_schema_drift_with_a_proposed_fragment():
    schema = _schema()
    customers = schema.tables["customers"]
    grown = S.Table(customers.name, customers.columns + (S.Column("phone_number", "TEXT", S.STRING),), customers.primary_key)
    schema.tables["customers"] = grown
    with pytest.raises(SchemaDriftError) as err:
        P.check(P.loads(GOOD), schema)
    assert "customers.phone_number" in str(err.value)
    assert "phone_number: {fake: phone}" in err.value.fragment or "phone_number:\n" in err.value.fragment
    assert "fake" in err.value.fragment


def test_new_table_is_schema_drift():
    schema = _schema()
    schema.tables["payment_cards"] = S.Table("payment_cards", (S.Column("pan", "TEXT", S.STRING),))
    with pytest.raises(SchemaDriftError) as err:
        P.check(P.loads(GOOD), schema)
    assert "payment_cards: drop" in err.value.fragment


def test_conflicting_foreign_key_transform_is_refused():
    text = GOOD.replace("customer_email: keep", "customer_email: hash")
    with pytest.raises(PolicyError, match="they must match or the join breaks"):
        P.check(P.loads(text), _schema())


@pytest.mark.parametrize(
    "text, message",
    [
        pytest.param("tables: [1, 2]", "must be a mapping", id="tables-not-mapping"),
        pytest.param("tables:\n  t: {columns: {a: keep}, rowz: none}", "unknown table key 'rowz'", id="typo-in-table-key"),
        pytest.param("locale: fr_FR\ntables: {}", "unknown locale", id="unknown-locale"),
        pytest.param("tables:\n  t: [\n", "not valid YAML", id="broken-yaml"),
    ],
)
def test_broken_policy_is_rejected(text, message):
    with pytest.raises(PolicyError, match=message):
        P.loads(text)


def test_exceptions_survive_pickling():
    import pickle

    with pytest.raises(SchemaDriftError) as err:
        P.check(P.loads("tables: {}"), _schema())
    clone = pickle.loads(pickle.dumps(err.value))
    assert str(clone) == str(err.value)
