"""Unit tests for masking.fakes: determinism, shape, limits, uniqueness and coherence.

Every test that covers "each kind" is parametrized from ``KINDS x LOCALES``, so a new kind
cannot go untested.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
from datetime import date
from urllib.parse import urlsplit

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from masking.errors import TransformError
from masking.fakes import (
    KINDS,
    LOCALES,
    MAX_AGE,
    MIN_AGE,
    REFERENCE_DATE,
    RESERVED_DOMAINS,
    can_be_unique,
    check_kind,
    fake_values,
    kinds_for,
)

ALL_PAIRS = [(kind, locale) for kind in sorted(KINDS) for locale in sorted(LOCALES)]
SUPPORTED = [(kind, locale) for kind, locale in ALL_PAIRS if kind in kinds_for(locale)]
UNIQUE = [(kind, locale) for kind, locale in SUPPORTED if can_be_unique(kind)]
MAX_DIGEST = 2**64 - 1


def ids(pairs):
    return [f"{kind}-{locale}" for kind, locale in pairs]


def digest_array(values) -> np.ndarray:
    return np.array(values, dtype=np.uint64)


@pytest.fixture(scope="module")
def digests() -> np.ndarray:
    rng = np.random.default_rng(20250101)
    edges = digest_array([0, 1, 2, 2**32, 2**63, MAX_DIGEST])
    return np.concatenate([edges, rng.integers(0, MAX_DIGEST, 4000, dtype=np.uint64, endpoint=True)])


@pytest.fixture(scope="module")
def many_digests() -> np.ndarray:
    """200,000 distinct random digests."""
    rng = np.random.default_rng(7)
    values = np.unique(rng.integers(0, MAX_DIGEST, 200_500, dtype=np.uint64, endpoint=True))
    assert len(values) >= 200_000
    return values[:200_000]


def shortest_limit(kind: str, locale: str, unique: bool = False) -> int:
    """Find the smallest max_length fake_values accepts, by asking it."""
    for limit in range(1, 80):
        try:
            fake_values(kind, digest_array([]), locale, unique=unique, max_length=limit)
        except TransformError:
            continue
        return limit
    raise AssertionError(f"{kind}/{locale} refuses every max_length below 80")


# --- kinds and locales -------------------------------------------------------------------------


def test_kinds_cover_the_documented_minimum():
    documented = {
        "name", "first_name", "last_name", "name_kana", "first_name_kana", "last_name_kana", "email",
        "phone", "street_address", "address", "city", "state", "postal_code", "company", "user_name",
        "ipv4", "ipv6", "url", "date_of_birth", "country",
    }  # fmt: skip
    assert documented <= KINDS
    assert LOCALES == {"en_US", "ja_JP"}


@pytest.mark.parametrize(("kind", "locale"), ALL_PAIRS, ids=ids(ALL_PAIRS))
def test_check_kind_accepts_supported_pairs_and_refuses_the_rest(kind, locale):
    if (kind, locale) in SUPPORTED:
        check_kind(kind, locale)
        return
    with pytest.raises(TransformError, match=rf"{kind}.*{locale}.*valid kinds for {locale}: .*name"):
        check_kind(kind, locale)
    with pytest.raises(TransformError):
        fake_values(kind, digest_array([1]), locale)


def test_kana_kinds_exist_only_for_ja_jp():
    assert {"name_kana", "first_name_kana", "last_name_kana"} <= kinds_for("ja_JP")
    assert not {"name_kana", "first_name_kana", "last_name_kana"} & kinds_for("en_US")


def test_when_kind_is_unknown_then_error_lists_valid_kinds():
    expected = r"unknown fake kind 'shoe_size'.*valid kinds for en_US: address, "
    with pytest.raises(TransformError, match=expected):
        check_kind("shoe_size", "en_US")


def test_when_locale_is_unknown_then_error_lists_valid_locales():
    with pytest.raises(TransformError, match=r"unknown fake locale 'de_DE'; valid locales: en_US, ja_JP"):
        fake_values("name", digest_array([1]), "de_DE")


@pytest.mark.parametrize(
    "bad",
    [np.array([1.5]), np.array([[1, 2]], dtype=np.uint64), np.array([-1, 3])],
    ids=["float", "2-D", "signed"],
)
def test_when_digests_are_not_1d_unsigned_then_error_names_the_dtype(bad):
    with pytest.raises(TransformError, match=r"1-D array of unsigned 64-bit integers.*got"):
        fake_values("name", bad)


def test_when_no_digests_then_no_values():
    assert fake_values("email", digest_array([]), "ja_JP", unique=True, max_length=40) == []


# --- determinism and type --------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "locale"), SUPPORTED, ids=ids(SUPPORTED))
def test_values_are_non_empty_strings_one_per_digest(kind, locale, digests):
    values = fake_values(kind, digests, locale)
    assert len(values) == len(digests)
    assert all(type(v) is str and v and v == v.strip() for v in values)


@pytest.mark.parametrize(("kind", "locale"), SUPPORTED, ids=ids(SUPPORTED))
def test_same_digests_give_same_values_whatever_the_batch(kind, locale, digests):
    whole = fake_values(kind, digests, locale)
    assert fake_values(kind, digests, locale) == whole
    split = fake_values(kind, digests[:1234], locale) + fake_values(kind, digests[1234:], locale)
    assert split == whole
    assert fake_values(kind, digests[::-1], locale) == whole[::-1]
    assert fake_values(kind, digests[7:8], locale) == whole[7:8]


@pytest.mark.parametrize(("kind", "locale"), SUPPORTED, ids=ids(SUPPORTED))
def test_values_vary_with_the_digest(kind, locale, digests):
    assert len(set(fake_values(kind, digests, locale))) > 10


def test_values_are_the_same_in_a_fresh_process(digests):
    """Pools come from a fixed seed, so another interpreter (other hash seed) agrees."""
    sample = digests[:50]
    expected = {
        f"{kind}/{locale}/{unique}": fake_values(kind, sample, locale, unique=unique)
        for kind, locale in SUPPORTED
        for unique in ([False, True] if can_be_unique(kind) else [False])
    }
    script = (
        "import json, sys, numpy as np\n"
        "from masking.fakes import fake_values\n"
        "sample = np.array(json.loads(sys.argv[1]), dtype=np.uint64)\n"
        "keys = json.loads(sys.argv[2])\n"
        "out = {k: fake_values(k.split('/')[0], sample, k.split('/')[1], unique=k.split('/')[2] == 'True')"
        " for k in keys}\n"
        "print(json.dumps(out))\n"
    )
    args = [sys.executable, "-c", script, json.dumps(sample.tolist()), json.dumps(sorted(expected))]
    result = subprocess.run(args, capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "12345"})
    assert json.loads(result.stdout) == expected


# --- max_length ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "locale"), SUPPORTED, ids=ids(SUPPORTED))
def test_values_fit_max_length_from_the_shortest_accepted_limit(kind, locale, digests):
    shortest = shortest_limit(kind, locale)
    for limit in sorted({shortest, shortest + 1, shortest + 3, shortest + 8, 20, 40}):
        if limit < shortest:
            continue
        values = fake_values(kind, digests, locale, max_length=limit)
        assert all(v and len(v) <= limit for v in values), limit
        untouched = fake_values(kind, digests, locale)
        assert all(v == u for v, u in zip(values, untouched) if len(u) <= limit)
        bare_hosts = [v for v in values if kind == "url" and v.count("/") == 3]  # "https://host/" is fine
        assert all(v == v.rstrip(" ,.-_/・") for v in values if v not in bare_hosts)


@pytest.mark.parametrize(("kind", "locale"), SUPPORTED, ids=ids(SUPPORTED))
def test_max_length_below_the_shortest_well_formed_value_is_refused_naming_the_limit(kind, locale, digests):
    shortest = shortest_limit(kind, locale)
    if shortest == 1:  # free text (and plain user names) can be cut to any positive length
        assert all(len(v) == 1 for v in fake_values(kind, digests, locale, max_length=1))
        return
    expected = rf"max_length={shortest - 1} is too small .* at least {shortest}"
    with pytest.raises(TransformError, match=expected):
        fake_values(kind, digest_array([5]), locale, max_length=shortest - 1)


@pytest.mark.parametrize("limit", [0, -3, True, 2.5, "12"])
def test_when_max_length_is_not_a_positive_integer_then_error(limit):
    with pytest.raises(TransformError, match="max_length must be a positive integer"):
        fake_values("name", digest_array([5]), max_length=limit)


def test_free_text_kinds_accept_a_limit_of_one_character():
    free_text = {"name", "company", "address", "city", "street_address", "name_kana"}
    assert all(shortest_limit(kind, "ja_JP") == 1 for kind in free_text)


def test_email_keeps_its_domain_when_cut(digests):
    for value in fake_values("email", digests, max_length=14):
        local, _, domain = value.partition("@")
        assert domain in RESERVED_DOMAINS and 1 <= len(local) <= 2


# --- unique ---------------------------------------------------------------------------------------------


def test_uniqueable_kinds_are_exactly_those_with_room_for_a_digest():
    assert {kind for kind in KINDS if can_be_unique(kind)} == {"email", "user_name", "url", "phone", "ipv6"}
    assert not can_be_unique("ipv4") and not can_be_unique("name") and not can_be_unique("no_such_kind")


@pytest.mark.parametrize("kind", sorted(k for k in KINDS if not can_be_unique(k)))
def test_when_kind_cannot_be_unique_then_unique_is_refused(kind):
    locale = "ja_JP" if kind in kinds_for("ja_JP") else "en_US"
    expected = rf"'{kind}' cannot be unique; kinds that can: email, ipv6, phone"
    with pytest.raises(TransformError, match=expected):
        fake_values(kind, digest_array([1]), locale, unique=True)


@pytest.mark.parametrize(("kind", "locale"), UNIQUE, ids=ids(UNIQUE))
def test_unique_values_have_no_duplicates_on_200k_digests(kind, locale, many_digests):
    values = fake_values(kind, many_digests, locale, unique=True)
    assert len(set(values)) == len(values)
    assert fake_values(kind, many_digests[:100], locale, unique=True) == values[:100]


@pytest.mark.parametrize(("kind", "locale"), UNIQUE, ids=ids(UNIQUE))
def test_unique_values_stay_unique_at_the_shortest_accepted_limit(kind, locale, many_digests):
    limit = shortest_limit(kind, locale, unique=True)
    values = fake_values(kind, many_digests, locale, unique=True, max_length=limit)
    assert all(len(v) <= limit for v in values)
    assert len(set(values)) == len(values)
    with pytest.raises(TransformError, match=rf"max_length={limit - 1} is too small for a unique {kind}"):
        fake_values(kind, many_digests[:3], locale, unique=True, max_length=limit - 1)


@pytest.mark.parametrize(("kind", "locale"), UNIQUE, ids=ids(UNIQUE))
def test_unique_values_of_neighbouring_digests_differ(kind, locale):
    neighbours = digest_array([0, 1, 2, 3, 2**63, 2**63 + 1, MAX_DIGEST - 1, MAX_DIGEST])
    values = fake_values(kind, neighbours, locale, unique=True)
    assert len(set(values)) == len(neighbours)


# --- property tests -------------------------------------------------------------------------------------

digest_lists = st.lists(st.integers(0, MAX_DIGEST), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(pair=st.sampled_from(SUPPORTED), values=digest_lists, limit=st.none() | st.integers(1, 60))
def test_property_each_value_depends_only_on_its_own_digest(pair, values, limit):
    kind, locale = pair
    if limit is not None and limit < shortest_limit(kind, locale):
        limit = None
    batch = fake_values(kind, digest_array(values), locale, max_length=limit)
    singles = [fake_values(kind, digest_array([v]), locale, max_length=limit)[0] for v in values]
    assert batch == singles
    assert all(limit is None or len(v) <= limit for v in batch)


@settings(max_examples=150, deadline=None)
@given(pair=st.sampled_from(UNIQUE), a=st.integers(0, MAX_DIGEST), b=st.integers(0, MAX_DIGEST),
       data=st.data())
def test_property_unique_values_differ_when_digests_differ(pair, a, b, data):
    kind, locale = pair
    limit = data.draw(st.none() | st.integers(shortest_limit(kind, locale, unique=True), 60))
    first, second = fake_values(kind, digest_array([a, b]), locale, unique=True, max_length=limit)
    assert (first == second) == (a == b)


# --- reserved domains and ranges ----------------------------------------------------------------------


@pytest.mark.parametrize("unique", [False, True])
@pytest.mark.parametrize("locale", sorted(LOCALES))
def test_emails_use_only_reserved_domains(locale, unique, digests):
    for value in fake_values("email", digests, locale, unique=unique):
        assert re.fullmatch(r"[a-z0-9]+([._]?[a-z0-9]+)*@example\.(com|net|org)", value), value


@pytest.mark.parametrize("unique", [False, True])
@pytest.mark.parametrize("locale", sorted(LOCALES))
def test_urls_use_only_reserved_hosts(locale, unique, digests):
    for value in fake_values("url", digests, locale, unique=unique):
        parts = urlsplit(value)
        assert parts.scheme == "https" and parts.hostname in {f"www.{d}" for d in RESERVED_DOMAINS}, value


@pytest.mark.parametrize("locale", sorted(LOCALES))
def test_ipv4_addresses_come_from_documentation_networks(locale, digests):
    networks = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
    for value in fake_values("ipv4", digests, locale):
        address = ipaddress.IPv4Address(value)
        assert any(address in net for net in networks) and str(address) == value


@pytest.mark.parametrize("unique", [False, True])
def test_ipv6_addresses_are_canonical_and_in_documentation_prefix(unique, digests):
    zero_first_group = digest_array([0, 1, 2**48 - 1])  # exercise the ipaddress fallback too
    documentation = ipaddress.ip_network("2001:db8::/32")
    for value in fake_values("ipv6", np.concatenate([digests, zero_first_group]), unique=unique):
        address = ipaddress.IPv6Address(value)
        assert address in documentation and address.compressed == value


@pytest.mark.parametrize(
    ("locale", "unique", "pattern"),
    [
        ("en_US", False, r"\+1-555-\d{3}-\d{4}"),
        ("en_US", True, r"\+1-555-\d{3}-\d{4} x\d{13}"),
        ("ja_JP", False, r"(090|080|070)-\d{4}-\d{4}|0[36]-\d{4}-\d{4}"),
        ("ja_JP", True, r"((090|080|070)-\d{4}-\d{4}|0[36]-\d{4}-\d{4}) x\d{12}"),
    ],
)
def test_phone_numbers_have_the_locale_format(locale, unique, pattern, digests):
    assert all(re.fullmatch(pattern, v) for v in fake_values("phone", digests, locale, unique=unique))


@pytest.mark.parametrize(("locale", "pattern"), [("en_US", r"\d{5}"), ("ja_JP", r"\d{3}-\d{4}")])
def test_postal_codes_have_the_locale_format(locale, pattern, digests):
    assert all(re.fullmatch(pattern, v) for v in fake_values("postal_code", digests, locale))


@pytest.mark.parametrize("locale", sorted(LOCALES))
def test_dates_of_birth_are_iso_and_give_adult_ages_at_the_reference_date(locale, digests):
    reference, ages = REFERENCE_DATE, []
    for value in fake_values("date_of_birth", digests, locale):
        born = date.fromisoformat(value)
        assert value == born.isoformat()
        ages.append(reference.year - born.year - ((reference.month, reference.day) < (born.month, born.day)))
    assert MIN_AGE <= min(ages) and max(ages) <= MAX_AGE
    assert max(ages) - min(ages) > 60


# --- coherence within one person --------------------------------------------------------------------


def test_en_us_name_email_and_user_name_describe_one_person(digests):
    firsts, lasts, names, emails, users = (
        fake_values(kind, digests) for kind in ("first_name", "last_name", "name", "email", "user_name")
    )
    for first, last, name, email, user in zip(firsts, lasts, names, emails, users):
        assert name == f"{first} {last}"
        local = email.split("@")[0]
        assert local == user
        assert last.lower() in local and local.startswith(first.lower()[0])


def test_ja_jp_name_and_kana_are_the_same_person_from_faker_pairs(digests):
    from faker.providers.person.ja_JP import Provider

    first_pairs = {(kanji, kana): roman for kanji, kana, roman in Provider.first_name_pairs}
    last_pairs = {(kanji, kana): roman for kanji, kana, roman in Provider.last_name_pairs}
    kinds = ("first_name", "last_name", "first_name_kana", "last_name_kana", "name", "name_kana", "email")
    columns = [fake_values(kind, digests, "ja_JP") for kind in kinds]
    for first, last, first_kana, last_kana, name, name_kana, email in zip(*columns):
        assert (first, first_kana) in first_pairs and (last, last_kana) in last_pairs
        assert name == f"{last} {first}" and name_kana == f"{last_kana} {first_kana}"
        local = email.split("@")[0]
        assert last_pairs[last, last_kana].lower() in local
        assert local.startswith(first_pairs[first, first_kana].lower()[0])


@pytest.mark.parametrize("locale", sorted(LOCALES))
def test_address_is_assembled_from_the_same_digest_parts(locale, digests):
    kinds = ("address", "street_address", "city", "state", "postal_code")
    for address, street, city, state, code in zip(*(fake_values(k, digests, locale) for k in kinds)):
        assert street in address and city in address
        if locale == "ja_JP":
            assert address == f"{state}{city}{street}"
        else:
            assert address.endswith(f" {code}") and address.startswith(f"{street}, {city}, ")


def test_en_us_postal_code_lies_in_the_state_range(digests):
    from faker.providers.address.en_US import Provider

    abbreviations = [abbr for abbr in Provider.states_abbr if abbr != "DC"]
    abbreviation = dict(zip(Provider.states, abbreviations, strict=True))
    for state, code in zip(fake_values("state", digests), fake_values("postal_code", digests)):
        low, high = Provider.states_postcode[abbreviation[state]]
        assert low <= int(code) <= high


# --- the Arrow builders must give exactly what fake_values gives ---------------------------


ARROW_CASES = [(kind, locale, False) for kind, locale in SUPPORTED] + [(kind, locale, True) for kind, locale in UNIQUE]


@pytest.mark.parametrize(("kind", "locale", "unique"), ARROW_CASES, ids=[f"{k}-{l}-{'unique' if u else 'plain'}" for k, l, u in ARROW_CASES])
def test_fake_array_equals_fake_values_value_for_value(kind, locale, unique, digests):
    from masking.fakes import fake_array

    shortest = shortest_limit(kind, locale, unique)
    for limit in [None, shortest, max(shortest, 40)]:
        expected = fake_values(kind, digests, locale, unique=unique, max_length=limit)
        assert fake_array(kind, digests, locale, unique=unique, max_length=limit).to_pylist() == expected, limit


def test_weighted_index_equals_searchsorted_on_cell_edges_and_random_units():
    from masking.fakes import _GRID_BITS, _weighted_index

    rng = np.random.default_rng(3)
    weights = rng.random(1000) ** 4  # uneven, so many grid cells straddle a boundary
    cumulative = np.cumsum(weights) / weights.sum()
    edges = np.arange(1 << 12, dtype=np.float64) * 2.0**-12
    units = np.concatenate([rng.random(200_000), edges, cumulative[:-1], np.nextafter(cumulative[:-1], 0)])
    units = units[units < 1.0]
    assert units.size > 200_000 and _GRID_BITS >= 12
    np.testing.assert_array_equal(_weighted_index(cumulative, units), np.searchsorted(cumulative, units, side="right"))


def test_name_kinds_email_and_street_address_are_assembled_in_c():
    """The equality test above covers the C path only for pairs that have an Arrow builder."""
    from masking.fakes import _ARROW_BUILDERS

    names = {"name", "first_name", "last_name"}
    expected = {(kind, locale) for kind in names for locale in LOCALES}
    expected |= {(f"{kind}_kana", "ja_JP") for kind in names}
    expected |= {("email", "en_US"), ("street_address", "en_US")}
    assert expected <= set(_ARROW_BUILDERS)


def test_assembled_joins_literals_pool_entries_and_sliced_arrays_per_row():
    import pyarrow as pa

    from masking.fakes import _assembled

    pool = np.array(["a", "bé", ""], dtype=object)
    per_row = pa.array(["x", "yy", "zzz", "w"])[1:]  # an offset into the buffers
    out = _assembled(3, "<", (pool, np.array([1, 2, 0])), "|", per_row, ">")
    assert out.to_pylist() == ["<bé|yy>", "<|zzz>", "<a|w>"]
    assert _assembled(0, "x", (pool, np.zeros(0, np.intp))).to_pylist() == []


def test_assemble_refuses_indexes_outside_the_pool_and_text_beyond_int32_offsets():
    import pyarrow as pa
    from _masking_assemble import assemble

    _, offsets, data = pa.array(["a", "bc"]).buffers()
    for index in ([0, 2], [-1, 0]):
        with pytest.raises(ValueError, match="outside its pool"):
            assemble(2, [(offsets, data, np.array(index, np.int64))], np.empty(3, np.int32))
    with pytest.raises(ValueError, match="one int64 per row"):
        assemble(2, [(offsets, data, np.zeros(3, np.int64))], np.empty(3, np.int32))
    with pytest.raises(ValueError, match="must not decrease"):
        assemble(1, [(np.array([0, 9], np.int32), data, None)], np.empty(2, np.int32))
    mebibyte = np.array([0, 1 << 20], np.int32), b"x" * (1 << 20)
    with pytest.raises(ValueError, match="int32 offsets"):  # refused before anything is allocated
        assemble(2100, [(*mebibyte, np.zeros(2100, np.int64))], np.empty(2101, np.int32))
