"""Classify columns as personal, secret, payment or safe, and propose a transform.

Used by schema-drift reports and by ``cleanroom scan``. The proposal is safe by default: a
column we cannot tell is safe is masked, not kept. Only keys, foreign keys, booleans,
numbers and timestamps with no personal-looking name are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from masking import schema as S

# Name patterns: (regex over the normalised column name, classification, proposed rule).
# Order matters: the first match wins.
NAME_RULES: list[tuple[str, str, Any]] = [
    (r"(^|_)(password|passwd|pwd|pass_?hash|secret|api_?key|token|salt|private_?key|otp|パスワード)($|_)", "secret", "redact"),
    (r"(card_?(number|no|num)|^pan$|cc_?num|credit_?card|cvv|cvc|card_?exp|iban|account_?(number|no)|口座)", "payment", "redact"),
    (r"(e_?mail|メール)", "personal", {"fake": "email"}),
    (r"(phone|mobile|tel(ephone)?|fax|電話|携帯)", "personal", {"fake": "phone"}),
    (r"(first_?name|given_?name|forename|^fname$|名前?$|^名$)", "personal", {"fake": "first_name"}),
    (r"(last_?name|surname|family_?name|^lname$|^姓$)", "personal", {"fake": "last_name"}),
    (r"(kana|furigana|フリガナ|カナ|ふりがな)", "personal", {"fake": "name_kana"}),
    (r"(full_?name|^name$|customer_?name|contact_?name|person|氏名|名前)", "personal", {"fake": "name"}),
    (r"(user_?name|login|^username$|handle|nickname)", "personal", {"fake": "user_name"}),
    (r"(street|address|addr\d?$|^address\d?$|住所|番地)", "personal", {"fake": "street_address"}),
    (r"(postal|zip|postcode|郵便)", "personal", {"fake": "postal_code"}),
    (r"(^city$|town|市区町村)", "personal", {"fake": "city"}),
    (r"(district|^state$|prefecture|province|region|都道府県)", "personal", {"fake": "state"}),
    (r"(birth|dob|生年月日|誕生)", "personal", {"fake": "date_of_birth"}),
    (r"(^ip$|ip_?addr|remote_?addr|client_?ip)", "personal", {"fake": "ipv4"}),
    (r"(ssn|social_?security|national_?id|passport|license_?no|tax_?id|マイナンバー)", "personal", "redact"),
    (r"(company|employer|organi[sz]ation|会社)", "personal", {"fake": "company"}),
    (r"(note|comment|description|message|body|remarks|memo|text|備考|内容)", "free_text", "scrub"),
    (r"(picture|photo|avatar|image|signature)", "personal", "null"),
]
PAYMENT_TABLE = re.compile(r"(^|_)(payments?|card|cards|credit_?cards?|billing|transactions?|invoices?)($|_|_p\d)")


@dataclass
class Classification:
    kind: str  # personal, secret, payment, free_text, key, safe, unknown
    rule: Any
    reasons: list[str] = field(default_factory=list)


def _normalise(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def is_payment_table(name: str) -> bool:
    return bool(PAYMENT_TABLE.search(_normalise(name)))


def classify_column(table: S.Table, column: S.Column, evidence: dict[str, int] | None = None) -> Classification:
    """Classify one column by its name, its type and (optionally) detector hit counts."""
    name = _normalise(column.name)
    fk_columns = {c for fk in table.foreign_keys for c in fk.columns}
    evidence = {k: v for k, v in (evidence or {}).items() if v}

    for pattern, kind, rule in NAME_RULES:
        if re.search(pattern, name):
            return _fit(Classification(kind, rule, [f"name matches {kind} pattern"]), column)
    if evidence:
        return _from_evidence(column, evidence)
    if column.primary_key or column.name in fk_columns:
        return Classification("key", "keep", ["primary or foreign key"])
    if column.logical in (S.BOOLEAN, S.INTEGER, S.FLOAT, S.DECIMAL, S.TIMESTAMP, S.DATE, S.TIME, S.UUID):
        return Classification("safe", "keep", [f"{column.logical} column with a neutral name"])
    if column.logical == S.BINARY:
        return _fit(Classification("unknown", "null", ["binary content cannot be inspected"]), column)
    # Text or JSON of unknown content: keep the text shape but scrub what the detectors find.
    return Classification("unknown", "scrub", ["text column of unknown content: scrubbed, not kept"])


def _from_evidence(column: S.Column, evidence: dict[str, int]) -> Classification:
    reasons = [f"values match {kind} in {count} sampled row(s)" for kind, count in sorted(evidence.items())]
    if {"card", "iban"} & set(evidence):
        return _fit(Classification("payment", "redact", reasons), column)
    secret_kinds = {"jwt", "aws_access_key", "aws_secret_key", "private_key", "bearer_token", "password_in_url", "generic_api_key"}
    if secret_kinds & set(evidence):
        return _fit(Classification("secret", "redact", reasons), column)
    single = {"email": {"fake": "email"}, "phone": {"fake": "phone"}, "phone_jp": {"fake": "phone", "locale": "ja_JP"},
              "ipv4": {"fake": "ipv4"}, "ipv6": {"fake": "ipv6"}}
    if len(evidence) == 1 and next(iter(evidence)) in single:
        return _fit(Classification("personal", single[next(iter(evidence))], reasons), column)
    return Classification("free_text", "scrub", reasons)


def _fit(result: Classification, column: S.Column) -> Classification:
    """Adjust the proposal to the column: types, NOT NULL, uniqueness."""
    rule = result.rule
    if column.primary_key or column.unique:
        if column.logical in (S.STRING, S.INTEGER, S.UUID):
            rule = {"hash": {"length": 16}} if column.logical == S.STRING and (column.max_length or 99) >= 16 else "hash"
            if isinstance(result.rule, dict) and result.rule.get("fake") in ("email", "user_name", "phone"):
                rule = result.rule
    elif column.logical == S.BINARY or (rule == "null" and column.logical not in S.TEXTUAL):
        rule = "null" if column.nullable else "redact"
    elif column.logical == S.DATE:
        rule = {"fake": "date_of_birth"} if result.kind == "personal" else {"date_shift": {"max_days": 30}}
    elif column.logical == S.TIMESTAMP:
        rule = {"date_shift": {"max_days": 30}}
    elif column.logical in (S.INTEGER, S.FLOAT, S.DECIMAL):
        rule = "null" if column.nullable else {"noise": {"relative": 0.2}}
    elif column.logical == S.JSON and rule not in ("redact", "null"):
        rule = "scrub"
    if rule == "null" and not column.nullable:
        rule = "redact" if column.logical in S.TEXTUAL else {"constant": {"value": 0}}
    result.rule = rule
    return result


def propose_table(table: S.Table, evidence: dict[str, dict[str, int]] | None = None) -> Any:
    """Propose a policy rule for a whole table (``drop`` for payment tables)."""
    if is_payment_table(table.name):
        return "drop"
    columns = {}
    for col in table.columns:
        columns[col.name] = classify_column(table, col, (evidence or {}).get(col.name)).rule
    return {"columns": columns}


def propose_fragment(new_tables: list[S.Table], new_columns: list[tuple[S.Table, S.Column]]) -> str:
    """Render YAML for tables and columns the policy does not cover yet."""
    fragment: dict[str, Any] = {}
    for table in new_tables:
        fragment[table.name] = propose_table(table)
    for table, column in new_columns:
        entry = fragment.setdefault(table.name, {"columns": {}})
        entry["columns"][column.name] = classify_column(table, column).rule
    return yaml.safe_dump({"tables": fragment}, sort_keys=False, allow_unicode=True)
