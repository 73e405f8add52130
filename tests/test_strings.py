"""masking.strings.concatenate: rows joined from literals, arrays and pool entries in one C pass."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from masking.strings import concatenate


def test_concatenate_equals_arrows_element_wise_join_for_every_part_kind():
    words = pa.array(["alpha", "", "ünïcode", "x" * 300, "tab\there"])
    pool = pa.array(["p0", "p1", "p2"])
    index = np.array([2, 0, 1, 1, 0])
    sliced = pa.array(["-", "a", "bb", "ccc", "dddd", "eeeee", "z"]).slice(1, 5)

    out = concatenate(5, "(", words, "|", (pool, index), b"|", sliced, ")")

    expected = pc.binary_join_element_wise("(", words, "|", pool.take(pa.array(index)), "|", sliced, ")", "")
    assert out.to_pylist() == expected.to_pylist()
    assert out.type == pa.string()


@pytest.mark.parametrize(
    "parts, message",
    [
        ((pa.array(["a", None]),), "no nulls"),
        ((pa.array(["a", "b"], pa.large_string()),), "type string"),
        (((pa.array(["a"]), np.array([0, 1])),), "outside its pool"),
    ],
    ids=["nulls", "large-string", "index-outside-pool"],
)
def test_concatenate_refuses_parts_it_cannot_join(parts, message):
    with pytest.raises(ValueError, match=message):
        concatenate(2, *parts)
