"""Classify columns as personal, secret, payment or safe, and propose a transform.

Used by schema-drift reports and by ``cleanroom scan``. A column is judged by its name (English
and Japanese, with common abbreviations such as ``fname``, ``dob``, ``addr1``, ``tel``), by its
type and keys, and, when the scanner sampled it, by :class:`Evidence` from the detectors: counts
per pattern kind, never values.

The proposal is safe by default: a text column we cannot tell is safe is scrubbed, not kept.
Keys, foreign keys, booleans, numbers and timestamps with no personal-looking name are kept, so
joins and time series stay usable. Every proposal is fitted to its column (type, NOT NULL,
uniqueness, length), so a policy built from proposals passes :func:`masking.policy.check`.

Known limitations:
    A bare five-digit value is not taken as a US ZIP code from its values alone (ids and
    amounts look the same); only ZIP+4 and the Japanese ``123-4567`` form count, or a
    postal-looking column name. A column whose type the transforms cannot rewrite in place
    (arrays, full-text vectors, domains: logical ``other``) is kept when its name is neutral and
    no pattern was found in the sample, and nulled or dropped otherwise.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from masking import schema as S

CLASSES = ("personal", "secret", "payment", "quasi", "free_text", "key", "safe", "unknown")
SENSITIVE = frozenset({"personal", "secret", "payment"})

# A kind is "dominant" when at least this share of the sampled non-null values are, whole, one
# match of it: then the column holds that kind and gets a dedicated fake, not a scrub.
DOMINANT_SHARE = 0.8

_NUMBERS = frozenset({S.INTEGER, S.FLOAT, S.DECIMAL})
_TEMPORAL = frozenset({S.DATE, S.TIMESTAMP, S.TIME})


@dataclass(frozen=True)
class NameRule:
    """A column-name pattern: English tokens (snake_case after normalising) or Japanese text."""

    label: str
    kind: str
    rule: Any
    english: str
    japanese: str = ""
    numeric: bool = False  # also applies to number columns (a phone stored as bigint)
    temporal: bool = False  # also applies to date and time columns (a birth date)

    def matches(self, normalised: str, raw: str) -> bool:
        if re.search(rf"(?:^|_)(?:{self.english})(?:_|$)", normalised):
            return True
        return bool(self.japanese) and bool(re.search(self.japanese, raw))


def _kana(kind: str) -> dict[str, Any]:
    # Kana kinds exist only in ja_JP; naming the locale keeps them valid in an en_US policy.
    return {"fake": {"kind": kind, "locale": "ja_JP"}}


# Order matters: the first match wins, so specific rules come before general ones
# (``email_address`` is an email, ``ip_address`` an IP, ``first_name_kana`` kana).
NAME_RULES: tuple[NameRule, ...] = (
    NameRule(
        "password or secret",
        "secret",
        "redact",
        r"password|passwd|pwd|pass|passhash|pass_?hash|passcode|pin|pin_code|secret|api_?key|apikey"
        r"|private_?key|secret_?key|access_?key|token|salt|otp|totp|credentials?",
        r"パスワード|暗証番号|秘密鍵|トークン",
        numeric=True,
    ),
    NameRule(
        "payment card or bank account",
        "payment",
        "redact",
        r"card_?(?:number|no|num|nbr)|cardnumber|cc_?(?:num|number|no)|ccnum|pan|credit_?card|cvv2?|cvc2?"
        r"|card_?exp\w*|card_?expir\w*|iban|account_?(?:number|no|num)|acct_?(?:no|num|number)"
        r"|bank_?account|routing_?(?:number|no)|sort_?code",
        r"カード番号|クレジットカード|口座|セキュリティコード",
        numeric=True,
    ),
    NameRule(
        "national id",
        "personal",
        "redact",
        r"ssn|social_?security(?:_number|_no)?|national_?id|nin|passport(?:_no|_number)?"
        r"|driver_?s?_?licen[cs]e(?:_no|_number)?|licen[cs]e_?(?:no|number)|tax_?id|my_?number|mynumber",
        r"マイナンバー|個人番号|免許証|旅券|パスポート|保険証",
        numeric=True,
    ),
    NameRule(
        "last name (kana)",
        "personal",
        _kana("last_name_kana"),
        r"(?:sei|last_?name|family_?name|surname)_kana|kana_(?:sei|last_?name)",
        r"^セイ$|^姓(?:カナ|かな|フリガナ)",
    ),
    NameRule(
        "first name (kana)",
        "personal",
        _kana("first_name_kana"),
        r"(?:mei|first_?name|given_?name)_kana|kana_(?:mei|first_?name)",
        r"^メイ$|^名(?:カナ|かな|フリガナ)",
    ),
    NameRule(
        "name (kana)",
        "personal",
        _kana("name_kana"),
        r"kana|furigana|yomigana",
        r"フリガナ|ふりがな|カナ|よみがな",
    ),
    NameRule("email", "personal", {"fake": "email"}, r"e_?mail|mail|mail_?address|email_?address", r"メール"),
    NameRule(
        "phone",
        "personal",
        {"fake": "phone"},
        r"phone|phone_?(?:no|number|num)|telephone|tel|tel_?no|mobile|cell|cellphone|cell_?phone|fax|msisdn",
        r"電話|携帯|ＴＥＬ|ＦＡＸ|ファックス",
        numeric=True,
    ),
    NameRule(
        "first name",
        "personal",
        {"fake": "first_name"},
        r"first_?name|fname|given_?name|forename|middle_?name|mname|mei",
        r"^名$|^下の名前$",
    ),
    NameRule(
        "last name",
        "personal",
        {"fake": "last_name"},
        r"last_?name|lname|surname|family_?name|maiden_?name|sei",
        r"^姓$|苗字|名字",
    ),
    NameRule(
        "full name",
        "personal",
        {"fake": "name"},
        r"full_?name|fullname|person_?name|customer_?name|contact_?name|display_?name|real_?name|legal_?name"
        r"|card_?holder|cardholder|holder_?name|account_?holder|recipient|addressee|shimei|namae",
        r"氏名|名前|宛名|担当者",
    ),
    NameRule(
        "user name",
        "personal",
        {"fake": "user_name"},
        r"user_?name|username|login|login_?name|handle|nickname|nick|screen_?name|account_?name",
        r"ユーザー?名|ログイン|ニックネーム|アカウント名",
    ),
    NameRule(
        "IP address",
        "personal",
        {"fake": "ipv4"},
        r"ip|ipv4|ip_?addr|ip_?address|remote_?addr|client_?ip|last_?login_?ip|ipaddr",
        r"IPアドレス",
    ),
    NameRule(
        "device identifier",
        "personal",
        "redact",
        r"mac|mac_?address|imei|idfa|advertising_?id|device_?id",
        r"端末ID|MACアドレス",
    ),
    NameRule(
        "street address",
        "personal",
        {"fake": "street_address"},
        r"address|addr|street|street_?address|address_?line|house_?(?:number|no)|building|apartment|apt|suite"
        r"|banchi|jusho|jyusho",
        r"住所|番地|建物|丁目|所在地",
    ),
    NameRule(
        "postal code",
        "personal",
        {"fake": "postal_code"},
        r"postal|postal_?code|post_?code|postcode|zip|zip_?code|zipcode|yubin|yubin_?bango",
        r"郵便|〒",
        numeric=True,
    ),
    NameRule(
        "city",
        "personal",
        {"fake": "city"},
        r"city|town|city_?name|municipality|shikuchoson",
        r"市区町村|市町村",
    ),
    NameRule(
        "state or district",
        "personal",
        {"fake": "state"},
        r"state|prefecture|province|region|district|county|todofuken",
        r"都道府県",
    ),
    NameRule("country", "quasi", "keep", r"country|country_?name|country_?code", r"国名"),
    NameRule(
        "birth date",
        "personal",
        {"fake": "date_of_birth"},
        r"birth|birthday|birth_?date|birthdate|date_?of_?birth|dob|birth_?year|bday",
        r"生年月日|誕生日",
        numeric=True,
        temporal=True,
    ),
    NameRule(
        "geolocation",
        "personal",
        "redact",
        r"lat|latitude|lng|lon|longitude|geo|geolocation|gps|coordinates",
        r"緯度|経度|位置情報",
        numeric=True,
    ),
    NameRule(
        "company",
        "personal",
        {"fake": "company"},
        r"company|company_?name|employer|organi[sz]ation|org_?name|workplace",
        r"会社|勤務先|勤め先|企業名",
    ),
    NameRule(
        "picture",
        "personal",
        "null",
        r"picture|photo|avatar|image|img|signature|portrait|thumbnail|selfie",
        r"写真|画像|署名",
    ),
    NameRule(
        "free text",
        "free_text",
        "scrub",
        r"notes?|comments?|description|desc|message|msg|body|remarks?|memo|text|content|bio|about|summary"
        r"|details|feedback|reason",
        r"備考|内容|メモ|コメント|本文|説明|自由記述|問い?合わ?せ",
    ),
)

# A bare ``name`` column is a person's name only in a table that holds people.
PERSON_TABLE = re.compile(
    r"(?:^|_)(?:customers?|clients?|users?|members?|persons?|people|staff|employees?|contacts?|patients?"
    r"|students?|authors?|actors?|guests?|applicants?|owners?|drivers?|accounts?|profiles?|subscribers?"
    r"|buyers?|sellers?|recipients?|teachers?|doctors?|agents?)(?:_|$)|顧客|会員|社員|従業員|ユーザ|利用者|患者|生徒|学生"
)
BARE_NAME = re.compile(r"^(?:name|名前)$")
PAYMENT_TABLE = re.compile(
    r"(?:^|_)(?:payments?|cards?|credit_?cards?|billing|transactions?|invoices?|charges?)(?:$|_)|決済|支払|請求"
)

PAYMENT_KINDS = frozenset({"card", "iban"})
SECRET_KINDS = frozenset(
    {
        "private_key",
        "jwt",
        "aws_access_key",
        "aws_secret_key",
        "password_in_url",
        "bearer_token",
        "generic_api_key",
        "hex_digest",
        "password_hash",
        "token",
    }
)
# What a column gets when one kind dominates its values.
DOMINANT_FAKES: dict[str, Any] = {
    "email": {"fake": "email"},
    "phone": {"fake": "phone"},
    "phone_jp": {"fake": {"kind": "phone", "locale": "ja_JP"}},
    "ipv4": {"fake": "ipv4"},
    "ipv6": {"fake": "ipv6"},
    "postal_code": {"fake": "postal_code"},
    "postal_code_jp": {"fake": {"kind": "postal_code", "locale": "ja_JP"}},
}

# Whole-value shapes the free-text detectors do not look for, because inside prose they would
# be noise: digests and password hashes, random tokens, postal codes in distinctive forms.
SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("password_hash", re.compile(r"\$(?:2[abxy]?|argon2(?:id|i|d)|pbkdf2[\w-]*|scrypt|[156])\$\S{8,}")),
    (
        "hex_digest",
        re.compile(r"(?:[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{56}|[0-9a-f]{64}|[0-9a-f]{128})", re.IGNORECASE),
    ),
    ("postal_code", re.compile(r"[0-9]{5}-[0-9]{4}|[0-9]{3}-[0-9]{4}")),
)
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9+/_=.-]{20,}")


@dataclass
class Evidence:
    """What the detectors found in a sample of one column: counts per kind, never values.

    ``sampled`` is the number of non-null values looked at; ``hits`` counts rows with at least
    one match of a kind; ``whole`` counts rows whose whole value is one match of that kind.
    """

    sampled: int = 0
    hits: dict[str, int] = field(default_factory=dict)
    whole: dict[str, int] = field(default_factory=dict)

    def dominant(self) -> str | None:
        """Return the kind that fills at least DOMINANT_SHARE of the sampled values, if any."""
        if not self.sampled or not self.whole:
            return None
        kind, count = max(self.whole.items(), key=lambda item: item[1])
        return kind if count >= DOMINANT_SHARE * self.sampled else None

    def describe(self) -> str:
        if not self.sampled:
            return "values: no non-null value in the sample"
        if not self.hits:
            return f"values: no pattern in {self.sampled} sampled rows"
        parts = []
        for kind, count in sorted(self.hits.items(), key=lambda item: (-item[1], item[0])):
            whole = self.whole.get(kind, 0)
            extra = f" (whole value in {whole})" if whole and whole != count else ""
            parts.append(f"{kind} in {count}/{self.sampled} sampled rows{extra}")
        return "values: " + ", ".join(parts)


@dataclass
class Classification:
    kind: str  # one of CLASSES
    rule: Any
    reasons: list[str] = field(default_factory=list)

    @property
    def comment(self) -> str:
        return f"{self.kind}: " + "; ".join(self.reasons) if self.reasons else self.kind


@dataclass
class TableProposal:
    """A proposed rule for one table: ``drop`` or one classification per column."""

    name: str
    drop: bool = False
    reasons: list[str] = field(default_factory=list)
    columns: dict[str, Classification] = field(default_factory=dict)

    @property
    def rule(self) -> Any:
        return "drop" if self.drop else {"columns": {c: cls.rule for c, cls in self.columns.items()}}


# --- evidence from values ------------------------------------------------------------------


def gather_evidence(array) -> Evidence:
    """Run the detectors and the whole-value shapes over one sampled string array.

    ``array`` is a pyarrow string array (or chunked array). Only counts leave this function.
    """
    from masking import detectors

    values = [v for v in array.to_pylist() if v is not None]
    evidence = Evidence(sampled=len(values))
    if not values:
        return evidence
    evidence.hits = {k: n for k, n in detectors.count_rows(array).items() if n}
    mask = detectors.row_mask(array)
    whole: Counter[str] = Counter()
    for row in np.flatnonzero(mask).tolist():
        text = array[row].as_py()
        matches = detectors.find(text)
        stripped = text.strip()
        if len(matches) == 1 and text[matches[0].start : matches[0].end] == stripped:
            whole[matches[0].kind] += 1
    for kind, count in _shape_counts(values).items():
        evidence.hits[kind] = evidence.hits.get(kind, 0) + count
        whole[kind] += count
    evidence.whole = dict(whole)
    return evidence


def _shape_counts(values: Iterable[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for value in values:
        text = value.strip()
        for kind, pattern in SHAPES:
            if pattern.fullmatch(text):
                counts[kind] += 1
                break
        else:
            if _looks_like_token(text):
                counts["token"] += 1
    return counts


def _looks_like_token(text: str) -> bool:
    """A random-looking run of 20+ letters and digits: an API key, session id or the like."""
    if (
        not _TOKEN_SHAPE.fullmatch(text)
        or not any(c.isdigit() for c in text)
        or not any(c.isalpha() for c in text)
    ):
        return False
    counts = Counter(text)
    entropy = -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())
    return entropy >= 4.0


# --- classification ------------------------------------------------------------------------


def _normalise(name: str) -> str:
    """``firstName`` -> ``first_name``, ``ADDR1`` -> ``addr_1``, ``E-Mail`` -> ``e_mail``."""
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name)
    text = re.sub(r"(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])", "_", text)
    return re.sub(r"[^\w]+|_+", "_", text).strip("_").lower()


def is_payment_table(name: str) -> bool:
    return bool(PAYMENT_TABLE.search(_normalise(name)))


def match_name(table_name: str, column: S.Column) -> NameRule | None:
    """Return the first name rule that fits ``column`` (its name and its type), if any."""
    if column.logical in (S.BOOLEAN, S.TIME):
        return None
    normalised = _normalise(column.name)
    for rule in NAME_RULES:
        if column.logical in _NUMBERS and not rule.numeric:
            continue
        if column.logical in _TEMPORAL and not rule.temporal:
            continue
        if rule.matches(normalised, column.name):
            return rule
    if (
        column.logical not in _NUMBERS | _TEMPORAL
        and BARE_NAME.match(normalised)
        and PERSON_TABLE.search(_normalise(table_name))
    ):
        return NameRule("name in a table of people", "personal", {"fake": "name"}, "")
    return None


def classify_column(
    table: S.Table,
    column: S.Column,
    evidence: Evidence | Mapping[str, int] | None = None,
    locale: str = "en_US",
) -> Classification:
    """Classify one column by its keys, its name, its type and (optionally) sampled evidence.

    ``evidence`` is an :class:`Evidence`, or a plain mapping of detector kind to row count
    (then every count is taken as whole values of an unknown sample size: a hint, not proof).
    The returned rule always fits the column: see :func:`fit`.
    """
    evidence = _as_evidence(evidence)
    foreign = {c: fk for fk in table.foreign_keys for c in fk.columns}
    if column.name in foreign:
        fk = foreign[column.name]
        return Classification(
            "key", "keep", [f"foreign key to {fk.ref_table}: inherits the referenced column's transform"]
        )

    by_name = match_name(table.name, column)
    by_values = _from_evidence(evidence) if evidence and evidence.hits else None
    if by_name is not None:
        result = Classification(by_name.kind, by_name.rule, [f"name matches {by_name.label}"])
        # Values can only make a column more sensitive: free text holding emails is personal,
        # and a kept column with findings is masked the way its values ask for.
        if by_values is not None and by_values.kind in SENSITIVE and result.kind not in SENSITIVE:
            result.kind = by_values.kind
            result.rule = by_values.rule if result.rule == "keep" else result.rule
    elif by_values is not None:
        result = by_values
    else:
        result = _by_type(column)
    if evidence is not None and column.logical not in _NUMBERS | _TEMPORAL:
        result.reasons.append(evidence.describe())
    return fit(result, column, locale)


def _as_evidence(evidence: Evidence | Mapping[str, int] | None) -> Evidence | None:
    if evidence is None or isinstance(evidence, Evidence):
        return evidence
    hits = {k: int(v) for k, v in evidence.items() if v}
    return Evidence(sampled=max(hits.values(), default=0), hits=hits, whole=dict(hits))


def _from_evidence(evidence: Evidence) -> Classification:
    kinds = set(evidence.hits)
    dominant = evidence.dominant()
    if dominant in PAYMENT_KINDS:
        return Classification("payment", "redact", [f"values are {dominant} numbers"])
    if kinds & PAYMENT_KINDS:
        return Classification("payment", "scrub", ["payment data inside the text"])
    if dominant in SECRET_KINDS:
        return Classification("secret", "redact", [f"values are {dominant.replace('_', ' ')}s"])
    if kinds & SECRET_KINDS:
        return Classification("secret", "scrub", ["secrets inside the text"])
    if dominant in DOMINANT_FAKES:
        return Classification(
            "personal", DOMINANT_FAKES[dominant], [f"values are {dominant.replace('_', ' ')}s"]
        )
    return Classification("personal", "scrub", ["personal data inside the text"])


def _by_type(column: S.Column) -> Classification:
    if column.primary_key:
        return Classification("key", "keep", ["primary key"])
    if column.logical in (S.BOOLEAN, S.INTEGER, S.FLOAT, S.DECIMAL, S.TIMESTAMP, S.DATE, S.TIME, S.UUID):
        return Classification("safe", "keep", [f"{column.logical} column with a neutral name"])
    if column.logical == S.BINARY:
        return Classification("unknown", "null", ["binary content cannot be inspected"])
    if column.logical == S.OTHER:
        return Classification(
            "safe", "keep", [f"type {column.sql_type} cannot be masked in place; neutral name"]
        )
    return Classification("unknown", "scrub", ["text of unknown content: scrubbed, not kept"])


# --- fitting a proposal to its column -------------------------------------------------------


def fit(result: Classification, column: S.Column, locale: str = "en_US") -> Classification:
    """Adjust the proposed rule to the column's type, NOT NULL, uniqueness and length.

    The rule that comes back passes ``Transform.check`` for this column. Where no masking
    transform fits (a short unique text key, a NOT NULL array), the reason says so.
    """
    rule, note = _fit_rule(result.rule, column, locale)
    if note:
        result.reasons.append(note)
    result.rule = rule
    return result


def _fit_rule(rule: Any, column: S.Column, locale: str) -> tuple[Any, str]:
    if rule == "keep":
        return rule, ""
    logical = column.logical
    if column.needs_injective:
        return _injective(rule, column, locale)
    if logical in (S.STRING, S.JSON):
        return _fit_text(rule, column, locale)
    if logical == S.BINARY:
        return ("null", "") if column.nullable else ("hash", "NOT NULL binary: hashed")
    if logical == S.INTEGER:
        if column.nullable:
            return "null", ""
        if _small_int(column):
            return {"noise": {"relative": 0.5}}, "NOT NULL small integer: noised"
        return "hash", "NOT NULL integer: hashed"
    if logical in (S.FLOAT, S.DECIMAL):
        return ("null", "") if column.nullable else (_noise(column), "NOT NULL number: noised")
    if logical == S.DATE:
        if _fake_kind(rule) == "date_of_birth":
            return rule, ""
        return {"date_shift": {"max_days": 365}}, ""
    if logical == S.TIMESTAMP:
        return {"date_shift": {"max_days": 365}}, ""
    if logical == S.UUID:
        return "hash", ""
    if logical == S.OTHER:
        if column.nullable:
            return "null", f"type {column.sql_type} cannot be masked in place: nulled"
        return "drop", f"NOT NULL {column.sql_type} cannot be masked in place: column left out"
    return "keep", f"type {column.sql_type} has no masking transform: kept, review"


def _fit_text(rule: Any, column: S.Column, locale: str) -> tuple[Any, str]:
    if rule == "null":
        return ("null", "") if column.nullable else ("redact", "NOT NULL: redacted instead of nulled")
    kind = _fake_kind(rule)
    if kind is None:
        return rule, ""
    if column.logical == S.JSON:
        return "scrub", "JSON document: scrubbed"
    if kind == "date_of_birth" or _fake_fits(rule, column, locale):
        return rule, ""
    return "redact", f"a fake {kind} does not fit {column.max_length} characters: redacted"


def _injective(rule: Any, column: S.Column, locale: str) -> tuple[Any, str]:
    from masking import fakes

    kind = _fake_kind(rule)
    if column.logical == S.STRING and kind and fakes.can_be_unique(kind) and _fake_fits(rule, column, locale):
        return rule, ""
    if column.logical == S.STRING and (column.max_length or 16) >= 16:
        return {"hash": {"length": 16}}, "unique: hashed (injective)"
    if column.logical == S.INTEGER and not _small_int(column):
        return "hash", "unique: hashed (injective)"
    if column.logical in (S.UUID, S.BINARY):
        return "hash", "unique: hashed (injective)"
    return "keep", f"unique {column.sql_type} with no injective masking transform: kept, review"


def _fake_kind(rule: Any) -> str | None:
    if not isinstance(rule, dict) or "fake" not in rule:
        return None
    spec = rule["fake"]
    return spec.get("kind") if isinstance(spec, dict) else spec


def _fake_fits(rule: Any, column: S.Column, locale: str) -> bool:
    """Whether the fake can be written within the column's length (checked when rows are masked)."""
    from masking import fakes, transforms
    from masking.errors import TransformError

    if not column.max_length:
        return True
    spec = rule["fake"]
    kind = _fake_kind(rule)
    locale = spec.get("locale", locale) if isinstance(spec, dict) else locale
    unique = column.needs_injective or kind in transforms.ALWAYS_UNIQUE
    try:
        fakes.fake_values(
            kind, np.zeros(1, dtype=np.uint64), locale, unique=unique, max_length=column.max_length
        )
    except TransformError:
        return False
    return True


def _small_int(column: S.Column) -> bool:
    return column.sql_type.upper() in ("SMALLINT", "INT2", "TINYINT")


def _noise(column: S.Column) -> dict[str, Any]:
    params: dict[str, Any] = {"relative": 0.2}
    if column.logical == S.DECIMAL and column.precision:
        # Stay inside NUMERIC(p, s): noise on the largest value must not overflow the column.
        limit = 10 ** (column.precision - (column.scale or 0)) - 10 ** -(column.scale or 0)
        params.update({"min": -round(limit, column.scale or 0), "max": round(limit, column.scale or 0)})
    return {"noise": params}


# --- tables and policies ----------------------------------------------------------------------


def propose(
    table: S.Table,
    evidence: Mapping[str, Evidence | Mapping[str, int]] | None = None,
    locale: str = "en_US",
) -> TableProposal:
    """Propose a rule for a whole table: ``drop`` for payment tables, else one per column."""
    if is_payment_table(table.name):
        return TableProposal(
            table.name, drop=True, reasons=["table name matches a payment table: dropped whole, never read"]
        )
    proposal = TableProposal(table.name)
    for col in table.columns:
        proposal.columns[col.name] = classify_column(table, col, (evidence or {}).get(col.name), locale)
    return proposal


def propose_table(table: S.Table, evidence: Mapping[str, Mapping[str, int]] | None = None) -> Any:
    """Propose a policy rule for a whole table (``drop`` for payment tables)."""
    return propose(table, evidence).rule


def propose_fragment(new_tables: list[S.Table], new_columns: list[tuple[S.Table, S.Column]]) -> str:
    """Render YAML for tables and columns the policy does not cover yet."""
    proposals: dict[str, TableProposal] = {t.name: propose(t) for t in new_tables}
    for table, column in new_columns:
        entry = proposals.setdefault(table.name, TableProposal(table.name))
        entry.columns[column.name] = classify_column(table, column)
    return "\n".join(["tables:", *_render_tables(proposals.values(), indent="  ", comments=False)]) + "\n"


QUASI_NOTE = (
    "Location quasi-identifiers: city names are faked (a city can point at one household); "
    "country-level columns are kept for analysis. Keeping them is acceptable only because "
    "street, district, postal code and phone are masked; mask them too if the sandbox is shared "
    "beyond the team."
)


def render_policy(
    proposals: Iterable[TableProposal], locale: str = "en_US", header: Iterable[str] = ()
) -> str:
    """Render proposals as a policy file with the evidence in comments (counts, never values)."""
    proposals = list(proposals)
    lines = [f"# {line}" if line else "#" for line in header]
    if any(c.kind == "quasi" for p in proposals for c in p.columns.values()):
        lines += ["#", *(f"# {part}" for part in _wrap(QUASI_NOTE, 96))]
    lines += [f"locale: {locale}", "tables:"]
    lines += _render_tables(proposals, indent="  ", comments=True)
    return "\n".join(lines) + "\n"


def _render_tables(proposals: Iterable[TableProposal], indent: str, comments: bool) -> list[str]:
    lines = []
    for proposal in proposals:
        note = f"  # payment: {'; '.join(proposal.reasons)}" if proposal.reasons else ""
        if proposal.drop:
            lines.append(f"{indent}{_scalar(proposal.name)}: drop{note}")
            continue
        lines += [f"{indent}{_scalar(proposal.name)}:", f"{indent * 2}columns:"]
        for name, cls in proposal.columns.items():
            comment = f"  # {cls.comment}" if comments else ""
            lines.append(f"{indent * 3}{_scalar(name)}: {flow(cls.rule)}{comment}")
    return lines


TRANSFORM_WORDS = frozenset({"keep", "null", "redact", "scrub", "hash", "drop"})


def flow(value: Any) -> str:
    """Render a rule in YAML flow style: ``keep``, ``{fake: email}``, ``{hash: {length: 16}}``."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, str) and value in TRANSFORM_WORDS:
        return value  # a bare transform name; the policy loader reads `null` literally
    return _scalar(value)


def _scalar(value: Any) -> str:
    import yaml

    text = yaml.safe_dump(value, allow_unicode=True, default_flow_style=True, width=1 << 16)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width)
