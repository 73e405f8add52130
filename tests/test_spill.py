"""Spilled sets: partitioned on disk, they must answer exactly what the in-memory arrays did."""

from __future__ import annotations

import numpy as np
import pytest

from expectations import spill

RNG = np.random.default_rng(20261204)


def random_u64(n: int) -> np.ndarray:
    return RNG.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)


@pytest.mark.parametrize("rows, expected", [(0, 1), (1, 1), (spill.PARTITION_TARGET, 1), (spill.PARTITION_TARGET + 1, 2),
                                            (10 * spill.PARTITION_TARGET, 16), (10**12, spill.MAX_PARTITIONS)])
def test_partition_count_is_a_power_of_two_sized_for_the_rows(rows, expected):
    assert spill.partitions_for(rows) == expected


@pytest.mark.parametrize("partitions", [1, 8])
def test_values_come_back_by_top_bits_with_their_rows_across_flushes(tmp_path, monkeypatch, partitions):
    monkeypatch.setattr(spill, "BUFFER_VALUES", 1000)  # several flushes per partition
    values = random_u64(10_000)
    rows = np.arange(values.size, dtype=np.int64) * 3
    spilled = spill.PartitionedSet(tmp_path, partitions, with_rows=True)
    for lo in range(0, values.size, 700):
        spilled.add(values[lo:lo + 700], rows[lo:lo + 700])

    back = [(spilled.values(p), spilled.rows(p)) for p in range(partitions)]

    assert spilled.count == values.size
    assert sum(v.size for v, _ in back) == values.size
    shift = np.uint64(64 - (partitions.bit_length() - 1)) if partitions > 1 else None
    for p, (part, part_rows) in enumerate(back):
        if shift is not None:
            assert ((part >> shift) == p).all()
        np.testing.assert_array_equal(values[part_rows // 3], part)


def test_rows_are_required_exactly_when_declared(tmp_path):
    with pytest.raises(ValueError, match="with_rows"):
        spill.PartitionedSet(tmp_path / "a", 2).add(random_u64(3), np.arange(3))
    with pytest.raises(ValueError, match="with_rows"):
        spill.PartitionedSet(tmp_path / "b", 2, with_rows=True).add(random_u64(3))
    with pytest.raises(ValueError, match="power of two"):
        spill.PartitionedSet(tmp_path / "c", 3)


def test_duplicates_and_joins_per_partition_equal_the_whole_array_answers(tmp_path):
    values = np.concatenate([random_u64(5000), random_u64(200)[np.arange(600) % 200]])
    children = np.concatenate([values[:3000], random_u64(25)])
    parents, kids = spill.PartitionedSet(tmp_path / "p", 16), spill.PartitionedSet(tmp_path / "c", 16)
    parents.add(values)
    kids.add(children)

    duplicates = sum(spill.duplicate_rows(parents.values(p)) for p in range(16))
    dangling = sum(spill.count_missing(kids.values(p), parents.sorted_unique(p)) for p in range(16))

    assert duplicates == spill.duplicate_rows(values) == 600
    assert dangling == int((~np.isin(children, values)).sum()) == 25


@pytest.mark.parametrize("hits", [0, 1, 7, 3000, 10_000])
def test_membership_and_missing_counts_equal_numpy_isin(hits):
    """No hit, a few (the gate's probes), and all of them (foreign keys), with repeats."""
    known = random_u64(5000)
    values = random_u64(10_000)
    values[:hits] = known[np.arange(hits) % 40]  # repeated hits
    RNG.shuffle(values)
    expected = np.isin(values, known)
    ordered_set = spill.sorted_unique(known)

    np.testing.assert_array_equal(spill.member(values, ordered_set), expected)
    assert spill.count_missing(values, ordered_set) == int((~expected).sum()) == values.size - hits
    assert not spill.member(values, known[:0]).any()
    assert spill.member(values[:0], ordered_set).size == 0
    assert spill.count_missing(values, known[:0]) == values.size
    assert spill.count_missing(values[:0], ordered_set) == 0


def test_bloom_filter_has_no_false_negatives_and_few_false_positives():
    members = random_u64(200_000)
    bloom = spill.BloomFilter(members.size)
    bloom.add(members)

    assert bloom.may_contain(members).all()
    assert bloom.may_contain(random_u64(200_000)).mean() < 0.01


def test_bloom_filter_sets_exactly_the_bits_of_its_values_when_many_share_a_byte():
    bloom = spill.BloomFilter(10)  # the smallest filter: 2**19 bits for 4 * 300,000 positions
    members = random_u64(300_000)
    bloom.add(members)
    bloom.add(members[:0])

    expected = np.zeros(bloom.nbytes * 8, dtype=bool)
    for pos in bloom._positions(members):
        expected[pos] = True
    np.testing.assert_array_equal(bloom._bits, np.packbits(expected, bitorder="little"))


def test_bloom_filter_answers_as_its_bit_positions_say():
    bloom = spill.BloomFilter(50_000)
    members = random_u64(50_000)
    bloom.add(members)
    asked = np.concatenate([members[::7], random_u64(100_000)])[::-1]  # a strided, reversed view

    expected = np.ones(asked.size, dtype=bool)
    bits = np.unpackbits(bloom._bits, bitorder="little").astype(bool)
    for pos in bloom._positions(asked):
        expected &= bits[pos]
    np.testing.assert_array_equal(bloom.may_contain(asked), expected)
    assert bloom.may_contain(asked[:0]).shape == (0,)


def test_bloom_kernels_refuse_buffers_that_do_not_fit():
    import _gate_bloom

    bits = np.zeros(1 << 10, dtype=np.uint8)  # 2**13 bits: a shift of 51 addresses them
    values, mixes = random_u64(10), spill.BloomFilter._MIX
    with pytest.raises(ValueError, match="smaller than the shift"):
        _gate_bloom.add(bits, values, mixes, 50)
    with pytest.raises(ValueError, match="shift must be"):
        _gate_bloom.add(bits, values, mixes, 0)
    with pytest.raises(ValueError, match="one byte per value"):
        _gate_bloom.test(bits, values, mixes, 51, np.zeros(9, dtype=bool))
    with pytest.raises(ValueError, match="uint64"):
        _gate_bloom.add(bits, values.view(np.uint8)[:13], mixes, 51)
    with pytest.raises(TypeError):
        _gate_bloom.add(bytes(bits), values, mixes, 51)  # read-only bits
    _gate_bloom.add(bits, values, mixes, 51)
    assert bits.any()


def test_member_answers_in_the_order_asked_for_unsorted_and_repeated_values():
    known = np.sort(random_u64(1000))
    asked = np.concatenate([known[::-3], random_u64(50), known[:10], known[:10]])
    RNG.shuffle(asked)

    expected = np.array([v in set(known.tolist()) for v in asked.tolist()])
    np.testing.assert_array_equal(spill.member(asked, known), expected)
    assert not spill.member(asked, known[:0]).any()


def test_bloom_filter_memory_is_capped():
    assert spill.BloomFilter(10**9, max_bytes=1 << 20).nbytes == 1 << 20
    assert spill.BloomFilter(10).nbytes == 1 << 16


def test_probes_report_each_hit_row_once_and_nothing_else(tmp_path):
    members = spill.fill(spill.PartitionedSet(tmp_path / "m", 4), [random_u64(3000), random_u64(3000)])
    known = np.concatenate([members.values(p) for p in range(4)])
    probes = spill.Probes(tmp_path / "q", 4, members, spill.bloom_of(members))
    strangers = random_u64(5000)

    probes.ask(("t", "a"), np.concatenate([known[:10], strangers]), np.concatenate([np.arange(10), np.arange(5000) + 100]))
    probes.ask(("t", "a"), known[5:15], np.arange(5, 15))  # rows 5..9 hit twice
    probes.ask(("t", "b"), strangers, np.arange(5000))

    hits = probes.hit_rows()
    assert hits[("t", "a")].tolist() == list(range(15))
    assert hits.get(("t", "b"), np.zeros(0)).size == 0
