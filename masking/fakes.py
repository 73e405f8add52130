"""Deterministic, vectorized fake values chosen by keyed digests.

Callers hash each original value once with :meth:`masking.keys.MaskingKey.digests64` and pass
the digests here; this module never sees keys or original values. Every output is a pure
function of ``(digest, kind, locale, unique)`` and the installed Faker version: the same digest
gives the same fake in any batch, process or call order.

Faker is far too slow to call per row (70-170 µs a value), so it is used only to build small
value pools once per (kind, locale), from Faker's provider data or from a Faker seeded with a
fixed seed. Pools are de-duplicated and sorted, so their order does not depend on how they were
generated. Rows then pick pool entries by digest with numpy indexing.

Every part of a fake (first name, last name, street, city, ...) is picked through its own
component of the digest, and kinds that share a part share its component. So for one digest
``name == first_name + " " + last_name`` (``last_name + " " + first_name`` for ja_JP, with
``name_kana`` the reading of the same person), ``email`` and ``user_name`` are spelt from that
same person, and ``address`` is assembled from the same ``street_address``, ``city``, ``state``
and ``postal_code``. A masked customer whose columns share one digest therefore looks coherent.

Fakes never point at real people or hosts: emails and URLs use the RFC 2606 domains
``example.com``, ``example.net`` and ``example.org``; IPv4 addresses come from the RFC 5737
documentation networks and IPv6 addresses from ``2001:db8::/32`` (RFC 3849); en_US phone numbers
use the unassigned area code 555.

``unique=True`` (for kinds where :func:`can_be_unique` is true) makes a kind injective on the
64-bit digests: two outputs are equal only when the digests are equal, that is when the keyed
hash itself collided. It does so by embedding a bijective scramble of the whole digest: 13
base32 characters for ``email``, ``user_name`` and ``url``, a 7- or 8-digit number plus a 12- or
13-digit extension for ``phone``, and the 64-bit interface identifier for ``ipv6``. Without
``unique`` outputs collide as often as their pools allow (ja_JP has about 2,500 distinct full
names, en_US about 690,000; an en_US phone has 10**7 values).

Known limitations: ``max_length`` counts characters, not bytes, so a byte-limited column (for
example ``VARCHAR(n)`` in a single-byte charset holding ja_JP text) needs a smaller limit. ja_JP
phone numbers have no fictional range and may belong to real subscribers. Pools change when the
Faker version changes, which changes the fakes (pin Faker to keep outputs stable).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from datetime import date

import numpy as np

from masking.errors import TransformError

log = logging.getLogger(__name__)

LOCALES: frozenset[str] = frozenset({"en_US", "ja_JP"})

POOL_SEED = 20_250_101
"""Seed of every Faker instance that builds a pool; changing it changes every fake."""

POOL_DRAWS = 3000
"""How many values a seeded Faker draws for one pool (before de-duplication)."""

REFERENCE_DATE = date(2025, 1, 1)
"""Ages of fake birth dates are computed at this fixed date, so outputs never drift."""

MIN_AGE, MAX_AGE = 18, 90

RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
DOCUMENTATION_NETS_V4 = ("192.0.2", "198.51.100", "203.0.113")
DOCUMENTATION_PREFIX_V6 = "2001:db8::"



def _own_phone_prefix() -> str:
    return _EN_PHONE.split("#", 1)[0]


def _own_address_prefixes() -> tuple[str, ...]:
    return tuple(f"{net}." for net in DOCUMENTATION_NETS_V4) + (DOCUMENTATION_PREFIX_V6[:-1],)


def is_own_fake(kind: str, text: str) -> bool:
    """Whether ``text`` has the shape this module writes for ``kind`` on reserved ranges.

    Emails at the reserved domains, ``+1-555-`` phones, documentation IP addresses. The
    scrubber uses it to leave its own substitutes alone on a second pass.
    """
    if kind == "email":
        domain = text.rpartition("@")[2].lower()
        return "@" in text and domain in RESERVED_DOMAINS
    if kind == "phone":
        return text.startswith(_own_phone_prefix())
    return text.startswith(_own_address_prefixes())


_RESERVED_MAILBOX = "@(?:" + "|".join(d.replace(".", "\\.") for d in RESERVED_DOMAINS) + ")$"


def own_fake_mask(kind: str, values) -> np.ndarray:
    """:func:`is_own_fake` for every value of an Arrow string array (a null is no fake)."""
    import pyarrow.compute as pc

    if kind == "email":
        # The text after the last "@" is a reserved domain exactly when the text ends in "@" + it.
        hits = pc.match_substring_regex(values, _RESERVED_MAILBOX, ignore_case=True)
    elif kind == "phone":
        hits = pc.starts_with(values, _own_phone_prefix())
    else:
        hits = pc.match_substring_regex(values, "^(?:" + "|".join(re.escape(p) for p in _own_address_prefixes()) + ")")
    return np.asarray(hits.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


CODE_LENGTH = 13
"""Characters of the base32 code that makes unique outputs injective (13 x 5 bits >= 64)."""

_CODE_ALPHABET = b"0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_SEPARATORS = " ,.-_/・"

_EN_PHONE = "+1-555-###-####"
_JA_PHONE_PREFIXES = ("090", "090", "080", "070", "03", "06")
_EN_PHONE_EXT = " x" + "#" * 13  # 10**7 * 10**13 > 2**64: main number + extension hold a digest
_JA_PHONE_EXT = " x" + "#" * 12  # 10**8 * 10**12 > 2**64

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


# --- digest arithmetic ------------------------------------------------------------------------


@functools.cache
def _salt(component: str) -> np.uint64:
    return np.uint64(int.from_bytes(hashlib.blake2b(component.encode(), digest_size=8).digest(), "little"))


def _mix(digests: np.ndarray, component: str) -> np.ndarray:
    """Derive an independent-looking 64-bit value per digest for one component.

    The splitmix64 finalizer is a bijection on 64-bit integers, so for a fixed component the
    result is injective on the digests; unique outputs rely on that.
    """
    z = digests ^ _salt(component)
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _pick(digests: np.ndarray, component: str, size: int, cumulative: np.ndarray | None = None) -> np.ndarray:
    """Return one index below ``size`` per digest, weighted by ``cumulative`` when given."""
    z = _mix(digests, component)
    if cumulative is None:
        return (z % np.uint64(size)).astype(np.intp)
    unit = (z >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.minimum(_weighted_index(cumulative, unit), size - 1)


_GRID_BITS = 20
_GRIDS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _weighted_index(cumulative: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """``np.searchsorted(cumulative, unit, side="right")``, mostly by one table lookup.

    The answer for a unit in grid cell k lies between the answers at the cell's two ends; where
    they are equal (all but a few rows) that is it, elsewhere the search runs for those rows.
    """
    entry = _GRIDS.get(id(cumulative))
    if entry is None or entry[0] is not cumulative:
        edges = np.arange((1 << _GRID_BITS) + 1, dtype=np.float64) * 2.0**-_GRID_BITS
        entry = _GRIDS[id(cumulative)] = (cumulative, np.searchsorted(cumulative, edges, side="right"))
    grid = entry[1]
    cell = (unit * (1 << _GRID_BITS)).astype(np.intp)
    low, high = grid[cell], grid[cell + 1]
    out = low.copy()
    unsure = np.flatnonzero(low != high)
    if unsure.size:
        out[unsure] = np.searchsorted(cumulative, unit[unsure], side="right")
    return out


def _code_chars(digests: np.ndarray) -> np.ndarray:
    """Render a bijective scramble of each digest as CODE_LENGTH base32 characters, one row each."""
    z = _mix(digests, "unique.code")
    alphabet = np.frombuffer(_CODE_ALPHABET, np.uint8)
    chars = np.empty((len(z), CODE_LENGTH), np.uint8)
    for position in range(CODE_LENGTH - 1, -1, -1):
        chars[:, position] = alphabet[(z & np.uint64(31)).astype(np.intp)]
        z = z >> np.uint64(5)
    return chars


def _codes(digests: np.ndarray) -> list[str]:
    """:func:`_code_chars` as Python strings."""
    return _code_chars(digests).view(f"S{CODE_LENGTH}").ravel().astype(f"U{CODE_LENGTH}").tolist()


def _render(rows: int, *segments: str | tuple[str, np.ndarray]) -> np.ndarray:
    """Render ASCII templates whose ``#`` marks take the decimal digits of a value per row.

    A segment is literal text or ``(template, values)``; the last ``#`` of a template gets the
    lowest digit. Values must fit in the template's ``#`` count.
    """
    parts = []
    for segment in segments:
        template, values = (segment, None) if isinstance(segment, str) else segment
        raw = np.frombuffer(template.encode("ascii"), np.uint8)
        block = np.tile(raw, (rows, 1))
        if values is not None:
            remaining = values.astype(np.uint64)
            for position in np.flatnonzero(raw == ord("#"))[::-1]:
                block[:, position] = (remaining % np.uint64(10)).astype(np.uint8) + ord("0")
                remaining = remaining // np.uint64(10)
        parts.append(block)
    buffer = np.ascontiguousarray(np.hstack(parts))
    width = buffer.shape[1]
    return buffer.view(f"S{width}").ravel().astype(f"U{width}").astype(object)


# --- pools --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _People:
    """Name parts of one locale, index-aligned: entry i of every first-name array is one name."""

    first: np.ndarray
    last: np.ndarray
    first_ascii: np.ndarray  # lower-case ASCII spelling for emails and user names
    last_ascii: np.ndarray
    first_kana: np.ndarray | None
    last_kana: np.ndarray | None
    first_cumulative: np.ndarray | None
    last_cumulative: np.ndarray | None


def _cumulative(weights: Sequence[float]) -> np.ndarray:
    total = np.cumsum(np.asarray(weights, dtype=np.float64))
    return total / total[-1]


def _objects(values: Sequence[str]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


@functools.cache
def _people(locale: str) -> _People:
    if locale == "ja_JP":
        from faker.providers.person.ja_JP import Provider

        firsts = sorted(set(Provider.first_name_pairs))
        lasts = sorted(Provider.last_name_pairs.items())
        return _People(
            first=_objects([kanji for kanji, _, _ in firsts]),
            last=_objects([kanji for (kanji, _, _), _ in lasts]),
            first_ascii=_objects([roman.lower() for _, _, roman in firsts]),
            last_ascii=_objects([roman.lower() for (_, _, roman), _ in lasts]),
            first_kana=_objects([kana for _, kana, _ in firsts]),
            last_kana=_objects([kana for (_, kana, _), _ in lasts]),
            first_cumulative=None,
            last_cumulative=_cumulative([weight for _, weight in lasts]),
        )

    from faker.providers.person.en_US import Provider

    firsts = sorted(Provider.first_names.items())
    lasts = sorted(Provider.last_names.items())
    return _People(
        first=_objects([name for name, _ in firsts]),
        last=_objects([name for name, _ in lasts]),
        first_ascii=_objects([name.lower() for name, _ in firsts]),
        last_ascii=_objects([name.lower() for name, _ in lasts]),
        first_kana=None,
        last_kana=None,
        first_cumulative=_cumulative([weight for _, weight in firsts]),
        last_cumulative=_cumulative([weight for _, weight in lasts]),
    )


def _person(digests: np.ndarray, locale: str) -> tuple[_People, np.ndarray, np.ndarray]:
    people = _people(locale)
    first = _pick(digests, "person.first", len(people.first), people.first_cumulative)
    last = _pick(digests, "person.last", len(people.last), people.last_cumulative)
    return people, first, last


@functools.cache
def _faker_pool(locale: str, method: str) -> np.ndarray:
    """Draw POOL_DRAWS values from a Faker seeded with a fixed seed; de-duplicate and sort."""
    from faker import Faker

    started = time.perf_counter()
    fake = Faker(locale)
    fake.seed_instance(POOL_SEED ^ zlib.crc32(f"{locale}/{method}".encode()))
    produce = getattr(fake, method)
    pool = _objects(sorted({produce() for _ in range(POOL_DRAWS)}))
    elapsed = time.perf_counter() - started
    log.debug("built fake pool %s/%s: %d entries in %.3f s", locale, method, len(pool), elapsed)
    return pool


@functools.cache
def _provider_pool(locale: str, module: str, attribute: str) -> np.ndarray:
    """Return a sorted, de-duplicated list from a Faker provider's data."""
    import importlib

    provider = importlib.import_module(f"faker.providers.{module}.{locale}").Provider
    return _objects(sorted(set(getattr(provider, attribute))))


@functools.cache
def _us_states() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return state names, abbreviations, and the first ZIP code and ZIP span of each state."""
    from faker.providers.address.en_US import Provider

    abbreviations = [abbr for abbr in Provider.states_abbr if abbr != "DC"]
    rows = sorted(zip(Provider.states, abbreviations, strict=True))
    low = np.array([Provider.states_postcode[abbr][0] for _, abbr in rows], dtype=np.uint64)
    high = np.array([Provider.states_postcode[abbr][1] for _, abbr in rows], dtype=np.uint64)
    return _objects([n for n, _ in rows]), _objects([a for _, a in rows]), low, high - low + np.uint64(1)


@functools.cache
def _ipv4_pool() -> np.ndarray:
    return _objects([f"{net}.{host}" for net in DOCUMENTATION_NETS_V4 for host in range(1, 255)])


# --- kinds ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Split:
    """Outputs as fixed ``heads`` + truncatable ``stems`` + fixed ``tails`` (per row).

    Tails carry the unique code. When a stem is truncated away, leading separators of the
    tail are dropped with it.
    """

    heads: list[str]
    stems: list[str]
    tails: list[str]


def _first_name(d: np.ndarray, locale: str, unique: bool) -> list[str]:
    people, first, _ = _person(d, locale)
    return people.first[first].tolist()


def _last_name(d: np.ndarray, locale: str, unique: bool) -> list[str]:
    people, _, last = _person(d, locale)
    return people.last[last].tolist()


def _name(d: np.ndarray, locale: str, unique: bool) -> list[str]:
    people, first, last = _person(d, locale)
    firsts, lasts = people.first[first].tolist(), people.last[last].tolist()
    if locale == "ja_JP":
        return [f"{family} {given}" for given, family in zip(firsts, lasts)]
    return [f"{given} {family}" for given, family in zip(firsts, lasts)]


def _first_name_kana(d: np.ndarray, locale: str, unique: bool) -> list[str]:
    people, first, _ = _person(d, locale)
    return people.first_kana[first].tolist()


def _last_name_kana(d: np.ndarray, locale: str, unique: bool) -> list[str]:
    people, _, last = _person(d, locale)
    return people.last_kana[last].tolist()


def _name_kana(d: np.ndarray, locale: str, unique: bool) -> list[str]:
    people, first, last = _person(d, locale)
    givens, families = people.first_kana[first].tolist(), people.last_kana[last].tolist()
    return [f"{family} {given}" for given, family in zip(givens, families)]


def _handle_parts(d: np.ndarray, locale: str, unique: bool) -> tuple[list[tuple[Any, Any]], np.ndarray]:
    """Return the ``(pool, index)`` parts of email and user_name local parts, and each row's style bits."""
    people, first, last = _person(d, locale)
    style = _mix(d, "person.handle")
    initial = ((style & np.uint64(3)) == 0).astype(np.intp)
    parts = [
        (_handle_givens(locale), first + initial * len(people.first)),  # full given names, then initials
        (_HANDLE_SEPARATORS, ((style >> np.uint64(2)) & np.uint64(3)).astype(np.intp)),
        (people.last_ascii, last),
    ]
    if not unique:  # unique handles carry a code instead of a number
        numbered = ((style >> np.uint64(4)) & np.uint64(1)).astype(np.intp)
        numbers = ((style >> np.uint64(8)) % np.uint64(99) + np.uint64(1)).astype(np.intp) * numbered
        parts.append((_handle_numbers(), numbers))
    return parts, style


def _handles(d: np.ndarray, locale: str, unique: bool) -> tuple[list[str], np.ndarray]:
    """Return the local part shared by email and user_name, and the style bits of each row."""
    parts, style = _handle_parts(d, locale, unique)
    return _joined(len(d), *parts), style


_HANDLE_SEPARATORS = np.array([".", ".", "_", ""], dtype=object)


@functools.cache
def _handle_givens(locale: str) -> np.ndarray:
    firsts = _people(locale).first_ascii
    return np.concatenate([firsts, _objects([name[0] for name in firsts])])


@functools.cache
def _handle_numbers() -> np.ndarray:
    return _objects([""] + [str(n) for n in range(1, 100)])


@functools.cache
def _mailbox_domains() -> np.ndarray:
    return _objects([f"@{domain}" for domain in RESERVED_DOMAINS])


def _mailbox_domain(style: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``(pool, index)`` part of each row's ``@domain``, chosen by its handle style bits."""
    return _mailbox_domains(), ((style >> np.uint64(16)) % np.uint64(len(RESERVED_DOMAINS))).astype(np.intp)


def _email(d: np.ndarray, locale: str, unique: bool) -> _Split:
    stems, style = _handles(d, locale, unique)
    domains, index = _mailbox_domain(style)
    domains = domains[index]
    if unique:
        tails = [f".{code}{domain}" for code, domain in zip(_codes(d), domains)]
    else:
        tails = domains.tolist()
    return _Split([""] * len(d), stems, tails)


def _user_name(d: np.ndarray, locale: str, unique: bool) -> _Split:
    stems, _ = _handles(d, locale, unique)
    tails = [f".{code}" for code in _codes(d)] if unique else [""] * len(d)
    return _Split([""] * len(d), stems, tails)


def _url(d: np.ndarray, locale: str, unique: bool) -> _Split:
    words = _provider_pool("en_US", "lorem", "word_list")  # ASCII paths in every locale
    hosts = _objects([f"https://www.{domain}/" for domain in RESERVED_DOMAINS])
    heads = hosts[_pick(d, "url.host", len(hosts))].tolist()
    first = words[_pick(d, "url.word1", len(words))]
    second = words[_pick(d, "url.word2", len(words))]
    stems = [f"{a}/{b}" for a, b in zip(first, second)]
    tails = [f"-{code}" for code in _codes(d)] if unique else [""] * len(d)
    return _Split(heads, stems, tails)


def _phone(d: np.ndarray, locale: str, unique: bool) -> list[str]:
    z = _mix(d, "phone")  # bijective, so main number + extension determine the digest
    if locale == "en_US":
        main, rest = z % np.uint64(10**7), z // np.uint64(10**7)
        segments = [(_EN_PHONE, main)] + ([(_EN_PHONE_EXT, rest)] if unique else [])
        return _render(len(d), *segments).tolist()

    main, rest = z % np.uint64(10**8), z // np.uint64(10**8)
    prefix = _pick(d, "phone.prefix", len(_JA_PHONE_PREFIXES))
    out = np.empty(len(d), dtype=object)
    for index, code in enumerate(_JA_PHONE_PREFIXES):
        rows = prefix == index
        segments = [(f"{code}-####-####", main[rows])] + ([(_JA_PHONE_EXT, rest[rows])] if unique else [])
        out[rows] = _render(int(rows.sum()), *segments)
    return out.tolist()


def _state_index(d: np.ndarray, locale: str) -> np.ndarray:
    if locale == "en_US":
        return _pick(d, "address.state", len(_us_states()[0]))
    return _pick(d, "address.state", len(_provider_pool(locale, "address", "prefectures")))


def _state(d: np.ndarray, locale: str, unique: bool) -> list[str]:
    if locale == "en_US":
        return _us_states()[0][_state_index(d, locale)].tolist()
    return _provider_pool(locale, "address", "prefectures")[_state_index(d, locale)].tolist()


def _city(d: np.ndarray, locale: str, unique: bool) -> list[str]:
    pool = _faker_pool(locale, "city") if locale == "en_US" else _provider_pool(locale, "address", "cities")
    return pool[_pick(d, "address.city", len(pool))].tolist()


def _postal_code(d: np.ndarray, locale: str, unique: bool) -> list[str]:
    z = _mix(d, "address.postal_code")
    if locale == "en_US":  # inside the ZIP range of the row's state, so addresses agree
        _, _, low, span = _us_states()
        state = _state_index(d, locale)
        return _render(len(d), ("#####", low[state] + z % span[state])).tolist()
    return _render(len(d), ("###-####", z % np.uint64(10**7))).tolist()


@functools.cache
def _decimals(limit: int) -> np.ndarray:
    """Return the decimal text of 0 .. limit-1, a pool indexed by the number itself."""
    return _objects([str(n) for n in range(limit)])


@functools.cache
def _us_units() -> np.ndarray:
    """Return "" then every " Apt. n" and every " Suite n" for unit numbers n from 100 to 999."""
    return _objects([""] + [f" {word} {n}" for word in ("Apt.", "Suite") for n in range(100, 1000)])


def _us_street_parts(d: np.ndarray) -> list[Any]:
    """Return the parts of en_US street addresses: ``(pool, index)`` pairs for number, street and unit."""
    z = _mix(d, "address.street")
    extra = _mix(d, "address.unit")
    streets = _faker_pool("en_US", "street_name")
    numbers = (z % np.uint64(9999) + np.uint64(1)).astype(np.intp)
    has_unit = ((extra & np.uint64(3)) == 0).astype(np.intp)
    suite = ((extra >> np.uint64(2)) & np.uint64(1)).astype(np.intp)
    unit = ((extra >> np.uint64(8)) % np.uint64(900)).astype(np.intp)  # unit number - 100
    units = has_unit * (1 + suite * 900 + unit)  # entry 0 of _us_units is "": no unit
    names = _pick(d, "address.street_name", len(streets))
    return [(_decimals(10_000), numbers), " ", (streets, names), (_us_units(), units)]


def _street_address(d: np.ndarray, locale: str, unique: bool) -> list[str]:
    if locale == "en_US":
        return _joined(len(d), *_us_street_parts(d))

    z = _mix(d, "address.street")
    extra = _mix(d, "address.unit")
    has_unit = (extra & np.uint64(3)) == 0
    units = np.full(len(d), "", dtype=object)
    unit_numbers = (extra[has_unit] >> np.uint64(8)) % np.uint64(900) + np.uint64(100)
    towns = _provider_pool(locale, "address", "towns")
    buildings = _provider_pool(locale, "address", "building_names")
    town = towns[_pick(d, "address.town", len(towns))]
    chome = (z % np.uint64(42) + np.uint64(1)).tolist()
    ban = ((z >> np.uint64(8)) % np.uint64(27) + np.uint64(1)).tolist()
    gou = ((z >> np.uint64(16)) % np.uint64(20) + np.uint64(1)).tolist()
    unit_bits = extra[has_unit]
    unit_town = towns[((unit_bits >> np.uint64(20)) % np.uint64(len(towns))).astype(np.intp)]
    unit_building = buildings[((unit_bits >> np.uint64(40)) % np.uint64(len(buildings))).astype(np.intp)]
    units[has_unit] = [f" {t}{b}{n}" for t, b, n in zip(unit_town, unit_building, unit_numbers.tolist())]
    return [f"{t}{c}丁目{b}番{g}号{u}" for t, c, b, g, u in zip(town, chome, ban, gou, units)]


def _address(d: np.ndarray, locale: str, unique: bool) -> list[str]:
    streets, cities = _street_address(d, locale, unique), _city(d, locale, unique)
    if locale == "en_US":
        states = _us_states()[1][_state_index(d, locale)]
        codes = _postal_code(d, locale, unique)
        return [f"{s}, {c}, {st} {z}" for s, c, st, z in zip(streets, cities, states, codes)]
    return [f"{st}{c}{s}" for st, c, s in zip(_state(d, locale, unique), cities, streets)]


def _company(d: np.ndarray, locale: str, unique: bool) -> list[str]:
    pool = _faker_pool(locale, "company")
    return pool[_pick(d, "company", len(pool))].tolist()


def _country(d: np.ndarray, locale: str, unique: bool) -> list[str]:
    pool = _provider_pool(locale, "address", "countries")
    return pool[_pick(d, "country", len(pool))].tolist()


def _ipv4(d: np.ndarray, locale: str, unique: bool) -> list[str]:
    pool = _ipv4_pool()
    return pool[_pick(d, "ipv4", len(pool))].tolist()


def _ipv6(d: np.ndarray, locale: str, unique: bool) -> list[str]:
    import ipaddress

    z = _mix(d, "ipv6")  # bijective: the 64-bit interface identifier determines the digest
    hexes = _hex_groups()
    shifts = (48, 32, 16, 0)
    groups = [hexes[((z >> np.uint64(s)) & np.uint64(0xFFFF)).astype(np.intp)].tolist() for s in shifts]
    out = [f"{DOCUMENTATION_PREFIX_V6}{a}:{b}:{c}:{e}" for a, b, c, e in zip(*groups)]
    # A zero first group would lengthen the zero run; let ipaddress print the RFC 5952 form.
    for row in np.flatnonzero((z >> np.uint64(48)) == 0).tolist():
        out[row] = ipaddress.IPv6Address(out[row]).compressed
    return out


@functools.cache
def _hex_groups() -> np.ndarray:
    return _objects([f"{group:x}" for group in range(1 << 16)])


@functools.cache
def _birth_dates() -> np.ndarray:
    """Every ISO date of birth whose age at REFERENCE_DATE lies in [MIN_AGE, MAX_AGE]."""
    earliest = np.datetime64(REFERENCE_DATE.replace(year=REFERENCE_DATE.year - MAX_AGE - 1), "D") + 1
    latest = np.datetime64(REFERENCE_DATE.replace(year=REFERENCE_DATE.year - MIN_AGE), "D")
    return np.arange(earliest, latest + 1).astype(str).astype(object)


def _date_of_birth(d: np.ndarray, locale: str, unique: bool) -> list[str]:
    pool = _birth_dates()
    return pool[_pick(d, "date_of_birth", len(pool))].tolist()


@dataclass(frozen=True)
class _Kind:
    build: Callable[[np.ndarray, str, bool], list[str] | _Split]
    shape: str  # "text": truncate freely; "split": see _Split; "atomic": never truncated
    locales: frozenset[str] = LOCALES
    unique: bool = False
    min_stem: int = 0  # shortest stem a split kind may be cut to when not unique


_JA = frozenset({"ja_JP"})

_KINDS: dict[str, _Kind] = {
    "name": _Kind(_name, "text"),
    "first_name": _Kind(_first_name, "text"),
    "last_name": _Kind(_last_name, "text"),
    "name_kana": _Kind(_name_kana, "text", _JA),
    "first_name_kana": _Kind(_first_name_kana, "text", _JA),
    "last_name_kana": _Kind(_last_name_kana, "text", _JA),
    "email": _Kind(_email, "split", unique=True, min_stem=1),
    "user_name": _Kind(_user_name, "split", unique=True, min_stem=1),
    "url": _Kind(_url, "split", unique=True),
    "phone": _Kind(_phone, "atomic", unique=True),
    "street_address": _Kind(_street_address, "text"),
    "address": _Kind(_address, "text"),
    "city": _Kind(_city, "text"),
    "state": _Kind(_state, "text"),
    "postal_code": _Kind(_postal_code, "atomic"),
    "company": _Kind(_company, "text"),
    "country": _Kind(_country, "text"),
    "ipv4": _Kind(_ipv4, "atomic"),
    "ipv6": _Kind(_ipv6, "atomic", unique=True),
    "date_of_birth": _Kind(_date_of_birth, "atomic"),
}

KINDS: frozenset[str] = frozenset(_KINDS)


def kinds_for(locale: str) -> frozenset[str]:
    """Return the kinds available in ``locale`` (kana kinds exist only for ja_JP)."""
    return frozenset(name for name, kind in _KINDS.items() if locale in kind.locales)


def can_be_unique(kind: str) -> bool:
    """Return whether ``unique=True`` is supported: outputs injective on the 64-bit digests.

    True for ``email``, ``user_name``, ``url``, ``phone`` (with an extension carrying the rest
    of the digest) and ``ipv6``. Names, addresses and the like are False: making them unique
    needs a visible disambiguator; ``ipv4`` has only 762 documentation addresses.
    """
    spec = _KINDS.get(kind)
    return bool(spec and spec.unique)


def check_kind(kind: str, locale: str) -> None:
    """Raise TransformError unless ``kind`` can be faked in ``locale``."""
    if locale not in LOCALES:
        raise TransformError(f"unknown fake locale {locale!r}; valid locales: {', '.join(sorted(LOCALES))}")
    spec = _KINDS.get(kind)
    if spec is None or locale not in spec.locales:
        problem = "unknown fake kind" if spec is None else "fake kind not available in this locale:"
        raise TransformError(
            f"{problem} {kind!r} (locale {locale!r}); valid kinds for {locale}: "
            f"{', '.join(sorted(kinds_for(locale)))}"
        )


def fake_values(
    kind: str,
    digests: np.ndarray,
    locale: str = "en_US",
    *,
    unique: bool = False,
    max_length: int | None = None,
) -> list[str]:
    """Return one fake ``kind`` value per 64-bit digest, a pure function of each digest.

    ``unique=True`` makes outputs injective on the digests (equal outputs only for equal
    digests); see :func:`can_be_unique`. ``max_length`` caps every output in characters: free
    text is cut and trailing separators dropped; emails, user names and URLs shorten their
    name part but keep their domain and any unique code; phone numbers, IP addresses, postal
    codes and dates are never cut.

    Raises TransformError for an unknown kind or locale, for ``unique=True`` on a kind that
    cannot be unique, for digests that are not a 1-D unsigned integer array, and when
    ``max_length`` is too small for the kind whatever the digests are.

    Known limitations: ``max_length`` counts characters, not bytes; see the module docstring.
    """
    check_kind(kind, locale)
    spec = _KINDS[kind]
    if unique and not spec.unique:
        uniques = sorted(name for name, k in _KINDS.items() if k.unique)
        raise TransformError(
            f"fake kind {kind!r} cannot be unique; kinds that can: {', '.join(uniques)}. "
            "Use a hash-style transform for unique columns of other kinds."
        )
    if max_length is not None:
        _check_max_length(kind, locale, unique, max_length)
    d = _as_digests(digests)
    if len(d) == 0:
        return []

    built = spec.build(d, locale, unique)
    if isinstance(built, _Split):
        return _join(built, max_length)
    if max_length is None or spec.shape == "atomic":
        return built
    return [v if len(v) <= max_length else _cut(v, max_length) for v in built]


def fake_array(
    kind: str,
    digests: np.ndarray,
    locale: str = "en_US",
    *,
    unique: bool = False,
    max_length: int | None = None,
):
    """:func:`fake_values` as an Arrow string array, equal value for value.

    Kinds in ``_ARROW_BUILDERS`` are assembled from their pools by :func:`_assembled` in C, with
    no Python string per value; a value longer than ``max_length`` is made again by
    :func:`fake_values` (a pure function of its digest). Other kinds go through
    :func:`fake_values`.
    """
    import pyarrow as pa

    builder = _ARROW_BUILDERS.get((kind, locale))
    if builder is None:
        return pa.array(fake_values(kind, digests, locale, unique=unique, max_length=max_length), pa.string())
    fake_values(kind, np.zeros(0, np.uint64), locale, unique=unique, max_length=max_length)  # the same argument checks
    d = _as_digests(digests)
    out = builder(d, unique)
    if max_length is not None and len(d):
        import pyarrow.compute as pc

        long = np.asarray(pc.greater(pc.utf8_length(out), max_length).to_numpy(zero_copy_only=False), dtype=bool)
        if long.any():
            cut = fake_values(kind, d[long], locale, unique=unique, max_length=max_length)
            out = pc.replace_with_mask(out, pa.array(long), pa.array(cut, pa.string()))
    return out


_ARROW_POOLS: dict[int, tuple[np.ndarray, Any]] = {}


def _arrow_pool(pool: np.ndarray):
    """``pool`` as an Arrow string array, converted once (pools are cached arrays)."""
    import pyarrow as pa

    entry = _ARROW_POOLS.get(id(pool))
    if entry is None or entry[0] is not pool:
        entry = _ARROW_POOLS[id(pool)] = (pool, pa.array(pool.tolist(), pa.string()))
    return entry[1]


def _assembled(rows: int, *parts):
    """Concatenate ``parts`` per row into an Arrow string array (see :func:`masking.strings.concatenate`).

    A part is literal text, a ``(pool, index)`` pair (a cached pool array and a pool index per row) or an
    Arrow string array of ``rows`` values (row i takes value i).
    """
    from masking.strings import concatenate

    return concatenate(rows, *((_arrow_pool(p[0]), p[1]) if isinstance(p, tuple) else p for p in parts))


def _joined(rows: int, *parts: str | tuple[np.ndarray, np.ndarray]) -> list[str]:
    """:func:`_assembled` as Python strings, for literal and ``(pool, index)`` parts."""
    columns = [[part] * rows if isinstance(part, str) else part[0][part[1]].tolist() for part in parts]
    return ["".join(row) for row in zip(*columns)]


def _code_array(digests: np.ndarray):
    """:func:`_code_chars` as an Arrow array, its characters written straight into the data buffer."""
    import pyarrow as pa

    chars = _code_chars(digests)
    offsets = np.arange(len(chars) + 1, dtype=np.int32) * np.int32(CODE_LENGTH)
    return pa.Array.from_buffers(pa.string(), len(chars), [None, pa.py_buffer(offsets), pa.py_buffer(chars)])


def _arrow_email(d: np.ndarray, unique: bool):
    """:func:`_email` for en_US, in Arrow."""
    parts, style = _handle_parts(d, "en_US", unique)
    code = [".", _code_array(d)] if unique else []
    return _assembled(len(d), *parts, *code, _mailbox_domain(style))


def _arrow_street_address(d: np.ndarray, unique: bool):
    """:func:`_street_address` for en_US, in Arrow."""
    return _assembled(len(d), *_us_street_parts(d))


def _arrow_person(d: np.ndarray, unique: bool, *, locale: str, fields: tuple[str, ...]):
    """Name kinds in Arrow: the person's name ``fields`` (``_People`` attributes), separated by spaces."""
    people, first, last = _person(d, locale)
    parts: list[Any] = []
    for field in fields:
        parts += [" ", (getattr(people, field), first if field.startswith("first") else last)]
    return _assembled(len(d), *parts[1:])


_PERSON_FIELDS = {  # as _name and the other name kinds spell them; ja_JP names put the family first
    ("name", "en_US"): ("first", "last"),
    ("name", "ja_JP"): ("last", "first"),
    ("first_name", "en_US"): ("first",),
    ("first_name", "ja_JP"): ("first",),
    ("last_name", "en_US"): ("last",),
    ("last_name", "ja_JP"): ("last",),
    ("name_kana", "ja_JP"): ("last_kana", "first_kana"),
    ("first_name_kana", "ja_JP"): ("first_kana",),
    ("last_name_kana", "ja_JP"): ("last_kana",),
}

_ARROW_BUILDERS = {
    ("email", "en_US"): _arrow_email,
    ("street_address", "en_US"): _arrow_street_address,
    **{
        pair: functools.partial(_arrow_person, locale=pair[1], fields=fields)
        for pair, fields in _PERSON_FIELDS.items()
    },
}


def _cut(value: str, max_length: int) -> str:
    """Cut free text to max_length without leaving a dangling separator."""
    return value[:max_length].rstrip(_SEPARATORS) or value[:max_length]


def _as_digests(digests: np.ndarray) -> np.ndarray:
    array = np.asarray(digests)
    if array.ndim != 1 or array.dtype.kind != "u":
        raise TransformError(
            f"digests must be a 1-D array of unsigned 64-bit integers (MaskingKey.digests64); "
            f"got {array.ndim}-D dtype {array.dtype}"
        )
    return array.astype(np.uint64, copy=False)


def _join(split: _Split, max_length: int | None) -> list[str]:
    out = [h + s + t for h, s, t in zip(split.heads, split.stems, split.tails)]
    if max_length is None:
        return out
    lengths = np.fromiter(map(len, out), dtype=np.int64, count=len(out))
    for row in np.flatnonzero(lengths > max_length).tolist():
        head, stem, tail = split.heads[row], split.stems[row], split.tails[row]
        stem = stem[: max(max_length - len(head) - len(tail), 0)].rstrip(_SEPARATORS)
        out[row] = head + stem + (tail if stem else tail.lstrip(_SEPARATORS))
    return out


@functools.cache
def _shortest_allowed(kind: str, locale: str, unique: bool) -> int:
    """Return the smallest max_length the kind can honour for every digest.

    Head and tail widths of split kinds and the width of atomic kinds are the same for every
    digest, except where a pool or prefix varies; those are measured over the whole pool.
    """
    spec = _KINDS[kind]
    if kind == "ipv4":
        return max(len(value) for value in _ipv4_pool())
    if kind == "ipv6":
        return len(DOCUMENTATION_PREFIX_V6 + "ffff:ffff:ffff:ffff")
    if kind == "phone" and locale == "ja_JP":
        widest = max(len(f"{code}-####-####") for code in _JA_PHONE_PREFIXES)
        return widest + (len(_JA_PHONE_EXT) if unique else 0)
    probe = spec.build(np.zeros(1, dtype=np.uint64), locale, unique)
    if isinstance(probe, _Split):
        fixed = len(probe.heads[0]) + len(probe.tails[0].lstrip(_SEPARATORS) if unique else probe.tails[0])
        return fixed + (0 if unique else spec.min_stem)
    return len(probe[0]) if spec.shape == "atomic" else 1


def _check_max_length(kind: str, locale: str, unique: bool, max_length: int) -> None:
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise TransformError(f"max_length must be a positive integer; got {max_length!r}")
    needed = _shortest_allowed(kind, locale, unique)
    if max_length < needed:
        what = f"{'unique ' if unique else ''}{kind} ({locale})"
        raise TransformError(
            f"max_length={max_length} is too small for a {what}: it needs at least {needed} characters "
            f"to stay well-formed{' and keep its disambiguating code' if unique else ''}; raise the "
            "column limit or use a shorter kind"
        )
