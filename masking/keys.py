"""Keyed hashing: the one source of determinism for every transform.

Replacements are decided by a keyed BLAKE2b digest of the original value, never by a plain
hash (a plain hash of a phone number or a small enum is reversed by trying every value). The
same key gives the same output across columns, tables, runs and sources; a different key
changes every output. Only :attr:`MaskingKey.key_id`, a digest of the key, is ever recorded.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

import numpy as np

DEMO_KEY_TEXT = "cleanroom-DEMO-KEY-not-secret-do-not-use-for-real-data"
MIN_KEY_BYTES = 16


class MaskingKey:
    """A secret masking key; derives one sub-key per consistency domain."""

    __slots__ = ("_secret", "key_id", "is_demo", "_subkeys")

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
        self._subkeys: dict[str, bytes] = {}

    @classmethod
    def demo(cls) -> "MaskingKey":
        return cls(DEMO_KEY_TEXT, is_demo=True)

    def __repr__(self) -> str:  # never show the secret
        return f"MaskingKey(key_id={self.key_id!r})"

    def __reduce__(self):  # pragma: no cover - keys must not travel through pickles or XCom
        raise TypeError("MaskingKey must not be pickled; pass the key's connection id instead")

    def subkey(self, domain: str) -> bytes:
        sub = self._subkeys.get(domain)
        if sub is None:
            sub = hmac.new(self._secret, b"cleanroom/domain/" + domain.encode(), "sha256").digest()[:32]
            self._subkeys[domain] = sub
        return sub

    def digest(self, domain: str, value: bytes) -> bytes:
        """Return a 16-byte keyed digest of ``value`` in ``domain``."""
        return hashlib.blake2b(value, key=self.subkey(domain), digest_size=16).digest()

    def digests64(self, domain: str, values: Iterable[object]) -> np.ndarray:
        """Return one unsigned 64-bit keyed digest per value (values are canonicalised first)."""
        key = self.subkey(domain)
        blake = hashlib.blake2b
        out = [
            int.from_bytes(blake(canonical_bytes(v), key=key, digest_size=8).digest(), "little") for v in values
        ]
        return np.array(out, dtype=np.uint64)


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


FINGERPRINT_DOMAIN = "cleanroom/fingerprint"


def normalise_for_fingerprint(value: object) -> bytes:
    """Normalise a value so that trivial variants (case, surrounding space) fingerprint alike."""
    if isinstance(value, bytes):
        return value
    return str(value).strip().casefold().encode("utf-8")


def fingerprints(key: MaskingKey, values: Iterable[object]) -> np.ndarray:
    """Return keyed 64-bit fingerprints of original values, for the survivor check.

    Fingerprints share one domain across every column, so an original value that shows up in
    another column (an email copied into a note) is still recognised. They are never
    published: they stay in the private work area of a run.
    """
    return key.digests64(FINGERPRINT_DOMAIN, (normalise_for_fingerprint(v) for v in values))
