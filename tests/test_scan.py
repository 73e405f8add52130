"""``cleanroom scan``: column classification, the drafted policy, and the scan of Pagila."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa
from cleanroom import source as src
from cleanroom.cli import EXIT_OK, EXIT_USAGE, main
from cleanroom.scan import scan

from masking import classify as C
from masking import policy as P
from masking import schema as S

ROOT = Path(__file__).resolve().parent.parent

# Ground truth from ../shared/corpus/README.md: the columns of Pagila that hold personal data or secrets.
PAGILA_PERSONAL = [
    ("customer", "first_name"),
    ("customer", "last_name"),
    ("customer", "email"),
    ("staff", "first_name"),
    ("staff", "last_name"),
    ("staff", "email"),
    ("staff", "username"),
    ("staff", "password"),
    ("staff", "picture"),
    ("address", "address"),
    ("address", "address2"),
    ("address", "district"),
    ("address", "postal_code"),
    ("address", "phone"),
    ("actor", "first_name"),
    ("actor", "last_name"),
]
PAGILA_TABLES = {
    "actor",
    "address",
    "category",
    "city",
    "country",
    "customer",
    "film",
    "film_actor",
    "film_category",
    "inventory",
    "language",
    "rental",
    "staff",
    "store",
    "payment",
}


def _col(name: str, logical: str = S.STRING, **kw) -> S.Column:
    sql_type = kw.pop(
        "sql_type", {S.STRING: "TEXT", S.INTEGER: "INTEGER", S.DATE: "DATE"}.get(logical, logical.upper())
    )
    return S.Column(name, sql_type, logical, **kw)


def _classify(
    name: str, logical: str = S.STRING, table: str = "things", evidence=None, **kw
) -> C.Classification:
    column = _col(name, logical, **kw)
    return C.classify_column(S.Table(table, (column,)), column, evidence)


# --- classification by name -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, logical, kind, rule",
    [
        ("email", S.STRING, "personal", {"fake": "email"}),
        ("EmailAddress", S.STRING, "personal", {"fake": "email"}),
        ("e-mail", S.STRING, "personal", {"fake": "email"}),
        ("fname", S.STRING, "personal", {"fake": "first_name"}),
        ("firstName", S.STRING, "personal", {"fake": "first_name"}),
        ("lname", S.STRING, "personal", {"fake": "last_name"}),
        ("surname", S.STRING, "personal", {"fake": "last_name"}),
        ("full_name", S.STRING, "personal", {"fake": "name"}),
        ("dob", S.DATE, "personal", {"fake": "date_of_birth"}),
        ("birth_date", S.STRING, "personal", {"fake": "date_of_birth"}),
        ("addr1", S.STRING, "personal", {"fake": "street_address"}),
        ("ADDR2", S.STRING, "personal", {"fake": "street_address"}),
        ("tel", S.STRING, "personal", {"fake": "phone"}),
        ("mobile_no", S.STRING, "personal", {"fake": "phone"}),
        ("zip", S.STRING, "personal", {"fake": "postal_code"}),
        ("ssn", S.STRING, "personal", "redact"),
        ("pwd", S.STRING, "secret", "redact"),
        ("password_hash", S.STRING, "secret", "redact"),
        ("api_key", S.STRING, "secret", "redact"),
        ("cc_num", S.STRING, "payment", "redact"),
        ("card_number", S.STRING, "payment", "redact"),
        ("iban", S.STRING, "payment", "redact"),
        ("ip_address", S.STRING, "personal", {"fake": "ipv4"}),
        ("username", S.STRING, "personal", {"fake": "user_name"}),
        ("notes", S.STRING, "free_text", "scrub"),
        ("country", S.STRING, "quasi", "keep"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_english_and_abbreviated_names_are_classified(name, logical, kind, rule):
    result = _classify(name, logical)
    assert (result.kind, result.rule) == (kind, rule)
    assert any("name matches" in r for r in result.reasons)


@pytest.mark.parametrize(
    "name, logical, kind, rule",
    [
        ("氏名", S.STRING, "personal", {"fake": "name"}),
        ("名前", S.STRING, "personal", {"fake": "name"}),
        ("姓", S.STRING, "personal", {"fake": "last_name"}),
        ("名", S.STRING, "personal", {"fake": "first_name"}),
        ("セイ", S.STRING, "personal", {"fake": {"kind": "last_name_kana", "locale": "ja_JP"}}),
        ("氏名カナ", S.STRING, "personal", {"fake": {"kind": "name_kana", "locale": "ja_JP"}}),
        ("メールアドレス", S.STRING, "personal", {"fake": "email"}),
        ("電話番号", S.STRING, "personal", {"fake": "phone"}),
        ("携帯電話", S.STRING, "personal", {"fake": "phone"}),
        ("住所", S.STRING, "personal", {"fake": "street_address"}),
        ("郵便番号", S.STRING, "personal", {"fake": "postal_code"}),
        ("都道府県", S.STRING, "personal", {"fake": "state"}),
        ("生年月日", S.DATE, "personal", {"fake": "date_of_birth"}),
        ("パスワード", S.STRING, "secret", "redact"),
        ("カード番号", S.STRING, "payment", "redact"),
        ("口座番号", S.STRING, "payment", "redact"),
        ("マイナンバー", S.STRING, "personal", "redact"),
        ("会社名", S.STRING, "personal", {"fake": "company"}),
        ("備考", S.STRING, "free_text", "scrub"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_japanese_names_are_classified(name, logical, kind, rule):
    result = _classify(name, logical)
    assert (result.kind, result.rule) == (kind, rule)


@pytest.mark.parametrize(
    "name, logical, table, kind, rule",
    [
        ("address_id", S.INTEGER, "customer", "safe", "keep"),
        ("rental_id", S.INTEGER, "rental", "safe", "keep"),
        ("last_update", S.TIMESTAMP, "rental", "safe", "keep"),
        ("email_verified", S.BOOLEAN, "users", "safe", "keep"),
        ("status", S.STRING, "orders", "unknown", "scrub"),
        ("name", S.STRING, "category", "unknown", "scrub"),
        ("name", S.STRING, "customers", "personal", {"fake": "name"}),
        ("release_year", S.OTHER, "film", "safe", "keep"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_neutral_names_keep_keys_and_times_and_scrub_unknown_text(name, logical, table, kind, rule):
    result = _classify(name, logical, table)
    assert (result.kind, result.rule) == (kind, rule)


def test_foreign_key_column_is_kept_to_inherit_the_referenced_transform_whatever_its_name():
    column = _col("email", nullable=False)
    table = S.Table("orders", (column,), foreign_keys=(S.ForeignKey(("email",), "customers", ("email",)),))
    assert C.classify_column(table, column).rule == "keep"


@pytest.mark.parametrize(
    "column, rule",
    [
        (_col("photo", S.BINARY, nullable=False), "hash"),
        (_col("photo", S.BINARY), "null"),
        (_col("picture", nullable=False), "redact"),
        (_col("email", primary_key=True, unique=True, nullable=False), {"fake": "email"}),
        (_col("code", unique=True, max_length=40), {"hash": {"length": 16}}),
        (_col("code", unique=True, max_length=8), "keep"),
        (_col("email", sql_type="VARCHAR(8)", max_length=8), "redact"),
        (_col("phone", S.INTEGER, sql_type="BIGINT"), "null"),
        (_col("phone", S.INTEGER, sql_type="BIGINT", nullable=False), "hash"),
        (_col("zip", S.INTEGER, sql_type="SMALLINT", nullable=False), {"noise": {"relative": 0.5}}),
        (
            _col("latitude", S.DECIMAL, sql_type="NUMERIC(8, 5)", precision=8, scale=5, nullable=False),
            {"noise": {"relative": 0.2, "min": -999.99999, "max": 999.99999}},
        ),
        (_col("birthday", S.TIMESTAMP), {"date_shift": {"max_days": 365}}),
        (_col("email", S.JSON), "scrub"),
        (_col("password", S.OTHER, sql_type="TEXT[]", nullable=False), "drop"),
        (_col("password", S.OTHER, sql_type="TEXT[]"), "null"),
    ],
    ids=lambda c: (
        f"{c.name}:{c.sql_type}:{'null' if c.nullable else 'notnull'}{':unique' if c.unique else ''}"
        if isinstance(c, S.Column)
        else None
    ),
)
def test_proposal_is_fitted_to_type_nullability_uniqueness_and_length(column, rule):
    result = C.classify_column(S.Table("t", (column,)), column)
    assert result.rule == rule
    assert not _build(result.rule).check(column)


def _build(rule):
    from masking import transforms as T

    return T.build(rule)


# --- classification by evidence ------------------------------------------------------------


@pytest.mark.parametrize(
    "evidence, kind, rule",
    [
        (C.Evidence(100, {"email": 100}, {"email": 100}), "personal", {"fake": "email"}),
        (
            C.Evidence(100, {"phone_jp": 95}, {"phone_jp": 95}),
            "personal",
            {"fake": {"kind": "phone", "locale": "ja_JP"}},
        ),
        (C.Evidence(100, {"card": 90}, {"card": 90}), "payment", "redact"),
        (C.Evidence(100, {"card": 2}, {}), "payment", "scrub"),
        (C.Evidence(100, {"email": 3}, {}), "personal", "scrub"),
        (C.Evidence(100, {"hex_digest": 100}, {"hex_digest": 100}), "secret", "redact"),
        (C.Evidence(100, {"jwt": 1, "email": 40}, {"email": 40}), "secret", "scrub"),
        (C.Evidence(100, {}, {}), "unknown", "scrub"),
    ],
    ids=[
        "emails",
        "jp-phones",
        "cards",
        "card-in-text",
        "emails-in-text",
        "digests",
        "token-in-text",
        "nothing",
    ],
)
def test_neutral_text_column_is_classified_by_its_values(evidence, kind, rule):
    result = _classify("contact", evidence=evidence)
    assert (result.kind, result.rule) == (kind, rule)
    assert result.reasons[-1].startswith("values: ")


def test_evidence_upgrades_a_kept_name_but_does_not_weaken_a_masked_one():
    emails = C.Evidence(10, {"email": 10}, {"email": 10})
    assert _classify("country", evidence=emails).rule == {"fake": "email"}
    assert _classify("phone", evidence=emails).rule == {"fake": "phone"}


def test_gather_evidence_counts_whole_values_and_shapes_without_keeping_values():
    array = pa.array(
        [
            "a.b@example.org",
            "write to c.d@example.org today",
            None,
            "8cb2237d0679ca88db6464eac60da96345513964",
        ]
    )
    evidence = C.gather_evidence(array)
    assert evidence.sampled == 3
    assert evidence.hits == {"email": 2, "hex_digest": 1}
    assert evidence.whole == {"email": 1, "hex_digest": 1}
    assert "example" not in evidence.describe()


# --- rendering ------------------------------------------------------------------------------


def test_rendered_draft_round_trips_and_passes_the_check_for_awkward_names_and_types():
    columns = (
        _col("id", S.INTEGER, primary_key=True, unique=True, nullable=False),
        _col("氏名", nullable=False),
        _col("yes"),
        _col("a b: c"),
        _col("null"),
        _col("email", sql_type="VARCHAR(8)", max_length=8, unique=True),
        _col("tags", S.OTHER, sql_type="TEXT[]", nullable=False),
        _col("セイ"),
        _col("photo", S.BINARY, nullable=False),
        _col("amount", S.DECIMAL, sql_type="NUMERIC(5, 2)"),
    )
    schema = S.Schema(
        {"顧客": S.Table("顧客", columns, primary_key=("id",)), "invoices": S.Table("invoices", columns[:1])}
    )
    text = C.render_policy([C.propose(t) for t in schema.tables.values()], "ja_JP", ["header"])
    policy = P.check(P.loads(text), schema)
    assert policy.locale == "ja_JP"
    assert policy.tables["invoices"].action == P.DROP
    assert set(policy.tables["顧客"].columns) == {c.name for c in columns}


# --- SQLite: values decide ------------------------------------------------------------------

CARDS = ["4111111111111111", "5555555555554444", "4012888888881881", "378282246310005", "6011111111111117"]


@pytest.fixture
def wallet_db(tmp_path) -> str:
    path = tmp_path / "wallet.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE wallet (id INTEGER PRIMARY KEY, instrument TEXT NOT NULL, notes TEXT, label TEXT)"
        )
        for i in range(40):
            note = (
                f"customer asked to write to person{i}@example.org" if i % 4 == 0 else "no change requested"
            )
            db.execute(
                "INSERT INTO wallet VALUES (?, ?, ?, ?)",
                (i + 1, CARDS[i % len(CARDS)], note, f"wallet {i % 3}"),
            )
    return f"sqlite:///{path}"


def test_sqlite_cards_are_redacted_as_payment_and_notes_with_emails_scrubbed(wallet_db):
    result = scan(wallet_db, sample=100)
    columns = result.proposals["wallet"].columns
    assert (columns["instrument"].kind, columns["instrument"].rule) == ("payment", "redact")
    assert "card in 40/40 sampled rows" in columns["instrument"].comment
    assert (columns["notes"].kind, columns["notes"].rule) == ("personal", "scrub")
    assert columns["label"].rule == "scrub"
    assert columns["id"].rule == "keep"
    P.check(P.loads(result.policy_text), result.schema)
    for card in CARDS:
        assert card not in result.policy_text
    assert "example.org" not in result.policy_text


def test_cli_scan_writes_the_draft_to_the_out_file(wallet_db, tmp_path):
    out = tmp_path / "draft.yaml"
    assert main(["scan", wallet_db, "--out", str(out), "--sample", "10"]) == EXIT_OK
    assert "instrument: redact  # payment:" in out.read_text(encoding="utf-8")


def test_cli_scan_prints_to_stdout_without_out(wallet_db, capsys):
    assert main(["scan", wallet_db, "--sample", "0"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("# Draft masking policy")
    assert "no rows sampled" in out


@pytest.mark.parametrize(
    "url, message",
    [
        ("not-a-url", "must look like scheme://"),
        ("foo://host/db", "scheme 'foo'"),
        ("postgresql://postgres@127.0.0.1:1/nothing", "cannot connect to the source"),
    ],
    ids=["no-scheme", "unknown-scheme", "unreachable-host"],
)
def test_cli_scan_bad_url_exits_2_with_a_clear_message(url, message, capsys):
    assert main(["scan", url]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert message in err


def test_cli_scan_refuses_a_negative_sample(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["scan", "sqlite://", "--sample", "-1"])
    assert exit_.value.code == EXIT_USAGE
    assert "cannot be negative" in capsys.readouterr().err


# --- Pagila ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pagila_scan(pagila_url):
    return scan(pagila_url)


@pytest.fixture(scope="module")
def pagila_schema(pagila_url) -> S.Schema:
    engine = src.create_engine(pagila_url)
    try:
        return src.reflect(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("table, column", PAGILA_PERSONAL, ids=[f"{t}.{c}" for t, c in PAGILA_PERSONAL])
def test_pagila_personal_column_is_classified_sensitive_and_masked(pagila_scan, table, column):
    result = pagila_scan.proposals[table].columns[column]
    assert result.kind in C.SENSITIVE, result.comment
    assert result.rule != "keep"


def test_pagila_payment_is_dropped_and_keys_and_timestamps_stay_usable(pagila_scan):
    proposals = pagila_scan.proposals
    assert proposals["payment"].drop
    assert set(proposals) == PAGILA_TABLES
    for table, column in [
        ("rental", "rental_id"),
        ("rental", "inventory_id"),
        ("rental", "customer_id"),
        ("inventory", "inventory_id"),
        ("rental", "last_update"),
        ("customer", "last_update"),
    ]:
        assert proposals[table].columns[column].rule == "keep", f"{table}.{column}"
    assert proposals["staff"].columns["picture"].rule == "null"
    assert proposals["country"].columns["country"].kind == "quasi"


def test_pagila_scanned_policy_passes_the_check(pagila_scan, pagila_schema):
    policy = P.check(P.loads(pagila_scan.policy_text), pagila_schema)
    assert policy.tables["payment"].action == P.DROP
    assert "# personal: name matches email; values: email in 599/599 sampled rows" in pagila_scan.policy_text


def test_pagila_reviewed_policy_passes_the_check(pagila_schema):
    policy = P.check(P.load(ROOT / "policies" / "pagila.yaml"), pagila_schema)
    assert set(policy.tables) == PAGILA_TABLES
    for table, column in PAGILA_PERSONAL:
        assert policy.rule(table, column).masks, f"{table}.{column}"


def test_pagila_scanned_policy_holds_no_sampled_value(pagila_scan, pagila_url):
    queries = [
        "SELECT email, first_name, last_name FROM customer",
        "SELECT email, first_name, last_name, username, password FROM staff",
        "SELECT address, phone, postal_code, district FROM address",
        "SELECT first_name, last_name FROM actor",
    ]
    engine = sa.create_engine(pagila_url)
    try:
        with engine.connect() as conn:
            values = {
                v
                for q in queries
                for row in conn.exec_driver_sql(q)
                for v in row
                if v and len(v.strip()) >= 3
            }
    finally:
        engine.dispose()
    assert len(values) > 2000
    text = pagila_scan.policy_text
    leaked = [v for v in values if re.search(rf"(?<!\w){re.escape(v)}(?!\w)", text)]
    assert not leaked, f"{len(leaked)} sampled value(s) appear in the draft"


@pytest.mark.parametrize("policy_source", ["scanned", "reviewed"])
def test_pagila_policy_masks_a_real_batch_of_every_table(
    pagila_scan, pagila_schema, pagila_url, policy_source
):
    from masking import transforms as T
    from masking.keys import MaskingKey

    text = (
        pagila_scan.policy_text
        if policy_source == "scanned"
        else (ROOT / "policies" / "pagila.yaml").read_text()
    )
    policy = P.check(P.loads(text), pagila_schema)
    engine = src.create_engine(pagila_url)
    try:
        with src.read_only(engine) as conn:
            for name, rule in policy.tables.items():
                if rule.action == P.DROP:
                    continue
                table = pagila_schema.tables[name]
                columns = [c for c in table.column_names if not isinstance(rule.columns[c], T.DropColumn)]
                contexts = {c: T.ColumnContext(MaskingKey.demo(), name, table.column(c)) for c in columns}
                batches = src.stream_batches(conn, table, columns, 200)
                batch = next(batches)
                batches.close()
                masked = T.apply_all(batch, rule.columns, contexts.__getitem__)
                assert masked.num_rows == batch.num_rows, name
    finally:
        engine.dispose()


def test_pagila_scan_in_ja_jp_with_an_explicit_schema_passes_its_own_check(pagila_url):
    result = scan(pagila_url, sample=20, db_schema="public", locale="ja_JP")
    assert result.policy_text.count("locale: ja_JP") == 1
    assert "schema public" in result.policy_text
