"""Keyed hashing: the one source of determinism for every transform.

Replacements are decided by a keyed digest of the original value, never by a plain hash (a
plain hash of a phone number or a small enum is reversed by trying every value). The same key
gives the same output across columns, tables, runs and sources; a different key changes every
output. Only :attr:`MaskingKey.key_id`, a digest of the key, is ever recorded.

The digest of ``value`` in a consistency domain is ``SHA-256(prefix || value)``, where
``prefix`` is a 64-byte secret (one whole SHA-256 block) derived from the key and the domain
with HMAC-SHA512. Columns are hashed by the C extension ``_masking_sha256`` (built from
``masking/_sha256.c``) straight from Arrow buffers, with SHA-NI where the processor has it;
single values use a ``hashlib`` object that has already absorbed the prefix. Both compute the
same standard function, so a value gets the same digest whichever path hashes it.

Why a secret prefix is a sound PRF here: the prefix fills the first block, so the hash runs
from a secret 256-bit chaining value, as in NMAC's inner function. The known weakness of
secret-prefix MACs is length extension, which needs the full 256-bit state; callers see at most
128 bits (``digest``, the ``hash`` transform) and fakes reveal at most 64, so the missing state
cannot be guessed, and an extension would only yield digests of other, longer inputs; it never
recovers an original value. Reversing a digest by dictionary needs the prefix, that is the key.

Fingerprints, the private values the validation gate compares originals by, are not such
digests: they are SipHash-2-4 under a key derived from the masking key (see
:func:`fingerprints`), computed by the C extension ``_masking_fingerprint``.

Known limitations: digests changed from the earlier keyed BLAKE2b, so fakes and hashes differ
from snapshots made before that change. Every digest must come from this module: fingerprints
written during extraction are compared with fingerprints computed during validation.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from masking.native import extension, value_buffers

_sha256 = extension("_masking_sha256", "masking/_sha256.c")
_fingerprint = extension("_masking_fingerprint", "masking/_fingerprint.c")

DEMO_KEY_TEXT = "cleanroom-DEMO-KEY-not-secret-do-not-use-for-real-data"
MIN_KEY_BYTES = 16

BULK_MIN_VALUES = 4096
"""From this many Python values on, :meth:`MaskingKey.digests64` canonicalises them in Arrow."""


class MaskingKey:
    """A secret masking key; derives one secret hash prefix per consistency domain."""

    __slots__ = ("_secret", "key_id", "is_demo", "_prefixes", "_hashers", "_siphash_key")

    def __init__(self, secret: bytes | str, *, is_demo: bool = False) -> None:
        if isinstance(secret, str):
            secret = secret.encode()
        if len(secret) < MIN_KEY_BYTES:
            from masking.errors import KeyMissingError

            raise KeyMissingError(
                f"masking key is too short ({len(secret)} bytes); use at least {MIN_KEY_BYTES} random "
                "bytes, e.g. the output of `python -c 'import secrets; print(secrets.token_hex(32))'`"
            )
        self._secret = secret
        self.is_demo = is_demo
        self.key_id = ("demo-" if is_demo else "") + hmac.new(secret, b"cleanroom/key-id", "sha256").hexdigest()[:16]
        self._prefixes: dict[str, bytes] = {}
        self._hashers: dict[str, object] = {}
        self._siphash_key: bytes | None = None

    @classmethod
    def demo(cls) -> "MaskingKey":
        return cls(DEMO_KEY_TEXT, is_demo=True)

    def __repr__(self) -> str:  # never show the secret
        return f"MaskingKey(key_id={self.key_id!r})"

    def __reduce__(self):  # pragma: no cover - keys must not travel through pickles or XCom
        raise TypeError("MaskingKey must not be pickled; pass the key's connection id instead")

    def handoff(self) -> tuple[bytes, bool]:
        """The secret and demo flag, for handing the key to a worker process on purpose.

        Pickling is refused so a key cannot end up in XCom or a log by accident; a caller that
        starts local worker processes passes this and rebuilds with ``MaskingKey(*handoff)``.
        """
        return self._secret, self.is_demo

    def _prefix(self, domain: str) -> bytes:
        """Return the 64-byte secret prefix of ``domain`` (one SHA-256 block)."""
        prefix = self._prefixes.get(domain)
        if prefix is None:
            prefix = hmac.new(self._secret, b"cleanroom/prefix/" + domain.encode(), "sha512").digest()
            self._prefixes[domain] = prefix
        return prefix

    def _fingerprint_key(self) -> bytes:
        """Return the 16-byte SipHash key of fingerprints (see :func:`fingerprints`)."""
        if self._siphash_key is None:
            label = b"cleanroom/siphash/" + FINGERPRINT_DOMAIN.encode()
            self._siphash_key = hmac.new(self._secret, label, "sha512").digest()[:16]
        return self._siphash_key

    def _hasher(self, domain: str):
        """A SHA-256 object that has absorbed the prefix; callers hash a ``.copy()`` of it."""
        hasher = self._hashers.get(domain)
        if hasher is None:
            hasher = hashlib.sha256(self._prefix(domain))
            self._hashers[domain] = hasher
        return hasher

    def digest(self, domain: str, value: bytes) -> bytes:
        """Return a 16-byte keyed digest of ``value`` in ``domain``."""
        hasher = self._hasher(domain).copy()
        hasher.update(value)
        return hasher.digest()[:16]

    def digests64(self, domain: str, values: Iterable[object]) -> np.ndarray:
        """Return one unsigned 64-bit keyed digest per value (values are canonicalised first)."""
        values = values if isinstance(values, list) else list(values)
        if len(values) >= BULK_MIN_VALUES:
            inferred = _arrow_or_none(values)
            if inferred is not None:
                return self._digests64_binary(domain, canonical_binary(inferred))
        return self._digests64_bytes(domain, [canonical_bytes(v) for v in values])

    def digests64_arrow(self, domain: str, array: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Return one unsigned 64-bit keyed digest per element of an Arrow array; 0 for nulls.

        Equal to :meth:`digests64` on ``array.to_pylist()`` for every non-null element.
        """
        return self._digests64_binary(domain, canonical_binary(array))

    def hexdigests_arrow(self, domain: str, array: pa.Array | pa.ChunkedArray, length: int) -> pa.Array:
        """Return the first ``length`` hex digits of :meth:`digest` per element; null stays null."""
        binary = canonical_binary(array)
        raw = _prefixed_digests(self._prefix(domain), _nulls_as_empty(binary), (length + 1) // 2)
        hexed = np.empty((len(binary), 2 * raw.shape[1]), np.uint8)
        hexed[:, 0::2] = _HEX_DIGITS[raw >> 4]
        hexed[:, 1::2] = _HEX_DIGITS[raw & 0x0F]
        data = np.ascontiguousarray(hexed[:, :length])
        offsets = np.arange(len(binary) + 1, dtype=np.int32) * np.int32(length)
        validity = binary.is_valid().buffers()[1] if binary.null_count else None
        return pa.Array.from_buffers(
            pa.string(), len(binary), [validity, pa.py_buffer(offsets), pa.py_buffer(data)], null_count=binary.null_count
        )

    def _digests64_bytes(self, domain: str, values: list[bytes]) -> np.ndarray:
        return self._digests64_binary(domain, pa.array(values, pa.binary()))

    def _digests64_binary(self, domain: str, binary: pa.Array) -> np.ndarray:
        raw = _prefixed_digests(self._prefix(domain), _nulls_as_empty(binary), 8)
        digests = raw.view(">u8").reshape(-1).astype(np.uint64)
        if binary.null_count:
            digests[binary.is_null().to_numpy(zero_copy_only=False)] = 0
        return digests


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", np.uint8)


def _nulls_as_empty(binary: pa.Array) -> pa.Array:
    """Give null slots empty values: Arrow lets a null slot span bytes that must not be hashed."""
    return pc.fill_null(binary, pa.scalar(b"", binary.type)) if binary.null_count else binary


def _prefixed_digests(prefix: bytes, binary: pa.Array, size: int) -> np.ndarray:
    """The first ``size`` bytes of SHA-256(prefix || value) per value, as an (n, size) uint8 array.

    ``binary`` is an Arrow binary or large binary array without nulls; the C extension reads
    its offset and data buffers in place, so no Python object is built per value.
    """
    out = np.empty((len(binary), size), np.uint8)
    if not len(binary):
        return out
    positions, data, wide = value_buffers(binary)
    _sha256.prefixed_digests(prefix, positions, data, out, size, wide)
    return out


def canonical_bytes(value: object) -> bytes:
    """Turn a cell value into the bytes that are hashed, stable across engines and runs."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bool):
        return b"1" if value else b"0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)).encode()
    if hasattr(value, "isoformat"):
        return value.isoformat().encode()
    return str(value).encode("utf-8")


def _arrow_or_none(values: list) -> pa.Array | None:
    """Return ``values`` as an Arrow array when Arrow canonicalises its type exactly, else None."""
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return None
    kind = array.type
    exact = pa.types.is_string(kind) or pa.types.is_binary(kind) or pa.types.is_integer(kind) or pa.types.is_date32(kind)
    return array if exact and not array.null_count else None


def canonical_binary(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Return the :func:`canonical_bytes` of every element as a binary array (nulls kept).

    Text, binary, integers, dates and booleans are converted in Arrow; other types go
    through :func:`canonical_bytes` one value at a time.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_binary(kind):
        return array.cast(pa.binary())
    if pa.types.is_large_string(kind) or pa.types.is_large_binary(kind):
        return array.cast(pa.large_binary())
    if pa.types.is_integer(kind) or pa.types.is_date32(kind):
        # Arrow spells integers like str() and dates like isoformat() (years 1..9999).
        return pc.cast(array, pa.string()).cast(pa.binary())
    if pa.types.is_boolean(kind):
        return pc.if_else(array, pa.scalar(b"1"), pa.scalar(b"0"))
    if _utc_or_naive_microseconds(kind):
        return _datetime_text(array, "T").cast(pa.binary())
    return pa.array([None if v is None else canonical_bytes(v) for v in array.to_pylist()], pa.binary())


# --- fingerprints ----------------------------------------------------------------------------------

FINGERPRINT_DOMAIN = "cleanroom/fingerprint"


def normalise_for_fingerprint(value: object) -> bytes:
    """Normalise a value so that trivial variants (case, surrounding space) fingerprint alike."""
    if isinstance(value, bytes):
        return value
    return str(value).strip().casefold().encode("utf-8")


def fingerprints(key: MaskingKey, values: Iterable[object] | pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Return keyed 64-bit fingerprints of original values, for the survivor check.

    A fingerprint is SipHash-2-4, under a 16-byte key derived from the masking key, of the
    value's :func:`normalise_for_fingerprint` bytes. Fingerprints share one key across every
    column, so an original value that shows up in another column (an email copied into a
    note) is still recognised. They are never published: they stay in the private work area of
    a run, so their function differs from the digests fakes are drawn from, for speed.
    ``values`` may be an Arrow array (nulls give 0) or any iterable; both give the same
    fingerprint for the same value.
    """
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = values if isinstance(values, list) else list(values)
        try:
            values = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            return _siphash(key, pa.array([normalise_for_fingerprint(v) for v in values], pa.binary()))
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return _text_fingerprints(key, values)
    return _siphash(key, _normalised_binary(values))


def _text_fingerprints(key: MaskingKey, text: pa.Array) -> np.ndarray:
    """Fingerprints of text: ASCII values normalised and hashed in C, the others through Python."""
    python = np.zeros(len(text), np.uint8)
    out = _siphash(key, text, normalise=True, python=python)
    if python.any():
        rows = np.flatnonzero(python)
        others = [normalise_for_fingerprint(v) for v in text.take(pa.array(rows)).to_pylist()]
        out[rows] = _siphash(key, pa.array(others, pa.binary()))
    return out


def _siphash(
    key: MaskingKey, binary: pa.Array, *, normalise: bool = False, python: np.ndarray | None = None
) -> np.ndarray:
    """SipHash-2-4 of every value of a binary or string array under the fingerprint key; 0 for nulls.

    With ``normalise``, ASCII values are trimmed and lower-cased first and values holding
    non-ASCII bytes are flagged in ``python`` (and get 0) for the caller to normalise.
    """
    out = np.zeros(len(binary), np.uint64)
    if not len(binary):
        return out
    if python is None:
        python = np.zeros(len(binary), np.uint8)
    positions, data, wide = value_buffers(binary)
    validity = binary.buffers()[0] if binary.null_count else None
    _fingerprint.fingerprints(
        key._fingerprint_key(), positions, data, validity, binary.offset, out, python, wide, normalise,
    )
    return out


def _normalised_binary(array: pa.Array) -> pa.Array:
    """Apply :func:`normalise_for_fingerprint` to every non-text element, in Arrow where that is exact."""
    if pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type):
        return array
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), pa.binary())
    if pa.types.is_integer(array.type) or pa.types.is_date32(array.type):
        # str() of an int or a date is Arrow's text of it; strip and casefold change nothing.
        return pc.cast(array, pa.string()).cast(pa.binary())
    if _utc_or_naive_microseconds(array.type):
        return _datetime_text(array).cast(pa.binary())
    normalised = [None if v is None else normalise_for_fingerprint(v) for v in array.to_pylist()]
    return pa.array(normalised, pa.binary())


_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "+00:00", "utc", "Z"})


def _utc_or_naive_microseconds(kind: pa.DataType) -> bool:
    return pa.types.is_timestamp(kind) and kind.unit == "us" and (kind.tz is None or kind.tz in _UTC_NAMES)


def _datetime_text(array: pa.Array, sep: str = " ") -> pa.Array:
    """``str()`` (or with ``sep="T"``, ``isoformat()``) of every datetime:
    ``2020-01-01 10:00:00[.000005][+00:00]``, written by the C extension in one pass.

    Python leaves the fraction out when the microsecond is zero and prints the offset of an
    aware value. Values outside the years 1 to 9999 (no Python datetime holds them) keep the
    text Arrow gives them.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    count = len(array)
    ticks = np.ascontiguousarray(pc.fill_null(pc.cast(array, pa.int64()), 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    offsets = np.empty(count + 1, np.int32)
    data = np.empty(count * 32, np.uint8)
    used = _sha256.iso_datetimes(ticks, sep, array.type.tz is not None, offsets, data)
    if used < 0:
        return _datetime_text_arrow(array, sep)
    validity = array.is_valid().buffers()[1] if array.null_count else None
    return pa.Array.from_buffers(
        pa.string(), count, [validity, pa.py_buffer(offsets), pa.py_buffer(data[:used])], null_count=array.null_count
    )


def _datetime_text_arrow(array: pa.Array, sep: str) -> pa.Array:
    """:func:`_datetime_text` built from Arrow's own text of each timestamp (any year)."""
    # An aware UTC value's ticks are its naive UTC wall time.
    text = pc.cast(array.view(pa.timestamp("us")), pa.string())
    if sep != " ":
        text = pc.utf8_replace_slice(text, 10, 11, sep)
    ticks = pc.fill_null(pc.cast(array, pa.int64()), 0).to_numpy(zero_copy_only=False)
    whole = pa.array(np.remainder(ticks, 1_000_000) == 0)
    text = pc.if_else(whole, pc.utf8_slice_codeunits(text, 0, -7), text)
    if array.type.tz is not None:
        text = pc.binary_join_element_wise(text, "+00:00", "")
    return text
