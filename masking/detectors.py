"""Find personal data, payment data and secrets inside free text.

Three callers share these detectors: the free-text scrubbing transform, the ``scan`` command
(which classifies columns from sample values) and the validation gate (which refuses to publish a
text column that still holds a match). They must agree, so there is one definition per kind.

Each :class:`Detector` carries an RE2 ``pattern``, and it is a *prefilter*: it runs inside
``pyarrow.compute`` over a whole column, consumes one boundary character on each side instead of
looking at it (RE2 has no lookaround), and may select more rows than hold a real match. Only
candidate rows reach Python, where :func:`find` runs the same core expression with lookaround
guards, keeps only the ``value`` group where there is one, and calls ``confirm`` (Luhn and issuer
prefix, mod-97, address parsing, entropy). Callers should therefore use :func:`count_rows`,
:func:`row_mask` or :func:`find`, never the raw pattern, to decide that something is present.

Matches are reported as kind and offsets, never as text, so they are safe to log and count.

``aws_secret_key`` is kept, but only where a 40-character value is assigned to a name such as
``aws_secret_access_key`` or ``SecretAccessKey``: a bare 40-character base64 run is as likely a
hash or an id, and flagging those would make the validation gate useless.

Known limitations:
    Phone numbers are found only when written with a ``+`` country code or with separators
    (``555-123-4567``, ``03-1234-5678``); a bare run of digits is never called a phone number, except
    for 11-digit Japanese mobile numbers (``09012345678``), because ids and amounts look the same.
    Four-part version strings written without a prefix (``Chrome/120.0.0.0``) are reported as IPv4.
    Email-like names under :data:`EMAIL_LIKE_PROTOCOL_NAMES` domains are ignored, including a real
    mailbox at one of those domains. IBANs are recognised only in upper case and without dashes, for
    the countries in the length table. PuTTY key files and IPv6 zone ids (``%eth0``) are not handled.
    Config-file secrets (``password = x`` in an ini file) are out of scope here. A column where most
    rows hold a match costs Python time per row (about 6 s per million such rows).
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from masking.errors import TransformError
from masking.native import extension, value_buffers

_textscan = extension("_masking_textscan", "masking/_textscan.c")

__all__ = [
    "DETECTORS",
    "EMAIL_LIKE_PROTOCOL_NAMES",
    "Detector",
    "Match",
    "count_rows",
    "find",
    "iban_ok",
    "luhn_ok",
    "row_mask",
    "scrub_array",
    "scrub_text",
]


@dataclass(frozen=True)
class Detector:
    """One kind of sensitive token: an RE2 prefilter pattern and an optional confirmation."""

    name: str
    category: str
    pattern: str
    confirm: Callable[[str], bool] | None = None
    description: str = ""


@dataclass(frozen=True)
class Match:
    """Where a confirmed token sits in a string; holds offsets only, never the text."""

    kind: str
    start: int
    end: int


# SSH and similar protocols name algorithms like mailboxes (``hmac-ripemd160@openssh.com``,
# ``curve25519-sha256@libssh.org``, RFC 4251 section 6). Such names are not personal data, and the
# corpus ground truth says a checker must not count them as leaks, so the email detector skips them.
EMAIL_LIKE_PROTOCOL_NAMES = frozenset({"openssh.com", "libssh.org", "lysator.liu.se"})

# Characters that may not touch a token on either side, per family (applied in Python only).
_ALNUM = "0-9A-Za-z"
_FW_DIGIT = "[0-9０-９]"
_JP_SEP = "[-－‐− ]"

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])"  # zero-padded octets (192.030.0.6) count
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_HEX = r"[0-9A-Fa-f]{1,4}"
_IPV6 = (
    rf"(?:{_HEX}:){{7}}{_HEX}"
    rf"|(?:{_HEX}:){{6}}{_IPV4}"
    rf"|(?:{_HEX}(?::{_HEX}){{0,6}})?::(?:(?:{_HEX}:){{0,6}}(?:{_IPV4}|{_HEX}))?"
)
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z][A-Za-z0-9]+"
# An optional extension ("x3016", " ext. 12") belongs to the number: without it the boundary
# rule would reject "555-123-4567x89" altogether.
_PHONE_EXT = r"(?:(?: ?x| ?ext\.? ?)[0-9]{1,6})?"
_PHONE = (
    r"\+[1-9](?:(?:[ .-]|\) ?| ?\()?[0-9]){6,14}" + _PHONE_EXT
    + r"|(?:(?:1|001)[ .-]?)?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .-])[0-9]{3}[ .-][0-9]{4}" + _PHONE_EXT
    # A bare run of 10-11 digits is a phone number only right after a word that says so
    # ("call 8209679701", "Contact: 8209679701"); elsewhere it is an id or an amount.
    + r"|(?i:call|phone|tel|mobile|cell|contact|reach me|fax|sms)[ :.,#-]{1,4}(?P<value>[0-9]{10,11})"
)
_PHONE_JP = (
    rf"\+81{_JP_SEP}?(?:\(0\))?{_JP_SEP}?[1-9][0-9]{{0,3}}{_JP_SEP}?[0-9]{{1,4}}{_JP_SEP}?[0-9]{{3,4}}"
    rf"|\(?[0０][1-9１-９]{_FW_DIGIT}{{0,3}}(?:\)?{_JP_SEP}?|\(){_FW_DIGIT}{{1,4}}(?:\)|{_JP_SEP})?"
    rf"{_FW_DIGIT}{{3,4}}"
)
_CARD = r"[0-9](?:[ -]?[0-9]){12,18}"
_IBAN = r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?"
_JWT = r"eyJ[A-Za-z0-9_-]{8,}\.ey[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
_AWS_ACCESS_KEY = r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}"
_AWS_SECRET_KEY = (
    r"(?i:(?:aws|secret)[A-Za-z0-9_ .-]{0,20}key)[A-Za-z0-9_]{0,10}[\"']?\s*(?::|=|=>)\s*[\"']?"
    r"(?P<value>[A-Za-z0-9/+]{40})"
)
_PRIVATE_KEY = (
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:[^-]|-[^-])*"
    r"(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----)?"
)
_BEARER = r"(?i:bearer)\s+(?P<value>[A-Za-z0-9._~+/-]{16,}=*)"
_PASSWORD_IN_URL = r"[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@]+:(?P<value>[^\s/?#@]+)@[^\s/?#@]+"
_TOKEN_PREFIXES = (
    r"(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}|gh[pousr]_[A-Za-z0-9_]{36,}|github_pat_[A-Za-z0-9_]{40,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}|gl(?:pat|dt|ft|rt)-[A-Za-z0-9_-]{20,50}"
    r"|SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}|npm_[A-Za-z0-9]{36}|pypi-AgE[A-Za-z0-9_-]{50,}"
    r"|AIza[0-9A-Za-z_-]{35}|sk-(?:proj-)?[A-Za-z0-9_-]{32,}"
)
_KEY_ASSIGNMENT = (
    r"(?i:api[_-]?key|api[_-]?secret|access[_-]?token|auth[_-]?token|client[_-]?secret|secret[_-]?key"
    r"|private[_-]?token|token|secret)[\"']?\s*[:=]\s*[\"']?(?P<value>[A-Za-z0-9_+/=.~-]{16,})"
)
_GENERIC_API_KEY = rf"{_TOKEN_PREFIXES}|{_KEY_ASSIGNMENT}"
_POSTAL_JP = (
    rf"(?:〒[ 　]?|(?:郵便番号|住所)[^0-9０-９\n]{{0,8}})(?P<value>{_FW_DIGIT}{{3}}[-－‐−ー]?{_FW_DIGIT}{{4}})"
)

# Python-side guards: (not preceded by, not followed by). RE2 cannot express them, so the
# prefilter over-selects and these trim the real matches.
_GUARDS: dict[str, tuple[str, str]] = {
    "private_key": ("", ""),
    "jwt": (r"(?<![A-Za-z0-9_-])", r"(?![A-Za-z0-9_-])"),
    "aws_access_key": (rf"(?<![{_ALNUM}])", rf"(?![{_ALNUM}])"),
    "aws_secret_key": (rf"(?<![{_ALNUM}])", r"(?![A-Za-z0-9/+=])"),
    "password_in_url": (rf"(?<![{_ALNUM}+.-])", ""),
    "card": (r"(?<![0-9A-Za-z.,])", r"(?![0-9A-Za-z])"),  # prefilter only; _card_candidates cuts windows
    "iban": (rf"(?<![{_ALNUM}])", rf"(?![{_ALNUM}])"),
    "email": (r"(?<![A-Za-z0-9._%+-])", r"(?![A-Za-z0-9-]|\.[A-Za-z0-9])"),
    "ipv6": (r"(?<![0-9A-Za-z:.])", r"(?![0-9A-Za-z:]|\.[0-9])"),
    "ipv4": (r"(?<![0-9A-Za-z.])", r"(?![0-9A-Za-z]|\.[0-9])"),
    "phone_jp": (r"(?<![0-9A-Za-z０-９+._/-])", r"(?![0-9A-Za-z０-９]|[.\-－][0-9０-９])"),
    "phone": (r"(?<![0-9A-Za-z+._/-])", r"(?![0-9A-Za-z]|[.-][0-9])"),
    "postal_code_jp": ("", r"(?![0-9０-９]|[-－‐−ー][0-9０-９])"),
    "bearer_token": (rf"(?<![{_ALNUM}])", r"(?![A-Za-z0-9._~+/=-])"),
    "generic_api_key": (r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9_+/=.~-])"),
}

# A run of digit groups separated by single spaces or dashes; card windows are cut from it.
_DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z.,-])[0-9]+(?:[ -][0-9]+)*(?![0-9A-Za-z]|[.,-][0-9])")
_DIGITS = re.compile(r"[0-9]+")
_PLACEHOLDER = re.compile(r"\*+|x+|X+|<[^>]*>|\$\{[^}]*\}|\{[^}]*\}|%\([^)]*\)s|\$[A-Za-z_][A-Za-z0-9_]*")

# Account-number lengths by country (SWIFT IBAN registry). A country missing here is not an IBAN.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def luhn_ok(digits: str) -> bool:
    """Return whether ``digits`` (separators allowed) pass the Luhn check."""
    numbers = [int(c) for c in digits if c in "0123456789"]
    if len(numbers) < 2:
        return False
    total = 0
    for position, digit in enumerate(reversed(numbers)):
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    """Return whether ``text`` is an IBAN: known country, its length, and ISO 7064 mod-97 = 1."""
    compact = text.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]+", compact):
        return False
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _card_ok(text: str) -> bool:
    """Return whether ``text`` is a plausible card number: issuer prefix and length, then Luhn.

    The issuer check keeps order numbers and compact timestamps out: a random 16-digit number
    passes Luhn one time in ten, but rarely also starts like a real issuer with the right length.
    """
    digits = "".join(c for c in text if c in "0123456789")
    return _issuer_length_ok(digits) and luhn_ok(digits)


def _issuer_length_ok(digits: str) -> bool:
    size, head = len(digits), digits[:4]
    if head[0] == "4":
        return size in (13, 16, 19)
    if "51" <= head[:2] <= "55" or "2221" <= head <= "2720":
        return size == 16
    if head[:2] in ("34", "37"):
        return size == 15
    if head[0] == "6" or head[:2] in ("35", "50", "56", "57", "58"):
        return 13 <= size <= 19
    return head[:2] in ("30", "36", "38", "39") and 14 <= size <= 19


def _email_ok(text: str) -> bool:
    domain = text.rpartition("@")[2].lower()
    return not any(domain == d or domain.endswith("." + d) for d in EMAIL_LIKE_PROTOCOL_NAMES)


def _ipv6_ok(text: str) -> bool:
    """Accept a parseable, routable-looking address with two or more groups (not ``::`` or ``::1``)."""
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return False
    groups = [g for g in text.split(":") if g]
    return not (address.is_unspecified or address.is_loopback) and len(groups) >= 2


_PHONE_EXTENSION = re.compile(r"(?: ?x| ?ext\.? ?)[0-9]{1,6}$")
_DOUBLE_SEPARATOR = re.compile(r"[ ().-]{2}")
_EXPANDED_YEAR = re.compile(r"\+[0-9]{4,6}-[0-9]{2}-[0-9]{2}")  # ISO 8601 expanded year: +002026-12-03
_NOT_DIGITS = re.compile(r"[^0-9]+")


def _phone_ok(text: str) -> bool:
    """Check digit count (8-15 with ``+``, else 10-11), balanced parentheses and single separators."""
    if "x" in text:
        text = _PHONE_EXTENSION.sub("", text)
    digits = len(_NOT_DIGITS.sub("", text))
    if text.startswith("001"):
        digits -= 2
    squeezed = text.replace(") ", ")").replace(" (", "(")
    if text.count("(") != text.count(")") or _DOUBLE_SEPARATOR.search(squeezed):
        return False
    if _EXPANDED_YEAR.fullmatch(text):
        return False
    return 8 <= digits <= 15 if text.startswith("+") else digits in (10, 11)


def _phone_jp_ok(text: str) -> bool:
    """Check the digit count: 10 or 11 nationally, 9 or 10 after ``+81`` (the leading 0 dropped)."""
    digits = "".join(str(int(c)) for c in text if c.isdecimal())
    if text.count("(") != text.count(")"):
        return False
    if text.startswith("+81"):
        national = digits[2:].removeprefix("0")
        return len(national) in (9, 10)
    if len(digits) == len(text):  # no separators: only mobile and IP-phone numbers are distinctive
        return len(digits) == 11 and digits[:3] in ("050", "070", "080", "090")
    return len(digits) in (10, 11)


def _entropy(value: str) -> float:
    """Return Shannon entropy per character over the base64 alphabet, as detect-secrets computes it.

    detect-secrets' high-entropy plugin is the reference everyone tunes secret scanners against,
    so its measure (not a private variant) decides whether a value looks random.
    """
    return _base64_entropy_plugin().calculate_shannon_entropy(value)


@functools.lru_cache(maxsize=1)
def _base64_entropy_plugin():
    # Imported lazily: detect-secrets pulls in requests, which the masking path does not need.
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString

    return Base64HighEntropyString()


def _jwt_ok(text: str) -> bool:
    """Confirm with detect-secrets' JWT check: header and payload must decode to JSON."""
    from detect_secrets.plugins.jwt import JwtTokenDetector

    return JwtTokenDetector.is_formally_valid(text)


def _aws_secret_ok(text: str) -> bool:
    return _entropy(text) >= 4.0


def _bearer_ok(text: str) -> bool:
    return any(c.isdigit() for c in text) and _entropy(text) >= 3.0


def _password_ok(text: str) -> bool:
    return _PLACEHOLDER.fullmatch(text) is None


_PREFIXED_TOKEN = re.compile(_TOKEN_PREFIXES)


def _api_key_ok(text: str) -> bool:
    """Confirm a token with a vendor prefix by its body, a keyword assignment by its own randomness.

    Known limitation: a long random identifier assigned to ``token``/``secret`` (a page cursor,
    a CSRF nonce) counts too; the name alone cannot tell them apart.
    """
    if _PREFIXED_TOKEN.fullmatch(text):
        body = re.split(r"[_-]", text, maxsplit=2)[-1]
        return _entropy(body) >= 3.0
    return any(c.isdigit() for c in text) and _entropy(text) >= 3.5


# Insertion order is specificity: on overlapping matches the earlier kind wins (see find()).
# detect-secrets is used through _entropy() and _jwt_ok() only. Its scan_line() entry point is
# not a fit: it changes process-wide settings, reports secret values without offsets (so nothing
# can be replaced in place), cannot run as a vectorized prefilter, and its keyword plugin flags
# any quoted value after words like "password", which is far too noisy for database text.
_SPECS: tuple[tuple[str, str, str, Callable[[str], bool] | None, str], ...] = (
    ("private_key", "secret", _PRIVATE_KEY, None, "PEM/OpenSSH private key block, header to footer"),
    ("jwt", "secret", _JWT, _jwt_ok, "JSON Web Token whose header and payload decode to JSON"),
    ("aws_access_key", "secret", _AWS_ACCESS_KEY, None, "AWS access key id (AKIA/ASIA...)"),
    (
        "aws_secret_key", "secret", _AWS_SECRET_KEY, _aws_secret_ok,
        "40-character AWS secret key, only when assigned to an aws/secret ... key name",
    ),
    (
        "password_in_url", "secret", _PASSWORD_IN_URL, _password_ok,
        "the password part of scheme://user:password@host (placeholders ignored)",
    ),
    ("card", "payment", _CARD, _card_ok, "13-19 digit card number, issuer prefix and Luhn checked"),
    ("iban", "payment", _IBAN, iban_ok, "IBAN with country length and mod-97 check"),
    ("email", "personal", _EMAIL, _email_ok, "email address (protocol names excluded)"),
    ("ipv6", "personal", _IPV6, _ipv6_ok, "IPv6 address, not :: or ::1"),
    ("ipv4", "personal", _IPV4, None, "dotted-quad IPv4 address, octets up to 255 (zero padding allowed)"),
    (
        "phone_jp", "personal", _PHONE_JP, _phone_jp_ok,
        "Japanese phone number: 03-1234-5678, 090-1234-5678, +81 90-1234-5678",
    ),
    (
        "phone", "personal", _PHONE, _phone_ok,
        "international number with +country code, or a separated US/NANP number",
    ),
    ("postal_code_jp", "personal", _POSTAL_JP, None, "Japanese postal code after 〒, or after 郵便番号/住所"),
    ("bearer_token", "secret", _BEARER, _bearer_ok, "token after 'Bearer'"),
    (
        "generic_api_key", "secret", _GENERIC_API_KEY, _api_key_ok,
        "vendor tokens (sk_live_, ghp_, xoxb-, glpat-, AIza ...) and random values assigned to "
        "api_key/token/secret names",
    ),
)
_CORES = {name: core for name, _, core, _, _ in _SPECS}
_GUARD_CLASS = re.compile(r"\(\?<?!(\[[^\]]*\])")


def _re2_pattern(name: str, core: str) -> str:
    """Wrap ``core`` in boundaries RE2 can run: consume one guard character instead of looking at it.

    The result still matches every row :func:`find` would confirm, but no longer selects rows where
    the token only appears glued to other digits or letters (``ORD-2024-123456``), which would
    otherwise all be handed to Python.
    """
    before, after = (_GUARD_CLASS.match(g) for g in _GUARDS[name])
    left = f"(?:^|[^{before.group(1)[1:]})" if before else ""
    right = f"(?:$|[^{after.group(1)[1:]})" if after else ""
    return f"{left}(?:{core}){right}"


DETECTORS: dict[str, Detector] = {
    name: Detector(name, category, _re2_pattern(name, core), confirm, description)
    for name, category, core, confirm, description in _SPECS
}
_RANK = {name: rank for rank, name in enumerate(DETECTORS)}

# --- what a pattern cannot match without ---------------------------------------------------------
#
# Each kind's pattern is one Arrow pass over the candidate rows, about 150 ns a row whatever the
# pattern. masking/_textscan.c records in one pass which characters each row holds, and a kind's
# pass reads only the rows holding what every string its pattern matches holds: an email needs
# '@', a card 13 digits, a Japanese postal code the 〒 sign or a kanji word. The flags are the
# same as a pass over every row; tests/test_detectors.py checks each entry against strings the
# pattern matches. Where a letter comes from a case-insensitive pattern, a non-ASCII byte also
# qualifies: RE2 folds some letters with non-ASCII ones (k with the Kelvin sign).

_DIGIT_COUNT = 0xFF
(
    _AT, _COLON, _EQUALS, _NON_ASCII, _JWT_HEAD, _PEM_HEAD, _BEARER, _UPPER, _UNDERSCORE, _DASH, _AWS_HEAD,
    _IBAN_HEAD, _VENDOR_HEAD,
) = (1 << b for b in range(8, 21))


_CHAR_BITS = {"@": _AT, ":": _COLON, "=": _EQUALS, "_": _UNDERSCORE, "-": _DASH}


def _with_digits(count: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda features: (features & _DIGIT_COUNT) >= count


def _with_any(bits: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda features: (features & bits) != 0


_NEEDS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "private_key": _with_any(_PEM_HEAD),
    "jwt": _with_any(_JWT_HEAD),
    "aws_access_key": _with_any(_AWS_HEAD),
    "aws_secret_key": _with_any(_COLON | _EQUALS),
    "password_in_url": lambda f: ((f & _COLON) != 0) & ((f & _AT) != 0),
    "card": _with_digits(13),
    "iban": _with_any(_IBAN_HEAD),
    "email": _with_any(_AT),
    "ipv6": _with_any(_COLON),
    "ipv4": _with_digits(4),
    # Full-width digits are non-ASCII.
    "phone_jp": lambda f: ((f & _DIGIT_COUNT) >= 6) | ((f & _NON_ASCII) != 0),
    "phone": _with_digits(7),
    "postal_code_jp": _with_any(_NON_ASCII),
    "bearer_token": _with_any(_BEARER | _NON_ASCII),
    "generic_api_key": _with_any(_COLON | _EQUALS | _UNDERSCORE | _DASH | _VENDOR_HEAD),
}


def _text_features(values: pa.Array) -> np.ndarray:
    """One uint32 of character features per value of a string array (see _textscan.c).

    A null slot's features are those of whatever bytes its offsets span (usually none); callers
    only narrow RE2 passes with them, and a null never matches there.
    """
    out = np.zeros(len(values), np.uint32)
    if len(values):
        positions, data, wide = value_buffers(values)
        _textscan.text_features(positions, data, out, wide)
    return out


def rows_matching(
    values: pa.Array | pa.ChunkedArray, pattern: str, *, min_digits: int = 0, or_holding: str = ""
) -> np.ndarray:
    """Where RE2 ``pattern`` matches ``values``, reading only rows that can hold a match.

    The caller states what every text the pattern matches holds: at least ``min_digits`` ASCII
    digits, or else one of the characters in ``or_holding`` (any of ``@ : = _ -``). Other rows
    are not searched (see :data:`_NEEDS`); nulls never match.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    features = _text_features(values)
    possible = (features & _DIGIT_COUNT) >= min_digits
    if or_holding:
        possible |= (features & functools.reduce(int.__or__, (_CHAR_BITS[c] for c in or_holding))) != 0
    return _search(values, pattern, possible)


def _kind_flags(values: pa.Array, kind: str, features: np.ndarray) -> np.ndarray:
    """Where ``kind``'s pattern matches in ``values``, reading only rows that can hold a match."""
    need = _NEEDS.get(kind)
    possible = need(features) if need is not None else np.ones(len(values), dtype=bool)
    return _search(values, DETECTORS[kind].pattern, possible)


def _search(values: pa.Array, pattern: str, possible: np.ndarray) -> np.ndarray:
    """Where RE2 ``pattern`` matches ``values``, searching only the rows ``possible`` marks."""
    if possible.all():
        return _flags(pc.match_substring_regex(values, pattern))
    out = np.zeros(len(values), dtype=bool)
    rows = np.flatnonzero(possible)
    if rows.size:
        out[rows] = _flags(pc.match_substring_regex(values.take(pa.array(rows)), pattern))
    return out


def _kinds(kinds: Iterable[str] | None) -> tuple[str, ...]:
    if kinds is None:
        return tuple(DETECTORS)
    chosen = tuple(dict.fromkeys(kinds))
    unknown = [k for k in chosen if k not in DETECTORS]
    if unknown:
        raise TransformError(
            f"unknown detector kind(s) {sorted(unknown)}; expected some of {sorted(DETECTORS)}"
        )
    return chosen


# Kinds whose value identifies a person or an account wherever it appears (not secrets, which
# are removed outright): the validation gate looks for their originals across the snapshot.
PERSONAL_KINDS = ("email", "phone", "phone_jp", "card", "iban", "ipv4", "ipv6")


@functools.lru_cache(maxsize=None)
def _python_regex(kind: str) -> re.Pattern[str]:
    before, after = _GUARDS[kind]
    return re.compile(f"{before}(?:{_CORES[kind]}){after}")


def _candidates(text: str, kind: str) -> Iterator[tuple[int, int, int, int]]:
    """Yield (outer start, outer end, value start, value end) of confirmed matches of one kind."""
    if kind == "card":
        yield from _card_candidates(text)
        return
    confirm = DETECTORS[kind].confirm
    for found in _python_regex(kind).finditer(text):
        has_value = "value" in found.re.groupindex and found.start("value") >= 0
        start, end = found.span("value") if has_value else found.span()
        if confirm is None or confirm(text[start:end]):
            yield found.start(), found.end(), start, end


def _card_candidates(text: str) -> Iterator[tuple[int, int, int, int]]:
    """Cut card-number windows out of digit runs, longest first, so a trailing CVV does not hide one."""
    for run in _DIGIT_RUN.finditer(text):
        groups = [(g.start() + run.start(), g.end() + run.start()) for g in _DIGITS.finditer(run.group())]
        first = 0
        while first < len(groups):
            last = _longest_card_window(text, groups, first)
            if last is None:
                first += 1
                continue
            start, end = groups[first][0], groups[last - 1][1]
            yield start, end, start, end
            first = last


def _longest_card_window(text: str, groups: list[tuple[int, int]], first: int) -> int | None:
    for last in range(len(groups), first, -1):
        window = groups[first:last]
        sizes = [e - s for s, e in window]
        if not 13 <= sum(sizes) <= 19:
            continue
        if len(window) > 1 and (min(sizes[:-1]) < 4 or sizes[-1] < 3):
            continue
        if _card_ok(text[window[0][0]:window[-1][1]]):
            return last
    return None


def find(text: str, kinds: Iterable[str] | None = None) -> list[Match]:
    """Return the confirmed, non-overlapping matches in ``text``, in order of position.

    Where matches of different kinds overlap, the more specific kind wins (the order of
    :data:`DETECTORS`: secrets, then payment data, then email, addresses and phone numbers); among
    matches of one kind the longer wins. Overlap is judged on the whole match including context
    (``aws_secret_access_key = ...``), while the returned offsets cover only the sensitive value.
    """
    return _find(text, _kinds(kinds))


def _find(text: str, kinds: tuple[str, ...]) -> list[Match]:
    if not text:
        return []
    found = [
        (_RANK[k], outer_start - outer_end, outer_start, outer_end, Match(k, start, end))
        for k in kinds
        for outer_start, outer_end, start, end in _candidates(text, k)
    ]
    if len(found) == 1:
        return [found[0][4]]
    found.sort(key=lambda item: item[:3])
    taken: list[tuple[int, int]] = []
    kept: list[Match] = []
    for _, _, start, end, match in found:
        slot = bisect.bisect_left(taken, (start, end))
        if slot > 0 and taken[slot - 1][1] > start or slot < len(taken) and taken[slot][0] < end:
            continue
        taken.insert(slot, (start, end))
        kept.append(match)
    return sorted(kept, key=lambda m: m.start)


def scrub_text(text: str, replace: Callable[[Match, str], str], kinds: Iterable[str] | None = None) -> str:
    """Return ``text`` with every confirmed match replaced by ``replace(match, matched_text)``."""
    matches = find(text, kinds)
    if not matches:
        return text
    substitutes = (replace(m, text[m.start:m.end]) for m in matches)
    return _apply(text, matches, substitutes.__next__)


@functools.lru_cache(maxsize=64)
def _combined_pattern(kinds: tuple[str, ...]) -> str:
    """Join the prefilters of ``kinds`` into one RE2 alternation, so a column is read once."""
    return "|".join(f"(?:{DETECTORS[k].pattern.replace('(?P<value>', '(?:')})" for k in kinds)


def _chunks(array: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        raise TransformError(
            f"detectors read string or large_string columns, got {array.type}; cast the column first"
        )
    return chunks


def _prefiltered(chunk: pa.Array, kinds: tuple[str, ...]) -> tuple[np.ndarray, pa.Array, dict[str, np.ndarray]] | None:
    """The rows of ``chunk`` the RE2 prefilter selects, those rows, and per kind which of them it selects.

    None when no row is selected. One pass over the chunk, then one per kind over the candidates.
    """
    hit = pc.match_substring_regex(chunk, _combined_pattern(kinds)).fill_null(False)
    rows = np.flatnonzero(hit.to_numpy(zero_copy_only=False))
    if rows.size == 0:
        return None
    subset = chunk.take(pa.array(rows))
    features = _text_features(subset)
    per_kind = {k: _kind_flags(subset, k, features) for k in kinds}
    return rows, subset, per_kind


def _confirmed_rows(chunk: pa.Array, kinds: tuple[str, ...]) -> Iterator[tuple[int, str, list[Match]]]:
    """Yield (row, text, matches) for rows of ``chunk`` with at least one confirmed match.

    One RE2 pass selects candidate rows; a second pass per kind over the candidates only tells
    :func:`find` which kinds to try, so Python work scales with candidates, not with rows.
    """
    candidates = _prefiltered(chunk, kinds)
    if candidates is not None:
        yield from _confirmed_candidates(*candidates, kinds)


def _matches_of_chunk(
    chunk: pa.Array, kinds: tuple[str, ...], *, split: bool
) -> tuple[list[_Split], list[tuple[int, str, list[Match]]]]:
    """The confirmed matches of a chunk: rows cut in Arrow (with ``split``), then the rest from Python."""
    candidates = _prefiltered(chunk, kinds)
    if candidates is None:
        return [], []
    rows, subset, per_kind = candidates
    splits = _split_single_matches(subset, per_kind, kinds) if split else []
    in_python = np.ones(len(subset), dtype=bool)
    for cut in splits:
        in_python[cut.rows] = False
        cut.rows = rows[cut.rows]
    keep = np.flatnonzero(in_python)
    if keep.size < len(subset):
        rows, subset, per_kind = rows[keep], subset.take(pa.array(keep)), {k: v[keep] for k, v in per_kind.items()}
    return splits, list(_confirmed_candidates(rows, subset, per_kind, kinds))


def _confirmed_candidates(
    rows: np.ndarray, subset: pa.Array, per_kind: dict[str, np.ndarray], kinds: tuple[str, ...]
) -> Iterator[tuple[int, str, list[Match]]]:
    for position, text in enumerate(subset.to_pylist()):
        matches = _find(text, tuple(k for k in kinds if per_kind[k][position]))
        if matches:
            yield int(rows[position]), text, matches


def find_all(array: pa.Array | pa.ChunkedArray, kinds: Iterable[str] | None = None) -> Iterator[tuple[int, str, list[Match]]]:
    """Yield ``(row, text, matches)`` for every row of ``array`` holding a confirmed match.

    Rows are numbered across chunks. Like the other array functions, only candidate rows
    selected by the RE2 prefilter reach Python.
    """
    chosen = _kinds(kinds)
    offset = 0
    for chunk in _chunks(array):
        for row, text, matches in _confirmed_rows(chunk, chosen):
            yield offset + row, text, matches
        offset += len(chunk)


@dataclass(frozen=True)
class SingleMatches:
    """Rows of an array whose one confirmed match, of one kind, was found in Arrow."""

    kind: str
    rows: np.ndarray
    values: pa.Array  # the matched text, one per row


def find_all_arrow(
    array: pa.Array | pa.ChunkedArray, kinds: Iterable[str] | None = None
) -> tuple[list[SingleMatches], list[tuple[int, str, list[Match]]]]:
    """What :func:`find_all` yields, with rows whose only match is an email, phone or IPv4 address in Arrow.

    Returns ``(singles, others)``: the single matches by kind, and ``(row, text, matches)`` of
    every other row holding a match. Together they hold the same matches as :func:`find_all`.
    """
    chosen = _kinds(kinds)
    singles: list[SingleMatches] = []
    others: list[tuple[int, str, list[Match]]] = []
    offset = 0
    for chunk in _chunks(array):
        splits, found = _matches_of_chunk(chunk, chosen, split=True)
        singles += [SingleMatches(cut.kind, offset + cut.rows, cut.value) for cut in splits]
        others += [(offset + row, text, matches) for row, text, matches in found]
        offset += len(chunk)
    return singles, others


def count_rows(array: pa.Array | pa.ChunkedArray, kinds: Iterable[str] | None = None) -> dict[str, int]:
    """Return, per kind, how many rows hold at least one confirmed match (nulls never count)."""
    chosen = _kinds(kinds)
    counts = dict.fromkeys(chosen, 0)
    for chunk in _chunks(array):
        for _, _, matches in _confirmed_rows(chunk, chosen):
            for kind in {m.kind for m in matches}:
                counts[kind] += 1
    return counts


def row_mask(array: pa.Array | pa.ChunkedArray, kinds: Iterable[str] | None = None) -> np.ndarray:
    """Return a boolean array, True where a row holds any confirmed match of ``kinds``."""
    chosen = _kinds(kinds)
    masks = []
    for chunk in _chunks(array):
        mask = np.zeros(len(chunk), dtype=bool)
        for row, _, _ in _confirmed_rows(chunk, chosen):
            mask[row] = True
        masks.append(mask)
    return np.concatenate(masks) if masks else np.zeros(0, dtype=bool)


def scrub_array(
    array: pa.Array | pa.ChunkedArray,
    replace: Callable[[Match, str], str],
    kinds: Iterable[str] | None = None,
) -> pa.Array | pa.ChunkedArray:
    """Return ``array`` with every confirmed match replaced, as :func:`scrub_text` does per row.

    Rows without a match are not touched by Python; nulls stay null; the string type is kept. A
    ChunkedArray comes back as a ChunkedArray with the same chunk lengths.
    """
    chosen = _kinds(kinds)
    scrubbed = [_until_clean(chunk, lambda c: _scrub_chunk_bulk(c, _one_by_one(replace), chosen)) for chunk in _chunks(array)]
    if isinstance(array, pa.ChunkedArray):
        return pa.chunked_array(scrubbed, type=array.type)
    return scrubbed[0]


def scrub_array_bulk(
    array: pa.Array | pa.ChunkedArray,
    replace_all: Callable[[list[tuple[Match, str]]], list[str]],
    kinds: Iterable[str] | None = None,
    replace_kind: Callable[[str, pa.Array], pa.Array] | None = None,
) -> pa.Array | pa.ChunkedArray:
    """Like :func:`scrub_array`, but ask for every substitute of a chunk in one call.

    ``replace_all`` receives ``(match, matched_text)`` pairs and returns one substitute per
    pair, which lets a caller compute fakes for a whole batch at once instead of per match.
    ``replace_kind``, when given, receives a kind and an Arrow array of values of that kind and
    returns their substitutes as an Arrow array of the same length; it must agree with
    ``replace_all``. Rows that hold a single email, phone number or IPv4 address then never
    reach Python.
    """
    chosen = _kinds(kinds)
    scrubbed = [
        _until_clean(chunk, lambda c: _scrub_chunk_bulk(c, replace_all, chosen, replace_kind)) for chunk in _chunks(array)
    ]
    if isinstance(array, pa.ChunkedArray):
        return pa.chunked_array(scrubbed, type=array.type)
    return scrubbed[0]


def _until_clean(chunk: pa.Array, scrub: Callable[[pa.Array], tuple[pa.Array, np.ndarray]], passes: int = 3) -> pa.Array:
    """Scrub again while a pass changed something: a replacement can expose a neighbour.

    ("x@y.co+1 415 555 0100": the phone is guarded by the email until the email is replaced.)
    ``scrub`` returns the scrubbed rows and, per row, whether a further pass must read it
    (see :func:`_scrub_chunk_bulk`); only those rows are read again.
    """
    rows: np.ndarray | None = None  # positions in ``chunk`` of the rows to read; None is all
    for _ in range(passes):
        subset = chunk if rows is None else chunk.take(pa.array(rows))
        scrubbed, again = scrub(subset)
        if scrubbed is subset:
            break
        changed = pc.fill_null(pc.not_equal(scrubbed, subset), False).to_numpy(zero_copy_only=False)
        if not changed.any():
            break
        positions = np.flatnonzero(changed) if rows is None else rows[np.flatnonzero(changed)]
        mask = np.zeros(len(chunk), dtype=bool)
        mask[positions] = True
        chunk = pc.replace_with_mask(chunk, pa.array(mask), scrubbed.filter(pa.array(changed)))
        again &= changed
        if not again.any():
            break
        rows = np.flatnonzero(again) if rows is None else rows[np.flatnonzero(again)]
    return chunk


def _one_by_one(replace: Callable[[Match, str], str]) -> Callable[[list[tuple[Match, str]]], list[str]]:
    """Adapt a per-match ``replace`` to the bulk interface, calling it in text order."""
    return lambda pairs: [replace(match, text) for match, text in pairs]


def _scrub_chunk_bulk(
    chunk: pa.Array, replace_all, kinds: tuple[str, ...], replace_kind=None
) -> tuple[pa.Array, np.ndarray]:
    """Scrub one chunk; return it and, per row, whether a further pass must read the row again.

    A changed row is read again when a substitute is glued to its neighbours (see
    :func:`_isolated`), so that together they could form a new match, or when the row's text
    with every substitute blanked to a space still hits the RE2 prefilter: a space is no guard
    character, so a match that a replacement exposed, or that the replaced match had
    overlapped, still shows. Any other row holds only what was written into it, and a further
    pass would leave our own fakes alone.

    With ``replace_kind`` (kind, Arrow array of matched values -> Arrow array of substitutes),
    rows holding one match of a kind in ``_SPLIT_KINDS`` are cut, replaced and reassembled in
    Arrow (see :func:`_split_single_matches`); the others go through Python as before.
    """
    again = np.zeros(len(chunk), dtype=bool)
    splits, found = _matches_of_chunk(chunk, kinds, split=replace_kind is not None)
    changed_rows: list[np.ndarray] = []
    changed_texts: list[pa.Array] = []
    for split in splits:
        changed_rows.append(split.rows)
        nothing, space = pa.scalar("", split.pre.type), pa.scalar(" ", split.pre.type)
        changed_texts.append(pc.binary_join_element_wise(split.pre, replace_kind(split.kind, split.value), split.post, nothing))
        blanked = pc.binary_join_element_wise(split.pre, split.post, space)
        again[split.rows] = ~_isolated_arrow(split.pre, split.post) | _flags(
            pc.match_substring_regex(blanked, _combined_pattern(kinds))
        )
    if found:
        pairs = [(m, text[m.start:m.end]) for _, text, matches in found for m in matches]
        substitutes = iter(replace_all(pairs))
        replacements, blanked_texts, blanked_rows = [], [], []
        for row, text, matches in found:
            written = [next(substitutes) for _ in matches]
            replacements.append(_apply(text, matches, iter(written).__next__))
            if all(_isolated(text, m) for m in matches):
                blanked_texts.append(_apply(text, matches, lambda: " "))
                blanked_rows.append(row)
            else:
                again[row] = True
        if blanked_texts:
            hits = pc.match_substring_regex(pa.array(blanked_texts, pa.string()), _combined_pattern(kinds))
            again[np.array(blanked_rows, dtype=np.int64)] = hits.to_numpy(zero_copy_only=False)
        changed_rows.append(np.array([row for row, _, _ in found], dtype=np.int64))
        changed_texts.append(pa.array(replacements, pa.string()))
    if not changed_rows:
        return chunk, again
    at = np.concatenate(changed_rows)
    mask = np.zeros(len(chunk), dtype=bool)
    mask[at] = True
    texts = pa.concat_arrays([t.cast(pa.string()) for t in changed_texts])
    texts = texts.take(pa.array(np.argsort(at, kind="stable"))).cast(chunk.type)
    return pc.replace_with_mask(chunk, pa.array(mask), texts), again


# Whitespace on both readers' terms (Python's isspace and RE2's), and anything but a number
# beside it: stricter than _isolated, so a row it passes _isolated passes too.
_ISOLATED_LEFT = r"(?:^|[^\pN])[\t\n\x0b\f\r ]$"
_ISOLATED_RIGHT = r"^[\t\n\x0b\f\r ](?:$|[^\pN])"


def _isolated_arrow(pre: pa.Array, post: pa.Array) -> np.ndarray:
    """:func:`_isolated` for split rows, from the text before and after their match."""
    left = _flags(pc.equal(pre, "")) | _flags(pc.match_substring_regex(pre, _ISOLATED_LEFT))
    right = _flags(pc.equal(post, "")) | _flags(pc.match_substring_regex(post, _ISOLATED_RIGHT))
    return left & right


def _isolated(text: str, match: Match) -> bool:
    """Whether the text around a match cannot join its substitute into a new match.

    True when each side is the end of the text, or whitespace not followed by a digit (card and
    phone numbers chain digit groups across single spaces).
    """
    start, end = match.start, match.end
    left = start == 0 or (text[start - 1].isspace() and not (start > 1 and text[start - 2].isdigit()))
    right = end == len(text) or (text[end].isspace() and not (end + 1 < len(text) and text[end + 1].isdigit()))
    return left and right


def _apply(text: str, matches: list[Match], substitute: Callable[[], str]) -> str:
    """``text`` with each match's span replaced by the next ``substitute()``, in text order."""
    pieces, cursor = [], 0
    for match in matches:
        pieces += [text[cursor:match.start], substitute()]
        cursor = match.end
    return "".join(pieces) + text[cursor:]


# --- single matches cut out in Arrow ---------------------------------------------------------
#
# Most free-text rows that hold anything hold one email, one phone number or one address. For
# those, RE2 can find the match and its confirmation can run as Arrow compute functions, so
# the row never reaches Python. A row qualifies when exactly one kind's prefilter selects it,
# that kind is one of _SPLIT_KINDS, the first match RE2 cuts out is confirmed, and nothing
# after it hits the prefilter again; every other candidate row takes the Python path of
# :func:`find`. The split patterns turn the Python lookaround guards into anchored
# alternatives, which select the same first match under RE2's leftmost-first rules.

_LOOKBEHIND = re.compile(r"^\(\?<!\[(?P<chars>[^\]]+)\]\)$")
_LOOKAHEAD = re.compile(r"^\(\?!\[(?P<chars>[^\]]+)\](?:\|(?P<next>\\.|\[[^\]]+\])\[(?P<then>[^\]]+)\])?\)$")
_REST = "(?s:.*)"


def _class_body(chars: str) -> str:
    """A character class body that stays one when joined to another (dashes at the ends escaped)."""
    if chars.endswith("-") and not chars.endswith("\\-"):
        chars = chars[:-1] + "\\-"
    if chars.startswith("-"):
        chars = "\\" + chars
    return chars


def _guard_prefix(guard: str) -> str:
    """RE2 for what may stand before a match: nothing, or text ending in a character ``guard`` allows."""
    parsed = _LOOKBEHIND.match(guard)
    if parsed is None:
        raise AssertionError(f"unsupported lookbehind guard {guard!r}")
    return f"(?:|(?s:.*?)[^{_class_body(parsed['chars'])}])"


def _guard_suffix(guard: str) -> str:
    """RE2 for what may follow a match: nothing, or text that ``guard``'s lookahead would let pass."""
    parsed = _LOOKAHEAD.match(guard)
    if parsed is None:
        raise AssertionError(f"unsupported lookahead guard {guard!r}")
    first = _class_body(parsed["chars"])
    if parsed["next"] is None:
        return f"(?:|[^{first}]{_REST})"
    nxt = parsed["next"]
    nxt_body = nxt[1:-1] if nxt.startswith("[") else nxt
    return f"(?:|[^{_class_body(nxt_body)}{first}]{_REST}|{nxt}(?:|[^{_class_body(parsed['then'])}]{_REST}))"


def _split_pattern(kind: str) -> str:
    before, after = _GUARDS[kind]
    return f"^(?P<split_pre>{_guard_prefix(before)})(?P<split_match>{_CORES[kind]})(?P<split_post>{_guard_suffix(after)})$"


_PROTOCOL_DOMAIN = "@(?:.*\\.)?(?:" + "|".join(re.escape(d) for d in sorted(EMAIL_LIKE_PROTOCOL_NAMES)) + ")$"


def _emails_ok(values: pa.Array) -> np.ndarray:
    """:func:`_email_ok` over an array."""
    return ~_flags(pc.match_substring_regex(values, _PROTOCOL_DOMAIN, ignore_case=True))


def _phones_ok(values: pa.Array) -> np.ndarray:
    """:func:`_phone_ok` over an array."""
    text = pc.replace_substring_regex(values, _PHONE_EXTENSION.pattern, "")
    digits = _ints(pc.utf8_length(pc.replace_substring_regex(text, _NOT_DIGITS.pattern, "")))
    digits = digits - 2 * _flags(pc.starts_with(text, "001"))
    squeezed = pc.replace_substring(pc.replace_substring(text, ") ", ")"), " (", "(")
    balanced = _ints(pc.count_substring(text, "(")) == _ints(pc.count_substring(text, ")"))
    single = ~_flags(pc.match_substring_regex(squeezed, _DOUBLE_SEPARATOR.pattern))
    not_year = ~_flags(pc.match_substring_regex(text, f"^(?:{_EXPANDED_YEAR.pattern})$"))
    plus = _flags(pc.starts_with(text, "+"))
    counted = np.where(plus, (digits >= 8) & (digits <= 15), (digits == 10) | (digits == 11))
    return balanced & single & not_year & counted


def _flags(booleans: pa.Array) -> np.ndarray:
    return np.asarray(booleans.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _ints(integers: pa.Array) -> np.ndarray:
    return np.asarray(integers.to_numpy(zero_copy_only=False), dtype=np.int64)


# Kind -> confirmation over an array of matched values (None: the pattern is enough).
_SPLIT_KINDS: dict[str, Callable[[pa.Array], np.ndarray] | None] = {
    "email": _emails_ok,
    "phone": _phones_ok,
    "ipv4": None,
}


@dataclass
class _Split:
    """Rows of a candidate subset whose one match was cut out in Arrow."""

    kind: str
    rows: np.ndarray  # positions in the candidate subset, then (_matches_of_chunk) in the chunk
    pre: pa.Array
    value: pa.Array
    post: pa.Array


def _split_parts(values: pa.Array, kind: str) -> tuple[np.ndarray, pa.Array, pa.Array, pa.Array]:
    """Whether :func:`_split_pattern` cuts each value, and the text before, of and after its match.

    A value that is one whole match (an email column, an address) is its own match with
    nothing around it, which the split pattern also gives (it prefers an empty prefix, then
    the longest match, then an empty suffix): such values skip the costlier extraction.
    Kinds whose matches carry context (a phone word) always go through it.
    """
    if "value" in _CORES[kind]:
        parts = pc.extract_regex(values, _split_pattern(kind))
        pre, value, post = (parts.field(f"split_{name}") for name in ("pre", "match", "post"))
        # The match had context ("call 5551234567"): Python cuts it.
        valid = _flags(parts.is_valid()) & (_ints(pc.utf8_length(parts.field("value").fill_null(""))) == 0)
        return valid, pre, value, post
    whole = _flags(pc.match_substring_regex(values, f"^(?:{_CORES[kind]})$"))
    empty = pa.repeat(pa.scalar("", values.type), len(values))
    if whole.all():
        return whole, empty, values, empty
    rest = np.flatnonzero(~whole)
    parts = pc.extract_regex(values.take(pa.array(rest)), _split_pattern(kind))
    cut = pa.array(~whole)
    pre, value, post = (
        pc.replace_with_mask(base, cut, parts.field(f"split_{name}").cast(values.type))
        for base, name in ((empty, "pre"), (values, "match"), (empty, "post"))
    )
    valid = whole.copy()
    valid[rest] = _flags(parts.is_valid())
    return valid, pre, value, post


def _split_single_matches(subset: pa.Array, per_kind: dict[str, np.ndarray], kinds: tuple[str, ...]) -> list[_Split]:
    """Cut out the match of every candidate row that holds exactly one, of a kind in _SPLIT_KINDS."""
    hits = np.stack([per_kind[k] for k in kinds]) if kinds else np.zeros((0, len(subset)), bool)
    single = hits.sum(axis=0) == 1
    splits = []
    for kind in kinds:
        if kind not in _SPLIT_KINDS:
            continue
        positions = np.flatnonzero(single & per_kind[kind])
        if positions.size == 0:
            continue
        valid, pre, value, post = _split_parts(subset.take(pa.array(positions)), kind)
        confirm = _SPLIT_KINDS[kind]
        if confirm is not None:
            valid &= confirm(value.fill_null(""))
        # Anything after the match that the prefilter selects may be a second match.
        valid &= ~_flags(pc.match_substring_regex(post.fill_null(""), _combined_pattern(kinds)))
        if not valid.any():
            continue
        keep = pa.array(np.flatnonzero(valid))
        splits.append(_Split(kind, positions[valid], pre.take(keep), value.take(keep), post.take(keep)))
    return splits
