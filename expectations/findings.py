"""Detector findings of one text column, shared by the GX expectation and the gate's own checks.

:func:`analyse` runs every detector of :mod:`masking.detectors` over a column once and keeps
the confirmed matches that are not *reserved* values: emails at the RFC 2606 domains the fakes
use, NANP numbers in the 555 area code, and RFC 5737 / RFC 3849 documentation addresses. Those
are what :mod:`masking.fakes` writes when scrubbing free text, and cannot belong to anyone.
:func:`findings_for` keeps the findings in a small per-thread cache keyed by the identity of
the column's Arrow array (immutable, so identity implies equal content): the detector
expectation of :mod:`expectations.custom` and the gate's survivor check read one analysis.

This module does not import Great Expectations, so the gate can search a chunk while GX is
still being imported on another thread.

Known limitations:
    ja_JP phone numbers have no fictional range, so a scrubbed ja_JP phone number still counts
    as a ``phone_jp`` match. Findings hold matched text in memory for the duration of one batch
    (:func:`clear_cache` drops them).
"""

from __future__ import annotations

import ipaddress
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from masking import detectors, fakes
from masking.transforms import distinct_or_all

CHECK_PREFIX = "no_"
# The ranges masking.fakes draws from, as networks.
_DOCUMENTATION_NETS = tuple(ipaddress.ip_network(f"{net}.0/24") for net in fakes.DOCUMENTATION_NETS_V4) + (
    ipaddress.ip_network(f"{fakes.DOCUMENTATION_PREFIX_V6}/32"),
)
_CACHE_SIZE = 32
# An email at a reserved domain with a plain local part (words of letters, up to two digits,
# an optional code holding a letter), or a 555 number with an optional extension.
_PLAIN_FAKE = (
    r"^(?:[a-z]+(?:[._][a-z]+)*[._]?[0-9]{0,2}(?:\.[0-9]*[a-z][0-9a-z]*)?@example\.(?:com|net|org)"
    r"|\+1-555-[0-9]{3}-[0-9]{4}(?: x[0-9]{1,13})?)$"
)


def check_name(kind: str) -> str:
    """Return the check name reported for a detector kind, e.g. ``no_email``."""
    return CHECK_PREFIX + kind


def is_reserved(kind: str, text: str) -> bool:
    """Return whether a matched token is a reserved, never-personal value of the kind the fakes write."""
    if kind == "email":
        domain = text.rpartition("@")[2].lower()
        return any(domain == d or domain.endswith("." + d) for d in fakes.RESERVED_DOMAINS)
    if kind == "phone":
        digits = "".join(c for c in text if c.isdigit())
        if len(digits) == 11 and digits[0] == "1":
            digits = digits[1:]
        return len(digits) == 10 and digits.startswith("555")
    if kind in ("ipv4", "ipv6"):
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return False
        return any(address.version == net.version and address in net for net in _DOCUMENTATION_NETS)
    return False


_RESERVED_EMAIL = "@(?:[^@]*\\.)?(?:" + "|".join(d.replace(".", "\\.") for d in fakes.RESERVED_DOMAINS) + ")$"
_OCTET_NO_PADDING = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_RESERVED_IPV4 = "^(?:" + "|".join(n.replace(".", "\\.") for n in fakes.DOCUMENTATION_NETS_V4) + f")\\.{_OCTET_NO_PADDING}$"


def reserved_mask(kind: str, values: pa.Array) -> np.ndarray:
    """:func:`is_reserved` over an Arrow array of matched emails, phone numbers or IPv4 addresses."""
    if kind == "email":
        hits = pc.match_substring_regex(values, _RESERVED_EMAIL, ignore_case=True)
    elif kind == "phone":
        digits = pc.replace_substring_regex(values, "[^0-9]+", "")
        national = pc.if_else(
            pc.and_(pc.equal(pc.utf8_length(digits), 11), pc.starts_with(digits, "1")), pc.utf8_slice_codeunits(digits, 1), digits
        )
        hits = pc.and_(pc.equal(pc.utf8_length(national), 10), pc.starts_with(national, "555"))
    elif kind == "ipv4":
        hits = pc.match_substring_regex(values, _RESERVED_IPV4)
    else:
        raise ValueError(f"reserved_mask: no Arrow form for kind {kind!r}; use is_reserved")
    return np.asarray(hits.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


@dataclass
class Findings:
    """Confirmed, non-reserved detector matches in one column of one batch.

    ``rows`` maps a kind to the row positions holding it. ``tokens`` lists (row, kind, text) of
    every match, for fingerprinting: they hold values, so keep them in memory only.
    """

    length: int
    rows: dict[str, np.ndarray] = field(default_factory=dict)
    tokens: list[tuple[int, str, str]] = field(default_factory=list)

    def mask(self, kind: str) -> np.ndarray:
        out = np.zeros(self.length, dtype=bool)
        hit = self.rows.get(kind)
        if hit is not None:
            out[hit] = True
        return out


# Per thread: the gate validates tables on several threads, and one table's chunk being done
# must not drop another's findings.
_local = threading.local()
stats = {"analysed": 0, "reused": 0}


def _cache() -> OrderedDict[int, tuple[object, Findings]]:
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = OrderedDict()
    return cache


def as_arrow_strings(values: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Return the Arrow string array behind a pandas column (zero-copy when it is Arrow-backed)."""
    if isinstance(values, pd.Series):
        backing = values.array
        values = backing.__arrow_array__() if hasattr(backing, "__arrow_array__") else pa.array(values, from_pandas=True)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = values.cast(pa.string())
    return values


def findings_for(values: pd.Series | pa.Array | pa.ChunkedArray) -> Findings:
    """Return the findings for a column, computing them once per Arrow array."""
    array = as_arrow_strings(values)
    cache = _cache()
    entry = cache.get(id(array))
    if entry is not None and entry[0] is array:
        stats["reused"] += 1
        cache.move_to_end(id(array))
        return entry[1]
    found = analyse(array)
    cache[id(array)] = (array, found)  # the reference keeps the id from being reused
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return found


def clear_cache() -> None:
    """Forget this thread's cached findings (they hold matched text; call when a batch is done)."""
    _cache().clear()


def analyse(array: pa.Array | pa.ChunkedArray) -> Findings:
    """Run every detector over ``array`` once and collect the non-reserved matches by row."""
    stats["analysed"] += 1
    found = Findings(len(array))
    # Values that are, whole, a fake of the plain shapes masking writes hold nothing else: the
    # pattern leaves no room for a card, phone, address or token, so they skip Python entirely.
    # A plain fake holds an "@" (email) or eleven digits (+1-555-...); other rows are no fake.
    plain = detectors.rows_matching(array, _PLAIN_FAKE, min_digits=11, or_holding="@")
    plain |= ~np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)  # nulls hold nothing
    rest = np.flatnonzero(~plain)
    if rest.size == 0:
        return found
    subset = array.take(pa.array(rest)) if rest.size < len(array) else array
    # One detector pass over the distinct texts: find_all confirms each candidate once and hands
    # back its matches, so no second search per row is needed to read them.
    texts, indices = distinct_or_all(subset)
    per_text: dict[int, list[tuple[str, str]]] = {}
    singles, others = detectors.find_all_arrow(texts)
    for single in singles:  # texts holding one email, phone or address: judged in Arrow
        personal = ~reserved_mask(single.kind, single.values)
        for position, token in zip(single.rows[personal].tolist(), single.values.filter(pa.array(personal)).to_pylist()):
            per_text[position] = [(single.kind, token)]
    for position, text, matches in others:
        tokens = [(m.kind, text[m.start:m.end]) for m in matches]
        tokens = [(kind, token) for kind, token in tokens if not is_reserved(kind, token)]
        if tokens:
            per_text[position] = tokens
    if not per_text:
        return found
    hit_rows = np.flatnonzero(np.isin(indices, np.fromiter(per_text, dtype=np.int64)))
    rows: dict[str, list[int]] = {}
    for at in hit_rows.tolist():
        row = int(rest[at])
        for kind, token in per_text[int(indices[at])]:
            rows.setdefault(kind, []).append(row)
            found.tokens.append((row, kind, token))
    found.rows = {kind: np.unique(np.array(hit, dtype=np.int64)) for kind, hit in rows.items()}
    return found
