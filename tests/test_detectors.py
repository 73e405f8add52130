"""Tests for masking.detectors: per-kind positives and negatives, overlap rules, the Arrow paths,
and ground truth from the shared third-party corpus."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from masking.detectors import (
    DETECTORS,
    EMAIL_LIKE_PROTOCOL_NAMES,
    Match,
    count_rows,
    find,
    iban_ok,
    luhn_ok,
    row_mask,
    scrub_array,
    scrub_text,
)
from masking.errors import TransformError

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2M"
    "jM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM_HEAD = "-----BEGIN OPENSSH PRIVATE KEY-----"
GITHUB = "ghp_Ab3dEf6hIj9lMn2pQr5tUv8xYz1bCd4fGh7j"
SLACK = "xoxb-123456789012-1234567890123-AbCdEfGhIjKl"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx4Uq\nZm9vYmFy\n-----END RSA PRIVATE KEY-----"

# (kind, text, the exact text the match must cover)
POSITIVES = [
    ("email", "contact: john.smith+news@example.co.uk.", "john.smith+news@example.co.uk"),
    ("email", "from=<MARY.SMITH@sakilacustomer.org>", "MARY.SMITH@sakilacustomer.org"),
    ("email", "KeyName olexandr.zagaria@intapp.com2", "olexandr.zagaria@intapp.com2"),
    ("email", "メール：taro.yamada@example.jp まで", "taro.yamada@example.jp"),
    ("phone", "call +1 415 555 2671 today", "+1 415 555 2671"),
    ("phone", "tel +442079460958", "+442079460958"),
    ("phone", "+1 (415) 555-2671", "+1 (415) 555-2671"),
    ("phone", "Paris +33 1 23 45 67 89", "+33 1 23 45 67 89"),
    ("phone", "(555) 123-4567", "(555) 123-4567"),
    ("phone", "cell 555.123.4567", "555.123.4567"),
    ("phone", "1-800-555-0199 toll free", "1-800-555-0199"),
    ("phone_jp", "電話 03-1234-5678", "03-1234-5678"),
    ("phone_jp", "携帯: 090-1234-5678", "090-1234-5678"),
    ("phone_jp", "携帯 09012345678", "09012345678"),
    ("phone_jp", "+81 90-1234-5678", "+81 90-1234-5678"),
    ("phone_jp", "+81-3-1234-5678", "+81-3-1234-5678"),
    ("phone_jp", "(03)1234-5678", "(03)1234-5678"),
    ("phone_jp", "0120-123-456", "0120-123-456"),
    ("phone_jp", "ＴＥＬ ０３－１２３４－５６７８", "０３－１２３４－５６７８"),
    ("card", "visa 4111 1111 1111 1111", "4111 1111 1111 1111"),
    ("card", "4111-1111-1111-1111", "4111-1111-1111-1111"),
    ("card", "mc 5555555555554444 exp 12/28", "5555555555554444"),
    ("card", "amex 3782 822463 10005", "3782 822463 10005"),
    ("card", "4111 1111 1111 1111 123 (cvv follows)", "4111 1111 1111 1111"),
    ("iban", "IBAN DE89 3704 0044 0532 0130 00", "DE89 3704 0044 0532 0130 00"),
    ("iban", "GB82WEST12345698765432", "GB82WEST12345698765432"),
    ("ipv4", "client 10.0.0.1 port 22", "10.0.0.1"),
    ("ipv4", "[192.168.001.010]", "192.168.001.010"),
    ("ipv6", "from 2001:db8:85a3::8a2e:370:7334 port", "2001:db8:85a3::8a2e:370:7334"),
    ("ipv6", "peer fe80::1ff:fe23:4567:890a", "fe80::1ff:fe23:4567:890a"),
    ("ipv6", "::ffff:218.249.210.161", "::ffff:218.249.210.161"),
    ("jwt", f"token {JWT} end", JWT),
    ("aws_access_key", "id=AKIAIOSFODNN7EXAMPLE;", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_access_key", "ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A"),
    (
        "aws_secret_key",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    (
        "aws_secret_key",
        '"SecretAccessKey": "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"',
        "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    ),
    ("private_key", f"key:\n{PEM}\n", PEM),
    ("private_key", f"{PEM_HEAD}\nb3BlbnNzaC1r", f"{PEM_HEAD}\nb3BlbnNzaC1r"),
    ("bearer_token", "Authorization: Bearer 9f8e7d6c5b4a3928aBcDeF", "9f8e7d6c5b4a3928aBcDeF"),
    ("password_in_url", "postgresql+psycopg://app:s3cr3t@db.internal:5432/x", "s3cr3t"),
    ("password_in_url", "https://bob:hunter2@example.com/", "hunter2"),
    ("generic_api_key", "api_key=9f8e7d6c5b4a39281706aBcD", "9f8e7d6c5b4a39281706aBcD"),
    ("generic_api_key", 'X-Api-Key: "Zx81mQ07bLk2Vt55rNw9"', "Zx81mQ07bLk2Vt55rNw9"),
    ("generic_api_key", "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("generic_api_key", f"export GH={GITHUB}", GITHUB),
    ("generic_api_key", f"slack {SLACK}", SLACK),
    ("postal_code_jp", "〒100-0001 東京都千代田区", "100-0001"),
    ("postal_code_jp", "〒１００－０００１", "１００－０００１"),
    ("postal_code_jp", "郵便番号：1000001", "1000001"),
    ("postal_code_jp", "住所 530-0001 大阪府", "530-0001"),
]

# Texts in which no detector may find anything.
NEGATIVES = {
    "order number": "order ORD-2024-000123 shipped",
    "16 digits failing Luhn": "ref 4111 1111 1111 1112",
    "16 digits, Luhn ok but no issuer": "ref 1234567812345670",
    "long digit run": "txn 20261203174235123456789",
    "iso timestamp": "at 2026-12-03T17:42:35Z",
    "iso timestamp with offset": "2026-12-03T17:42:35+09:00",
    "iso date with expanded year": "since +002026-12-03",
    "doubled separators": "+1 415--555 2671",
    "date": "on 2024-12-03 and 03/12/2024 and 2024.12.03",
    "three-part version": "pyarrow 1.24.1",
    "v-prefixed version": "release v3.3.2",
    "version 10.0.0": "upgrade to 10.0.0 now",
    "five-part dotted number": "oid 1.3.6.1.4.1",
    "uuid": "id 550e8400-e29b-41d4-a716-446655440000",
    "sha1 hex": "8cb2237d0679ca88db6464eac60da96345513964",
    "sha256 hex": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "clock time": "12:30:45 and 17:42",
    "mac address": "02:5a:3b:4c:5d:6e",
    "ssh fingerprint": "RSA SHA256:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55",
    "cpp scope": "std::vector<int>",
    "loopback v6": "listen [::1]:8080",
    "ssh algorithm as email": "mac hmac-ripemd160@openssh.com cipher rijndael-cbc@lysator.liu.se",
    "host without tld": "test@localhost xxx@123",
    "aws instance profile id": "AIPAUB4SMJSYHCO7TQXKW",
    "bearer word": "uses Bearer authentication",
    "token identifier": "token: refresh_token_expired_error",
    "placeholder api key": "api_key=xxxxxxxxxxxxxxxxxxxxxxxx",
    "url with port and at-sign in path": "https://example.com:8443/pkg@v2",
    "url with placeholder password": "postgresql://app:${PGPASSWORD}@db:5432/x",
    "url with masked password": "https://bob:****@example.com/",
    "bare 10 digits": "ref 0312345678 or 4155552671",
    "jp date": "令和6年12月3日 2024年12月3日",
    "seven digits without postal marker": "電話 123-4567",
    "iban with bad check digits": "DE00 3704 0044 0532 0130 00",
    "iban-like code from a non-iban country": "US64SVBKUS6S3300958879",
    "mysql plugin name": "default_authentication_plugin=mysql_native_password",
    "sentence": "The quick brown fox jumps over the lazy dog.",
}


def covered(text: str, kinds=None) -> list[tuple[str, str]]:
    return [(m.kind, text[m.start : m.end]) for m in find(text, kinds)]


@pytest.mark.parametrize(
    ("kind", "text", "expected"), POSITIVES, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(POSITIVES)]
)
def test_find_when_token_present_then_reports_it_and_only_it(kind, text, expected):
    assert covered(text) == [(kind, expected)]


@pytest.mark.parametrize("text", list(NEGATIVES.values()), ids=list(NEGATIVES))
def test_find_when_token_absent_then_reports_nothing(text):
    assert find(text) == []


def test_detectors_when_listed_then_have_known_categories_and_descriptions():
    required = {
        "email", "phone", "phone_jp", "card", "iban", "ipv4", "ipv6", "jwt", "aws_access_key",
        "aws_secret_key", "private_key", "bearer_token", "password_in_url", "generic_api_key",
        "postal_code_jp",
    }

    assert required <= set(DETECTORS)
    for name, detector in DETECTORS.items():
        assert detector.name == name
        assert detector.category in {"personal", "secret", "payment"}
        assert detector.description


@pytest.mark.parametrize("kind", list(DETECTORS))
def test_pattern_when_run_in_re2_then_selects_every_positive(kind):
    texts = [text for k, text, _ in POSITIVES if k == kind]
    hits = pc.match_substring_regex(pa.array(texts, pa.string()), DETECTORS[kind].pattern)

    assert texts and hits.to_pylist() == [True] * len(texts)


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4111 1111 1111 1111", True),
        ("4111111111111111", True),
        ("5555-5555-5555-4444", True),
        ("378282246310005", True),
        ("4111 1111 1111 1112", False),
        ("4111111111111110", False),
        ("", False),
    ],
    ids=["visa-spaced", "visa", "mastercard-dashed", "amex", "visa-bad-check", "visa-bad-check-2", "none"],
)
def test_luhn_ok_when_checked_then_matches_the_check_digit(number, valid):
    assert luhn_ok(number) is valid


def test_card_when_check_digit_wrong_then_not_detected():
    assert covered("pay 4111 1111 1111 1111") == [("card", "4111 1111 1111 1111")]
    assert covered("pay 4111 1111 1111 1112") == []


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("DE89 3704 0044 0532 0130 00", True),
        ("gb82 west 1234 5698 7654 32", True),
        ("NO9386011117947", True),
        ("DE89 3704 0044 0532 0130 01", False),
        ("DE89 3704 0044 0532 0130", False),
        ("XX89370400440532013000", False),
        ("not an iban", False),
    ],
    ids=["de", "gb-lowercase", "no-shortest", "de-bad-checksum", "de-too-short", "unknown-country", "text"],
)
def test_iban_ok_when_checked_then_validates_country_length_and_mod97(text, valid):
    assert iban_ok(text) is valid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://bob:hunter2@example.com/", [("password_in_url", "hunter2")]),
        ("::ffff:1.2.3.4", [("ipv6", "::ffff:1.2.3.4")]),
        ("+81 3-1234-5678", [("phone_jp", "+81 3-1234-5678")]),
        (f"Authorization: Bearer {JWT}", [("jwt", JWT)]),
        ("a@example.com, 10.1.2.3 and +1 415 555 2671", [
            ("email", "a@example.com"), ("ipv4", "10.1.2.3"), ("phone", "+1 415 555 2671"),
        ]),
    ],
    ids=["url-password-beats-email", "ipv6-beats-ipv4", "jp-beats-intl", "jwt-beats-bearer", "several"],
)
def test_find_when_matches_overlap_then_most_specific_wins(text, expected):
    assert covered(text) == expected


def test_password_in_url_when_url_has_user_only_then_not_detected():
    assert find("ssh://git@github.com/org/repo.git", ["password_in_url"]) == []


def test_find_when_kinds_given_then_reports_only_those_kinds():
    text = "a@example.com from 10.1.2.3"

    assert covered(text, ["ipv4"]) == [("ipv4", "10.1.2.3")]


def test_find_when_kind_unknown_then_raises_with_the_valid_names():
    with pytest.raises(TransformError, match=r"unknown detector kind\(s\) \['mail'\]; expected some of"):
        find("x", ["mail"])


def test_email_protocol_names_when_listed_then_include_ssh_vendors():
    assert {"openssh.com", "lysator.liu.se"} <= EMAIL_LIKE_PROTOCOL_NAMES


def test_scrub_text_when_replacing_then_gets_match_and_text_and_keeps_the_rest():
    seen = []

    def replace(match: Match, text: str) -> str:
        seen.append((match.kind, text))
        return f"<{match.kind}>"

    result = scrub_text("mail bob@example.com or 03-1234-5678.", replace)

    assert result == "mail <email> or <phone_jp>."
    assert seen == [("email", "bob@example.com"), ("phone_jp", "03-1234-5678")]


ROWS = ["bob@example.com", None, "nothing here", "card 4111 1111 1111 1111", "", "ip 10.0.0.1 and x@y.org"]


@pytest.mark.parametrize("arrow_type", [pa.string(), pa.large_string()], ids=["string", "large_string"])
def test_count_rows_when_column_given_then_counts_rows_per_kind(arrow_type):
    counts = count_rows(pa.array(ROWS, arrow_type), ["email", "card", "ipv4", "phone"])

    assert counts == {"email": 2, "card": 1, "ipv4": 1, "phone": 0}


def test_count_rows_when_chunked_then_counts_across_chunks():
    column = pa.chunked_array([ROWS[:3], ROWS[3:]], pa.string())

    assert count_rows(column)["email"] == 2


def test_row_mask_when_nulls_present_then_they_are_false():
    mask = row_mask(pa.chunked_array([ROWS[:2], ROWS[2:]]))

    assert isinstance(mask, np.ndarray) and mask.dtype == bool
    assert mask.tolist() == [True, False, False, True, False, True]


@pytest.mark.parametrize("arrow_type", [pa.string(), pa.large_string()], ids=["string", "large_string"])
def test_scrub_array_when_matches_present_then_replaces_them_and_keeps_type_and_nulls(arrow_type):
    result = scrub_array(pa.array(ROWS, arrow_type), lambda m, _: f"<{m.kind}>")

    assert result.type == arrow_type
    assert result.to_pylist() == [
        "<email>", None, "nothing here", "card <card>", "", "ip <ipv4> and <email>",
    ]


def test_scrub_array_when_nothing_matches_then_returns_the_input_unchanged():
    column = pa.array(["plain", None])

    assert scrub_array(column, lambda m, _: "X") is column


def test_scrub_array_when_chunked_then_keeps_chunk_layout():
    column = pa.chunked_array([ROWS[:2], ROWS[2:]], pa.string())

    result = scrub_array(column, lambda m, _: "#")

    assert isinstance(result, pa.ChunkedArray)
    assert [len(c) for c in result.chunks] == [2, 4]


def test_count_rows_when_column_not_text_then_raises_with_a_hint():
    with pytest.raises(TransformError, match=r"got int64; cast the column first"):
        count_rows(pa.array([1, 2]))


FRAGMENTS = [text for _, text, _ in POSITIVES] + list(NEGATIVES.values())
SCRUBBED = ("email", "phone", "phone_jp", "card", "iban", "ipv4", "ipv6", "aws_access_key", "jwt")
pieces = st.one_of(
    st.sampled_from(FRAGMENTS),
    st.text(alphabet=" .,:;-+@()<>\n0123456789abcxyzAKI〒０", max_size=12),
)
cells = st.one_of(st.none(), st.lists(pieces, max_size=5).map(" ".join))


@settings(max_examples=200, deadline=None)
@given(st.lists(cells, max_size=20))
def test_scrub_array_when_any_text_then_no_confirmed_match_remains(values):
    column = pa.array(values, pa.string())

    result = scrub_array(column, lambda m, _: "▒", SCRUBBED)

    assert len(result) == len(column)
    assert [v is None for v in result.to_pylist()] == [v is None for v in values]
    assert [v for v in result.to_pylist() if v is not None and find(v, SCRUBBED)] == []


# Ground truth stated in ../shared/corpus/README.md.


def read(corpus, name: str) -> str:
    return (corpus / name).read_text(encoding="utf-8")


@pytest.mark.corpus
def test_corpus_postfix_when_scanned_then_finds_45_emails_24_distinct(corpus):
    text = read(corpus, "logs/fail2ban/postfix")

    emails = [value for _, value in covered(text, ["email"])]

    assert len(emails) == 45
    assert len(set(emails)) == 24
    assert "john@example.com" in emails


@pytest.mark.corpus
def test_corpus_sshd_when_scanned_then_finds_65_distinct_ipv4(corpus):
    text = read(corpus, "logs/fail2ban/sshd")

    assert len({value for _, value in covered(text, ["ipv4"])}) == 65


@pytest.mark.corpus
def test_corpus_sshd_when_scanned_then_algorithm_names_are_not_emails(corpus):
    text = read(corpus, "logs/fail2ban/sshd")
    assert "hmac-ripemd160@openssh.com" in text and "rijndael-cbc@lysator.liu.se" in text

    emails = {value for _, value in covered(text, ["email"])}

    assert not any(e.endswith(("@openssh.com", "@lysator.liu.se")) for e in emails)


@pytest.mark.corpus
def test_corpus_ec2_when_scanned_then_finds_the_listed_emails_and_ipv4(corpus):
    text = read(corpus, "cloud/aws/ec2.DescribeInstances_1.json")

    emails = {value for _, value in covered(text, ["email"])}
    ips = {value for _, value in covered(text, ["ipv4"])}

    assert emails == {
        "sergey.dziuban@intapp.com", "intapp-devopssbx@intapp.com", "olexandr.zagaria@intapp.com2",
    }
    assert ips == {
        "172.31.10.41", "172.31.82.113", "172.31.69.54", "172.31.69.131", "100.27.16.222", "3.82.114.28",
    }


@pytest.mark.corpus
def test_corpus_ec2_when_scanned_then_no_secret_is_reported(corpus):
    text = read(corpus, "cloud/aws/ec2.DescribeInstances_1.json")

    secret_kinds = [name for name, d in DETECTORS.items() if d.category != "personal"]

    assert find(text, secret_kinds) == []


@pytest.mark.corpus
def test_corpus_redis_active_lines_when_scanned_then_hold_no_secret(corpus):
    lines = read(corpus, "config/redis/redis.conf").splitlines()
    active = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    secret_kinds = [name for name, d in DETECTORS.items() if d.category == "secret"]

    assert len(active) == 74
    assert [line for line in active if find(line, secret_kinds)] == []


@pytest.mark.corpus
def test_corpus_mysql_plugin_line_when_scanned_then_not_a_secret(corpus):
    # Finding "password = msandbox" is config-file scrubbing and out of scope here; only check that
    # the plugin name on line 35 is not mistaken for a credential.
    line = read(corpus, "config/mysql/my.sandbox.cnf").splitlines()[34]
    assert re.match(r"default_authentication_plugin\s*=", line)

    assert find(line) == []


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("call +1-801-381-5908x3016 now", "+1-801-381-5908x3016", id="plus-one-with-extension"),
        pytest.param("call 001-513-290-9960.", "001-513-290-9960", id="001-international-prefix"),
        pytest.param("(712)422-0297x2997", "(712)422-0297x2997", id="parenthesised-area-with-extension"),
        pytest.param("374-791-1862x52760", "374-791-1862x52760", id="dashed-with-extension"),
    ],
)
def test_phone_formats_faker_produces_are_found_whole(text, expected):
    from masking import detectors

    (match,) = detectors.find(text, kinds=["phone"])
    assert text[match.start : match.end] == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("Contact: 8209679701.", "8209679701", id="after-contact"),
        pytest.param("or call 3698907980 today", "3698907980", id="after-call"),
    ],
)
def test_bare_digits_after_a_phone_word_are_a_phone(text, expected):
    from masking import detectors

    (match,) = detectors.find(text, kinds=["phone"])
    assert text[match.start : match.end] == expected


# --- further scrub passes ---------------------------------------------------------------------

from masking import detectors  # noqa: E402 - the private pass machinery, for the tests below

_GLUED_TOKENS = ["a@b.com", "x@y.co", "+1 415 555 0100", "(415) 555-0100", "4111 1111 1111 1111", "AKIAIOSFODNN7EXAMPLE",
                 "192.168.10.20", "8901@x.com"]
_GLUE = ["", " ", ",", "+", "(", "-", ".", "@"]


def _scrub_passes(texts: list[str], *, rescan_all: bool = False) -> list[str]:
    """Scrub with the real substitutes; ``rescan_all`` reads every changed row again (the reference)."""
    from masking import schema as S
    from masking import transforms as T
    from masking.keys import MaskingKey

    kinds = detectors._kinds(None)
    ctx = T.ColumnContext(MaskingKey.demo(), "t", S.Column(name="note", sql_type="text", logical=S.STRING))
    replacer = T.TextReplacer(ctx)

    def scrub(chunk):
        scrubbed, again = detectors._scrub_chunk_bulk(chunk, replacer.replace_all, kinds)
        return scrubbed, (np.ones_like(again) if rescan_all else again)

    return detectors._until_clean(pa.array(texts), scrub).to_pylist()


def test_rows_skipped_after_a_pass_come_out_as_a_rescan_of_every_changed_row_would_leave_them():
    texts = [f"{a}{glue}{b}" for a in _GLUED_TOKENS for b in _GLUED_TOKENS for glue in _GLUE]
    texts += [f"call {a}{glue}{b} {c} now" for a in _GLUED_TOKENS[:4] for b in _GLUED_TOKENS for c in _GLUED_TOKENS[2:5]
              for glue in _GLUE[:4]]

    assert _scrub_passes(texts) == _scrub_passes(texts, rescan_all=True)


def test_an_isolated_japanese_phone_keeps_the_fake_of_the_first_pass():
    # ja_JP numbers have no fictional range, so a further pass could not tell our fake from a real
    # one and would fake it again; with nothing glued to it, no further pass reads the row.
    from masking import schema as S
    from masking import transforms as T
    from masking.keys import MaskingKey

    text = ["call 090-1234-5678 today"]
    ctx = T.ColumnContext(MaskingKey.demo(), "t", S.Column(name="note", sql_type="text", logical=S.STRING))
    first, again = detectors._scrub_chunk_bulk(pa.array(text), T.TextReplacer(ctx).replace_all, detectors._kinds(None))

    assert again.tolist() == [False]
    assert _scrub_passes(text) == first.to_pylist()
    assert "090-1234-5678" not in first.to_pylist()[0]


def test_a_phone_exposed_by_replacing_the_email_glued_to_it_is_scrubbed_by_a_further_pass():
    (out,) = _scrub_passes(["a@b.com+1 415 555 0100"])

    assert "a@b.com" not in out and "415 555 0100" not in out


# --- single matches cut in Arrow ---------------------------------------------------------------

_SPLIT_TOKENS = [
    "jane.doe@mail.example.org", "J.Doe+tag@Sub.Example.ORG", "x@y.co", "hmac-sha1@openssh.com", "a@b.c0m",
    "user@example.com", "USER@EXAMPLE.NET", "a.b@x.org.", "+1-415-555-0100", "+1 415 555 0100", "(415) 555-0100",
    "415-555-0100x12", "415.555.0100 ext. 7", "001-513-290-9960", "+1-555-123-4567", "+002026-12-03", "415--555-0100",
    "(415 555-0100", "+44 20 7946 0958", "+81 90-1234-5678", "call 8209679701", "192.168.10.20", "192.0.2.7",
    "010.001.002.003", "256.1.1.1", "1.2.3.4.5", "4111 1111 1111 1111", "GB82WEST12345698765432", "AKIAIOSFODNN7EXAMPLE",
    "2001:db8::1", "fe80::1:2", "v1.2.3.4", "ORD-2024-123456",
]
_SPLIT_GLUE = ["", " ", "  ", "\t", "\n", "\xa0", "\u3000", ",", ".", "-", "+", "(", ")", "@", "x", "7", "０", "² ", ": ", ". 5"]


def _scrub_both_ways(texts: list[str], kind: pa.DataType = pa.string()) -> tuple[tuple[list, int, list], tuple[list, int, list]]:
    """Scrub ``texts`` with and without the Arrow split; return (output, replaced, found) of each."""
    from masking import schema as S
    from masking import transforms as T
    from masking.keys import MaskingKey

    kinds = detectors._kinds(None)
    results = []
    for split in (False, True):
        ctx = T.ColumnContext(MaskingKey.demo(), "t", S.Column(name="note", sql_type="text", logical=S.STRING))
        ctx.found = []
        replacer = T.TextReplacer(ctx)
        by_kind = replacer.replace_kind if split else None
        out = detectors._until_clean(
            pa.array(texts, kind), lambda c: detectors._scrub_chunk_bulk(c, replacer.replace_all, kinds, by_kind)
        )
        found = sorted(v for f in ctx.found for v in ([f] if isinstance(f, str) else f.to_pylist()))
        results.append((out.to_pylist(), replacer.replaced, found))
    return results[0], results[1]


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()], ids=str)
def test_rows_cut_in_arrow_come_out_as_the_python_path_scrubs_them(kind):
    texts = [f"{left}{token}{right}" for token in _SPLIT_TOKENS for left in _SPLIT_GLUE for right in _SPLIT_GLUE]
    texts += [f"Note: {a}{glue}{b} end" for a in _SPLIT_TOKENS[::3] for b in _SPLIT_TOKENS[1::4] for glue in _SPLIT_GLUE[:6]]
    texts += [None, "", "nothing here", "Call back on +1-415-555-0100 after 5pm", "mail jane@x.org\nor jim@y.org"]

    in_python, in_arrow = _scrub_both_ways(texts, kind)

    assert in_arrow[0] == in_python[0]
    assert in_arrow[1] == in_python[1] > 1000
    assert in_arrow[2] == in_python[2]


def test_the_arrow_split_takes_the_common_rows_and_leaves_the_rest_to_python():
    # One email, one phone, one address per row: cut in Arrow. Two kinds, a second match, a
    # card, a phone after a phone word, or a protocol name that is no email: Python.
    texts = ["mail jane@x.org today", "call +1-415-555-0100", "from 10.0.0.7", "jane@x.org or +1-415-555-0100",
             "jane@x.org and jim@y.org", "card 4111 1111 1111 1111", "call 8209679701", "hmac-sha1@openssh.com"]

    singles, others = detectors.find_all_arrow(pa.chunked_array([texts[:3], texts[3:]]))

    assert {s.kind: (s.rows.tolist(), s.values.to_pylist()) for s in singles} == {
        "email": ([0], ["jane@x.org"]), "phone": ([1], ["+1-415-555-0100"]), "ipv4": ([2], ["10.0.0.7"]),
    }
    assert [row for row, _, _ in others] == [3, 4, 5, 6]


def test_find_all_arrow_holds_the_matches_find_all_finds():
    texts = [f"{left}{token}{right}" for token in _SPLIT_TOKENS for left in _SPLIT_GLUE[::2] for right in _SPLIT_GLUE[1::2]]
    texts += [None, "", "a@b.org, c@d.org"]

    singles, others = detectors.find_all_arrow(pa.array(texts))
    split = {(int(r), s.kind, v) for s in singles for r, v in zip(s.rows, s.values.to_pylist())}
    rest = {(r, m.kind, t[m.start:m.end]) for r, t, ms in others for m in ms}

    expected = {(r, m.kind, t[m.start:m.end]) for r, t, ms in detectors.find_all(pa.array(texts)) for m in ms}
    assert split | rest == expected
    assert len(split) > 500 and not {r for r, _, _ in split} & {r for r, _, _ in rest}


@pytest.mark.parametrize("kind", ["email", "phone", "ipv4"])
def test_a_split_pattern_finds_the_first_match_python_finds(kind):
    import itertools

    tokens = [t for t in _SPLIT_TOKENS if detectors._python_regex(kind).search(t)]
    texts = ["".join(p) for p in itertools.product(_SPLIT_GLUE[:12], tokens, _SPLIT_GLUE[:12])]
    parts = pc.extract_regex(pa.array(texts), detectors._split_pattern(kind)).to_pylist()

    for text, cut in zip(texts, parts):
        first = detectors._python_regex(kind).search(text)
        if first is None:
            assert cut is None, text
        else:
            assert cut is not None, text
            assert (cut["split_pre"], cut["split_match"]) == (text[:first.start()], first.group()), text


@pytest.mark.parametrize("kind", ["email", "phone"])
def test_arrow_confirmations_agree_with_python(kind):
    values = [t for t in _SPLIT_TOKENS for t in (t, t.upper(), t + "x99", "(" + t + ")")]
    confirm = {"email": detectors._email_ok, "phone": detectors._phone_ok}[kind]
    vectorised = {"email": detectors._emails_ok, "phone": detectors._phones_ok}[kind]

    assert vectorised(pa.array(values)).tolist() == [confirm(v) for v in values]


def test_own_fake_mask_agrees_with_is_own_fake():
    from masking import fakes

    values = ["a@example.com", "A@EXAMPLE.ORG", "a@example.com.evil", "a@b@example.net", "example.com", "+1-555-123-4567",
              "+1-5551234567", "192.0.2.1", "198.51.100.200", "203.0.113.9", "2001:db8::1", "10.0.0.1", ""]
    for kind in ("email", "phone", "ipv4", "ipv6"):
        assert fakes.own_fake_mask(kind, pa.array(values)).tolist() == [fakes.is_own_fake(kind, v) for v in values], kind


@pytest.mark.corpus
@pytest.mark.parametrize("log", ["logs/fail2ban/postfix", "logs/fail2ban/sshd", "logs/fail2ban/nginx-http-auth"])
def test_corpus_log_lines_scrub_the_same_with_and_without_the_arrow_split(corpus, log):
    lines = read(corpus, log).splitlines()
    lines += [line.split(": ", 1)[-1] for line in lines]  # also without the syslog prefix

    in_python, in_arrow = _scrub_both_ways(lines)

    assert in_arrow == in_python
    assert in_python[1] > 0


# --- kind passes narrowed by the characters a row holds -------------------------------------------

from masking import detectors as D  # noqa: E402  (module internals under test below)


def test_every_detector_kind_declares_what_its_pattern_needs():
    assert set(D._NEEDS) == set(D.DETECTORS)


@pytest.mark.parametrize("kind", list(D.DETECTORS))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_every_string_a_kind_matches_holds_what_the_kind_needs(kind, data):
    pattern = D.DETECTORS[kind].pattern
    # Whitespace as RE2's \s knows it; any other character, non-ASCII included.
    alphabet = st.characters(exclude_categories=("Zs", "Zl", "Zp", "Cc", "Cs"), include_characters="\t\n\f\r ")
    text = data.draw(st.from_regex(re.compile(pattern), fullmatch=False, alphabet=alphabet))
    values = pa.array([text])
    # Python's regex generated it; count it only where RE2, the engine the passes use, agrees.
    assume(pc.match_substring_regex(values, pattern)[0].as_py())

    assert D._NEEDS[kind](D._text_features(values))[0]


def _texts_with_every_kind() -> pa.Array:
    samples = [
        "mail bob.smith@example.org today", "call 415-555-0100 or +44 20 7946 0958", "card 4111 1111 1111 1111",
        "IBAN GB82WEST12345698765432", "host 10.0.0.1 and 2001:db8::1", "token=ghp_" + "a1" * 20,
        "Authorization: Bearer abc123def456ghi789jkl", "aws_secret_access_key = " + "Ab1/" * 10,
        "AKIAIOSFODNN7EXAMPLE", "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc", "〒100-0001 東京都", "電話 03-1234-5678",
        "postgres://user:s3cret@db.internal/app", "plain words only", "", "ＫEY ＝ ｘ", "digits 1234567",
    ]
    return pa.array(samples * 3, pa.string())


@pytest.mark.parametrize("kind", list(D.DETECTORS))
def test_narrowed_kind_pass_flags_exactly_the_rows_a_full_pass_flags(kind):
    values = _texts_with_every_kind()

    narrowed = D._kind_flags(values, kind, D._text_features(values))

    assert narrowed.tolist() == D._flags(pc.match_substring_regex(values, D.DETECTORS[kind].pattern)).tolist()


@pytest.mark.corpus
def test_narrowed_kind_passes_agree_with_full_passes_on_the_corpus_logs(corpus):
    lines = [line for name in ("logs/fail2ban/sshd", "logs/fail2ban/postfix", "logs/fail2ban/nginx-http-auth",
                               "config/redis/redis.conf", "cloud/aws/ec2.DescribeInstances_1.json")
             for line in (corpus / name).read_text(encoding="utf-8").splitlines()]
    values = pa.array(lines, pa.large_string()).slice(1)
    features = D._text_features(values)

    for kind, detector in D.DETECTORS.items():
        full = D._flags(pc.match_substring_regex(values, detector.pattern))
        assert D._kind_flags(values, kind, features).tolist() == full.tolist(), kind


@pytest.mark.parametrize("kind", ["email", "ipv4"])
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_value_that_is_one_whole_match_splits_as_the_split_pattern_cuts_it(kind, data):
    whole = data.draw(st.from_regex(re.compile(D._CORES[kind]), fullmatch=True))
    around = data.draw(st.sampled_from(["", " ", "x ", "mail: "]))
    values = pa.array([whole, around + whole, whole + around.strip()], pa.string())

    valid, pre, value, post = D._split_parts(values, kind)

    parts = pc.extract_regex(values, D._split_pattern(kind))
    expected_valid = D._flags(parts.is_valid())
    assert valid.tolist() == expected_valid.tolist()
    for got, name in ((pre, "pre"), (value, "match"), (post, "post")):
        want = parts.field(f"split_{name}").to_pylist()
        assert [g for g, ok in zip(got.to_pylist(), expected_valid) if ok] == [w for w, ok in zip(want, expected_valid) if ok]


def test_rows_matching_a_digit_pattern_equal_a_full_pass_with_nulls_slices_and_chunks():
    texts = ["id 1234567", "12345 67", None, "x" * 40 + "7654321", "１２３４５６７", "", "tel 555 0100 999", "8" * 7] * 5
    values = pa.chunked_array([texts[:13], texts[13:]])
    full = D._flags(pc.match_substring_regex(values.combine_chunks(), "[0-9]{7}"))

    assert D.rows_matching(values, "[0-9]{7}", min_digits=7).tolist() == full.tolist()
    assert D.rows_matching(values.combine_chunks().slice(3), "[0-9]{7}", min_digits=7).tolist() == full[3:].tolist()
    assert full.sum() == 15
