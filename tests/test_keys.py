"""Keyed digests: one definition, whichever path (hashlib, the C extension over Arrow) computes it."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masking import keys
from masking.keys import MaskingKey, fingerprints, normalise_for_fingerprint

KEY = MaskingKey("unit-test-key-0123456789abcdef")
OTHER_KEY = MaskingKey("another-key-0123456789abcdef!!")
BULK = keys.BULK_MIN_VALUES

VALUE_SETS = {
    "text": [f"person{i}@example.org" for i in range(BULK + 7)] + ["", "héllo ✓", "Straße"],
    "integers": list(range(-5, BULK + 5)) + [2**62, -(2**62)],
    "dates": [dt.date(1, 1, 1) + dt.timedelta(days=37 * i) for i in range(BULK + 3)],
    "booleans": [True, False] * (BULK // 2 + 1),
    "bytes": [i.to_bytes(3, "big") for i in range(BULK + 1)] + [b""],
    # Every 7th timestamp has a zero microsecond, which isoformat() leaves out.
    "timestamps": [dt.datetime(1, 1, 1) + dt.timedelta(days=97 * i, microseconds=(i % 7) * 12345) for i in range(BULK + 3)],
    "utc timestamps": [
        dt.datetime(1960, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=977 * i, microseconds=i % 7)
        for i in range(BULK + 3)
    ],
}


def reference(key: MaskingKey, domain: str, value: bytes) -> int:
    """The documented definition, computed independently of the module's code paths."""
    prefix = hmac.new(key._secret, b"cleanroom/prefix/" + domain.encode(), "sha512").digest()
    return int.from_bytes(hashlib.sha256(prefix + value).digest()[:8], "big")


def siphash24(key: bytes, message: bytes) -> int:
    """SipHash-2-4 (Aumasson and Bernstein), written from the paper, independently of the C code."""
    mask = (1 << 64) - 1
    rotl = lambda x, b: ((x << b) | (x >> (64 - b))) & mask  # noqa: E731
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]

    def rounds(count):
        for _ in range(count):
            v[0] = (v[0] + v[1]) & mask; v[1] = rotl(v[1], 13) ^ v[0]; v[0] = rotl(v[0], 32)  # noqa: E702
            v[2] = (v[2] + v[3]) & mask; v[3] = rotl(v[3], 16) ^ v[2]  # noqa: E702
            v[0] = (v[0] + v[3]) & mask; v[3] = rotl(v[3], 21) ^ v[0]  # noqa: E702
            v[2] = (v[2] + v[1]) & mask; v[1] = rotl(v[1], 17) ^ v[2]; v[2] = rotl(v[2], 32)  # noqa: E702

    padded = message + bytes(8 - len(message) % 8)  # the last word also carries the length byte
    words = [int.from_bytes(padded[i:i + 8], "little") for i in range(0, len(padded), 8)]
    words[-1] |= (len(message) & 0xFF) << 56
    for m in words:
        v[3] ^= m
        rounds(2)
        v[0] ^= m
    v[2] ^= 0xFF
    rounds(4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def fingerprint_reference(key: MaskingKey, value: bytes) -> int:
    """The documented fingerprint: SipHash-2-4 under a key derived from the masking key."""
    sip_key = hmac.new(key._secret, b"cleanroom/siphash/" + keys.FINGERPRINT_DOMAIN.encode(), "sha512").digest()[:16]
    return siphash24(sip_key, value)


def test_siphash_reference_matches_the_papers_vectors():
    key = bytes(range(16))

    assert siphash24(key, b"") == 0x726FDB47DD0E0E31
    assert siphash24(key, bytes(range(15))) == 0xA129CA6149BE45E5


@pytest.mark.parametrize("length", [0, 1, 7, 8, 9, 15, 16, 63, 64, 200])
def test_c_fingerprints_are_siphash24_on_every_length(length):
    values = [bytes((i * 7 + j) % 251 for j in range(length)) for i in range(5)]

    assert fingerprints(KEY, values).tolist() == [fingerprint_reference(KEY, v) for v in values]


def test_fingerprints_skip_nulls_in_sliced_arrays():
    array = pa.array(["  A ", None, "b", "Ä", None, "c "] * 3).slice(2, 11)

    expected = [0 if v is None else fingerprint_reference(KEY, normalise_for_fingerprint(v)) for v in array.to_pylist()]

    assert fingerprints(KEY, array).tolist() == expected
    assert fingerprints(KEY, array.cast(pa.large_string())).tolist() == expected


def test_digest_is_sha256_of_the_secret_prefix_and_the_value():
    values = [b"", b"alice@example.org", b"x" * 200]

    digests = KEY.digests64("email", values)

    assert digests.tolist() == [reference(KEY, "email", v) for v in values]
    assert KEY.digest("email", b"alice@example.org")[:8] == reference(KEY, "email", b"alice@example.org").to_bytes(8, "big")


@pytest.mark.parametrize("name", VALUE_SETS)
@pytest.mark.parametrize("size", [3, BULK - 1, BULK + 1], ids=["few", "below-bulk", "bulk"])
def test_arrow_and_list_paths_give_the_same_digests(name, size):
    values = VALUE_SETS[name][-size:]

    from_list = KEY.digests64("d", values)
    from_arrow = KEY.digests64_arrow("d", pa.array(values))
    one_by_one = [KEY.digests64("d", [v])[0] for v in values[:: max(1, size // 50)]]

    assert from_list.dtype == from_arrow.dtype == np.uint64
    np.testing.assert_array_equal(from_list, from_arrow)
    assert one_by_one == from_list[:: max(1, size // 50)].tolist()


def test_arrow_nulls_digest_to_zero_and_others_keep_their_digest():
    values = ["a", None] * (BULK // 2 + 1)

    digests = KEY.digests64_arrow("d", pa.array(values))

    assert (digests[1::2] == 0).all()
    assert (digests[::2] == KEY.digests64("d", ["a"])[0]).all()


@pytest.mark.parametrize("size", [2, BULK + 1], ids=["few", "bulk"])
def test_digests_depend_on_key_and_domain(size):
    values = [f"+1-555-{i:07d}" for i in range(size)]

    base = KEY.digests64("phone", values)

    assert not np.intersect1d(base, OTHER_KEY.digests64("phone", values)).size
    assert not np.intersect1d(base, KEY.digests64("email", values)).size


@pytest.mark.parametrize("size", [2, BULK + 1], ids=["few", "bulk"])
def test_hex_digests_match_digest(size):
    values = [f"v{i}" for i in range(size)] + [None]

    hexes = KEY.hexdigests_arrow("hash", pa.array(values), 20).to_pylist()

    assert hexes[-1] is None
    assert hexes[:2] == [KEY.digest("hash", v.encode()).hex()[:20] for v in values[:2]]


def test_digests_are_the_same_in_another_process():
    values = [f"person{i}@example.org" for i in range(BULK + 1)]
    code = (
        "import sys; from masking.keys import MaskingKey; "
        f"k = MaskingKey({KEY._secret!r}); "
        f"print(k.digests64('email', [f'person{{i}}@example.org' for i in range({BULK + 1})]).sum(dtype='uint64'))"
    )

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert int(out) == int(KEY.digests64("email", values).sum(dtype=np.uint64))


@pytest.mark.parametrize("size", [5, BULK + 5], ids=["few", "bulk"])
def test_fingerprints_of_lists_and_arrow_follow_the_python_normalisation(size):
    tricky = ["  Alice@Example.ORG\n", "STRASSE", "Straße", " ǅemal ", "x\x1c", "\x1fy ", ""]
    values = (tricky * (size // len(tricky) + 1))[:size]
    expected = [fingerprint_reference(KEY, normalise_for_fingerprint(v)) for v in values]

    assert fingerprints(KEY, values).tolist() == expected
    assert fingerprints(KEY, pa.array(values)).tolist() == expected
    assert fingerprints(KEY, pa.chunked_array([values[:2], values[2:]])).tolist() == expected


def test_fingerprints_of_dates_and_mixed_values_use_their_text():
    values = [dt.date(2024, 2, 29), 7, "7", b"raw"]

    expected = [fingerprint_reference(KEY, normalise_for_fingerprint(v)) for v in values]

    assert fingerprints(KEY, values).tolist() == expected


@pytest.mark.parametrize(
    "values",
    [[dt.date(1, 1, 1), None, dt.date(2024, 2, 29), dt.date(9999, 12, 31)], [-7, None, 0, 2**62]],
    ids=["dates", "integers"],
)
def test_fingerprints_of_arrow_dates_and_integers_equal_those_of_their_python_values(values):
    array = pa.array(values)

    from_arrow = fingerprints(KEY, array).tolist()

    assert from_arrow == [0 if v is None else fingerprint_reference(KEY, normalise_for_fingerprint(v))
                          for v in values]


@pytest.mark.parametrize("tz", [None, "UTC"], ids=["naive", "utc"])
def test_fingerprints_of_arrow_timestamps_equal_those_of_their_python_values(tz):
    zone = dt.timezone.utc if tz else None
    values = [
        dt.datetime(2020, 1, 1, tzinfo=zone), dt.datetime(1969, 12, 31, 23, 59, 59, 5, tzinfo=zone), None,
        dt.datetime(1, 1, 1, tzinfo=zone), dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=zone),
        dt.datetime(999, 6, 30, 12, 0, 0, 120000, tzinfo=zone),
    ] * (BULK // 6 + 1)
    array = pa.array(values, pa.timestamp("us", tz=tz))

    from_arrow = fingerprints(KEY, array).tolist()

    assert from_arrow == [0 if v is None else fingerprint_reference(KEY, normalise_for_fingerprint(v))
                          for v in values]


@pytest.mark.parametrize("tz", [None, "UTC"], ids=["naive", "utc"])
@pytest.mark.parametrize("sep", [" ", "T"], ids=["str", "isoformat"])
def test_timestamp_text_is_pythons_for_every_year_and_microsecond(tz, sep):
    rng = np.random.default_rng(11)
    one = dt.timedelta(microseconds=1)
    first, last = (dt.datetime(1, 1, 1) - dt.datetime(1970, 1, 1)) // one, (dt.datetime.max - dt.datetime(1970, 1, 1)) // one
    ticks = rng.integers(first, last, 20_000)
    ticks[::2] -= ticks[::2] % 1_000_000  # whole seconds: Python prints no fraction
    ticks = np.concatenate([ticks, [first, last, 0, -1, 1, -86_400_000_000, 951_782_400_000_000]])  # 2000-02-29
    values = pa.array(ticks, pa.timestamp("us", tz=tz)).to_pylist()
    values[7] = None
    array = pa.array(values, pa.timestamp("us", tz=tz))

    expected = [None if v is None else (v.isoformat(sep) if sep == "T" else str(v)) for v in values]
    assert keys._datetime_text(array, sep).to_pylist() == expected
    assert keys._datetime_text(array.slice(5, 50), sep).to_pylist() == expected[5:55]
    assert keys._datetime_text_arrow(array, sep).to_pylist() == expected


def test_timestamp_text_beyond_year_9999_is_arrows():
    array = pa.array([253_402_300_800_000_000, 0], pa.timestamp("us"))  # 10000-01-01, then 1970

    assert keys._datetime_text(array).to_pylist() == ["10000-01-01 00:00:00", "1970-01-01 00:00:00"]


# --- the C extension -------------------------------------------------------------------------------

# Lengths around the SHA-256 padding edges: 55 bytes still fit the length field in one block,
# 56 need a second; 64 and 128 are whole blocks after the prefix.
EDGE_LENGTHS = [0, 1, 54, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000]
EXTENSION_CHECK = """
import hashlib, os, sys
import numpy as np, pyarrow as pa
import _masking_sha256 as _sha256
prefix = os.urandom(64)
values = [os.urandom(n) for n in list(range(300)) + [1000, 4096]] * 2
array = pa.array(values, pa.binary())
offsets = np.frombuffer(array.buffers()[1], np.int32)[: len(array) + 1]
out = bytearray(32 * len(values))
_sha256.prefixed_digests(prefix, offsets, array.buffers()[2], out, 32, False)
assert bytes(out) == b"".join(hashlib.sha256(prefix + v).digest() for v in values)
print(_sha256.implementation())
"""


@pytest.mark.parametrize("portable", [False, True], ids=["native", "portable"])
def test_extension_equals_hashlib_on_every_length_in_both_implementations(portable):
    env = {**__import__("os").environ, **({"CLEANROOM_SHA256_PORTABLE": "1"} if portable else {})}

    done = subprocess.run([sys.executable, "-c", EXTENSION_CHECK], capture_output=True, text=True, env=env)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in (["portable"] if portable else ["sha-ni", "portable"])


@pytest.mark.parametrize("large", [False, True], ids=["binary", "large_binary"])
def test_sliced_arrays_with_nulls_hash_like_their_python_values(large):
    values = [bytes(range(n % 256)) * (1 + n // 256) for n in EDGE_LENGTHS * 3] + [None, b"tail"]
    array = pa.array(values, pa.large_binary() if large else pa.binary()).slice(5)

    digests = KEY.digests64_arrow("d", array)

    expected = [0 if v is None else reference(KEY, "d", v) for v in values[5:]]
    assert digests.tolist() == expected


def test_hex_digests_keep_nulls_and_odd_lengths():
    array = pa.array(["a", None, "b" * 70])

    hexed = KEY.hexdigests_arrow("h", array, 15).to_pylist()

    assert hexed[1] is None
    assert hexed[0] == KEY.digest("h", b"a").hex()[:15]
    assert hexed[2] == KEY.digest("h", b"b" * 70).hex()[:15]


@pytest.mark.parametrize(
    "args, message",
    [
        ((b"p" * 63, np.zeros(1, np.int32), b"", bytearray(8), 8, False), "64 bytes"),
        ((b"p" * 64, np.zeros(1, np.int32), b"", bytearray(8), 33, False), "between 1 and 32"),
        ((b"p" * 64, np.array([0, 9], np.int32), b"short", bytearray(8), 8, False), "outside the data buffer"),
        ((b"p" * 64, np.array([0, 1], np.int32), b"x", bytearray(4), 8, False), "too small"),
    ],
    ids=["short-prefix", "digest-size", "offset-past-data", "small-output"],
)
def test_extension_refuses_bad_buffers(args, message):
    import _masking_sha256 as _sha256

    with pytest.raises(ValueError, match=message):
        _sha256.prefixed_digests(*args)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(), st.text(alphabet=" \t\n\x0b\x0c\r\x1c\x1f\x85\xa0\u3000AbZz09@.-ß"))))
def test_fingerprints_of_any_text_follow_the_python_normalisation(values):
    array = pa.array(values, pa.string())

    expected = [0 if v is None else fingerprint_reference(KEY, normalise_for_fingerprint(v)) for v in values]

    assert fingerprints(KEY, array).tolist() == expected
