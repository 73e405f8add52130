"""The validation gate on synthetic Arrow data with real Great Expectations (nothing mocked).

Each leak test plants one kind of leak in an otherwise clean snapshot and asserts which
check fired, so a check that fires for the wrong reason cannot pass the test.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest

from expectations import ColumnInput, SuiteError, TableInput, build_suite, failures, load_suite, save_suite
from expectations import validate_snapshot, write_report
from masking.detectors import DETECTORS
from masking.keys import MaskingKey, fingerprints

KEY = MaskingKey.demo()
LEAK_EMAIL = "leak.person@realmail.test"
LEAK_CARD = "4111 1111 1111 1111"
LEAK_AWS = "AKIAIOSFODNN7EXAMPLE"

# Original (pre-masking) values of the customers table; the published copy holds fakes.
ORIGINAL_EMAILS = [f"real.person{i}@realmail.test" for i in range(6)]
ORIGINAL_FIRST = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank"]
ORIGINAL_NAMES = [f"{first} Realperson" for first in ORIGINAL_FIRST]
SAFE_NOTES = [
    "Order ORD-2024-000123 shipped at 2024-05-01T10:15:00Z",
    "Upgraded client to v3.3.2, build 2024.05.01",
    "Ticket 7f1d3c9e-2a4b-4c8d-9e0f-1a2b3c4d5e6f closed",
    "Customer wrote to jane.doe@example.com, call +1-555-201-3344",
    "Invoice 20240501123456 paid; ref 0042-7781",
    None,
]


def _batches(table: pa.Table, size: int = 2):
    return lambda: iter(table.to_batches(max_chunksize=size))


def _row_fps(originals: dict[str, list]):
    def lookup(column: str):
        values = originals.get(column)
        if values is None:
            return None
        out = fingerprints(KEY, [v if v is not None else "" for v in values])
        out[[v is None for v in values]] = 0
        return out

    return lookup


def customers(**overrides) -> TableInput:
    data = {
        "id": [1, 2, 3, 4, 5, 6],
        "email": [f"user{i}.x7k2@example.com" for i in range(6)],
        "first_name": ["Zoe", "Yann", "Xena", "Walt", "Vera", "Umar"],
        "name": ["Zoe Fake", "Yann Fake", "Xena Fake", "Walt Fake", "Vera Fake", "Umar Fake"],
        "note": SAFE_NOTES,
        "profile": ['{"plan": "pro", "since": "2021-03-04"}'] * 5 + ['{"tags": ["a", "b"]}'],
        "uuid": [f"00000000-0000-4000-8000-00000000000{i}" for i in range(6)],
    }
    data.update(overrides.pop("data", {}))
    columns = [
        ColumnInput("id", "integer", "keep", False, None, unique=True),
        ColumnInput("email", "string", "fake:email", True, "set", unique=True),
        ColumnInput("first_name", "string", "fake:first_name", True, "row"),
        ColumnInput("name", "string", "fake:name", True, "set"),
        ColumnInput("note", "string", "scrub", True, "set"),
        ColumnInput("profile", "json", "keep", False, None),
        ColumnInput("uuid", "uuid", "keep", False, None),
    ]
    columns = overrides.pop("columns", columns)
    table = pa.table(data)
    originals = {"email": ORIGINAL_EMAILS, "first_name": ORIGINAL_FIRST, "name": ORIGINAL_NAMES, "note": SAFE_NOTES}
    return TableInput(
        name="customers", expected_rows=overrides.pop("expected_rows", 6), columns=columns,
        batches=_batches(table), row_fingerprints=_row_fps(overrides.pop("originals", originals)),
    )


def orders(customer_ids=(1, 2, 2, 6)) -> TableInput:
    table = pa.table({
        "id": pa.array(range(1, len(customer_ids) + 1), type=pa.int32()),
        "customer_id": pa.array(customer_ids, type=pa.int32()),
        "reference": [f"ORD-2024-{n:06d}" for n in range(len(customer_ids))],
    })
    return TableInput(
        name="orders", expected_rows=len(customer_ids),
        columns=[
            ColumnInput("id", "integer", "keep", False, None, unique=True),
            ColumnInput("customer_id", "integer", "keep", False, None),
            ColumnInput("reference", "string", "keep", False, None),
        ],
        batches=_batches(table, 3), row_fingerprints=lambda column: None,
    )


def identifiers(*extra: str) -> np.ndarray:
    # What the pipeline records: whole values of set-scope text columns (notes included).
    return np.unique(fingerprints(KEY, [*ORIGINAL_EMAILS, *ORIGINAL_NAMES, *SAFE_NOTES[:5], *extra]))


def run(tables, *, dropped=(), published=None, extra_identifiers=(), fks=None, report_dir=None) -> dict:
    names = {t.name for t in tables}
    return validate_snapshot(
        source="shop", tables=tables, dropped=list(dropped),
        published_tables=names if published is None else published,
        identifier_fingerprints=identifiers(*extra_identifiers), key=KEY,
        foreign_keys=[("orders", ("customer_id",), "customers", ("id",))] if fks is None else fks,
        report_dir=report_dir,
    )


def fired(summary) -> set[tuple[str, str | None, str]]:
    return {(table, column, check) for table, column, check, _ in failures(summary)}


def test_clean_snapshot_passes_with_no_false_alarms(tmp_path):
    summary = run([customers(), orders()], report_dir=tmp_path)

    assert fired(summary) == set()
    assert summary["passed"] is True
    assert summary["engine"].startswith("great_expectations 1.")
    assert summary["tables"]["customers"]["rows"] == 6
    checks = {(c["table"], c["column"], c["check"]) for c in summary["checks"]}
    assert {
        ("customers", "note", "no_email"), ("customers", "note", "no_card"), ("customers", "profile", "no_aws_access_key"),
        ("customers", "note", "no_original_values"), ("customers", "first_name", "no_row_kept_original"),
        ("customers", "email", "unique"), ("customers", None, "row_count"),
        ("orders", "customer_id", "foreign_key_joins:customers"),
    } <= checks


def test_kept_personal_column_fails_survivor_set_check():
    base = customers(data={"name": ORIGINAL_NAMES})
    columns = [replace(c, transform="keep", masks=False, survivor_scope=None) if c.name == "name" else c for c in base.columns]
    summary = run([replace(base, columns=columns)])

    assert fired(summary) == {("customers", "name", "no_original_values")}
    assert failures(summary)[0][3] == 6


def test_fake_equal_to_another_persons_original_fails_set_check_only():
    names = [ORIGINAL_NAMES[2], *["Fake Person"] * 5]
    summary = run([customers(data={"name": names})])

    assert fired(summary) == {("customers", "name", "no_original_values")}


def test_email_in_free_text_fails_pattern_and_survivor_checks():
    notes = [*SAFE_NOTES[:5], f"please write to {LEAK_EMAIL} soon"]
    summary = run([customers(data={"note": notes})], extra_identifiers=(LEAK_EMAIL,))

    assert fired(summary) == {("customers", "note", "no_email"), ("customers", "note", "no_original_values")}
    assert dict(((t, c, k), n) for t, c, k, n in failures(summary))[("customers", "note", "no_email")] == 1


def test_card_in_note_fails_card_check_but_order_numbers_do_not():
    notes = [*SAFE_NOTES[:5], f"paid with {LEAK_CARD} exp 12/27"]
    summary = run([customers(data={"note": notes})])

    assert fired(summary) == {("customers", "note", "no_card")}


def test_aws_key_inside_json_column_fails_aws_check():
    profile = ['{"plan": "pro"}'] * 5 + [json.dumps({"aws_access_key_id": LEAK_AWS})]
    summary = run([customers(data={"profile": profile})])

    assert fired(summary) == {("customers", "profile", "no_aws_access_key")}


def test_masked_column_swapped_to_keep_fails_row_check():
    summary = run([customers(data={"first_name": ORIGINAL_FIRST})])

    assert fired(summary) == {("customers", "first_name", "no_row_kept_original")}


def test_row_count_mismatch_fails():
    summary = run([customers(expected_rows=7)])

    assert fired(summary) == {("customers", None, "row_count")}


def test_dropped_table_present_fails():
    summary = run([customers()], dropped=["payments"], published={"customers", "payments"}, fks=[])

    assert fired(summary) == {("payments", None, "dropped_table_absent")}


def test_dropped_table_absent_passes():
    summary = run([customers()], dropped=["payments"], fks=[])

    assert summary["passed"] is True


def test_duplicate_across_batches_in_unique_column_fails():
    emails = [f"user{i}.x7k2@example.com" for i in range(5)] + ["user0.x7k2@example.com"]
    summary = run([customers(data={"email": emails})])

    assert fired(summary) == {("customers", "email", "unique")}
    assert dict(((t, c, k), n) for t, c, k, n in failures(summary))[("customers", "email", "unique")] == 2


@pytest.mark.parametrize("chunk_rows", [2, 250_000], ids=["in-other-chunks", "in-one-chunk"])
def test_duplicate_key_fails_whether_or_not_gx_sees_both_copies(monkeypatch, chunk_rows):
    import expectations.gate as gate

    monkeypatch.setattr(gate, "CHUNK_ROWS", chunk_rows)
    summary = run([customers(data={"id": [1, 2, 3, 1, 5, 1]})], fks=[])

    assert fired(summary) == {("customers", "id", "unique")}
    assert dict(((t, c, k), n) for t, c, k, n in failures(summary))[("customers", "id", "unique")] == 3


@pytest.mark.parametrize("unique", [True, False], ids=["unique", "not-unique"])
def test_original_value_in_a_uuid_column_fails_the_survivor_check(unique):
    uuid = "00000000-0000-4000-8000-000000000003"
    base = customers()
    columns = [replace(c, unique=unique) if c.name == "uuid" else c for c in base.columns]
    summary = run([replace(base, columns=columns)], fks=[], extra_identifiers=[uuid])

    assert fired(summary) == {("customers", "uuid", "no_original_values")}


def test_dangling_foreign_key_fails():
    summary = run([customers(), orders(customer_ids=(1, 2, 99, None))])

    assert fired(summary) == {("orders", "customer_id", "foreign_key_joins:customers")}


@pytest.fixture
def one_pass_at_a_time(monkeypatch):
    """Return a function that runs the gate with table passes one after another."""
    from expectations import gate

    def sequential(*args, **kwargs):
        with monkeypatch.context() as patch:
            patch.setattr(gate, "PASS_THREADS", 1)
            return run(*args, **kwargs)

    return sequential


def test_tables_validated_on_threads_summarise_exactly_as_one_after_another(one_pass_at_a_time):
    from expectations import gate

    assert gate.PASS_THREADS > 1
    notes = [*SAFE_NOTES[:5], f"please write to {LEAK_EMAIL} soon"]
    leaky = lambda: [customers(data={"note": notes}), orders(customer_ids=(1, 2, 99, 6))]  # noqa: E731

    threaded = run(leaky(), extra_identifiers=(LEAK_EMAIL,))
    sequential = one_pass_at_a_time(leaky(), extra_identifiers=(LEAK_EMAIL,))

    assert threaded["checks"] == sequential["checks"]  # the same checks, counts and order
    assert fired(threaded) == {
        ("customers", "note", "no_email"), ("customers", "note", "no_original_values"),
        ("orders", "customer_id", "foreign_key_joins:customers"),
    }


def test_an_error_in_one_table_pass_stops_the_gate():
    broken = orders()

    def unreadable():
        yield from broken.batches()
        raise OSError("part-00001.parquet: connection reset")

    with pytest.raises(OSError, match="connection reset"):
        run([customers(), replace(broken, batches=unreadable)])


def dangling(summary, table="orders", column="customer_id", ref="customers") -> tuple[int, int]:
    wanted = (table, column, f"foreign_key_joins:{ref}")
    check = next(c for c in summary["checks"] if (c["table"], c["column"], c["check"]) == wanted)
    return check["unexpected_count"], check["element_count"]


@pytest.mark.parametrize("child_first", [False, True], ids=["parent-first", "child-first"])
def test_foreign_keys_join_whichever_table_is_read_first(child_first):
    for customer_ids, expected in [((1, 2, 2, 6), (0, 4)), ((1, 2, 99, None), (1, 3))]:
        tables = [customers(), orders(customer_ids=customer_ids)]
        summary = run(tables[::-1] if child_first else tables)

        failed = {("orders", "customer_id", "foreign_key_joins:customers")} if expected[0] else set()
        assert fired(summary) == failed
        assert dangling(summary) == expected


def test_foreign_key_to_a_composite_key_of_its_own_table():
    # Per row (customer_id, id): (1, 1), (2, 2), (2, 3), (6, 4);
    # as (id, customer_id): (1, 1), (2, 2), (3, 2), (4, 6).
    summary = run([orders()], fks=[("orders", ("customer_id", "id"), "orders", ("id", "customer_id"))])

    assert fired(summary) == {("orders", "customer_id,id", "foreign_key_joins:orders")}
    assert dangling(summary, column="customer_id,id", ref="orders") == (2, 4)


def test_foreign_key_to_an_unpublished_table_dangles():
    summary = run([orders()])

    assert fired(summary) == {("orders", "customer_id", "foreign_key_joins:customers")}
    assert dangling(summary) == (4, 4)


@pytest.mark.parametrize("allow, expected", [(("email",), set()), ((), {("customers", "contact", "no_email")})],
                         ids=["allowed-email-passes", "not-allowed-email-fails"])
def test_allow_list_on_kept_column(allow, expected):
    summary = run([with_contact(allow, "support@shop-corp.test")])

    assert fired(summary) == expected


def test_allow_list_does_not_excuse_an_original_value():
    summary = run([with_contact(("email",), ORIGINAL_EMAILS[2])])

    assert fired(summary) == {("customers", "contact", "no_original_values")}


def with_contact(allow: tuple[str, ...], value: str) -> TableInput:
    base = customers()
    contact = ColumnInput("contact", "string", "keep", False, None, allow=allow)
    table = pa.Table.from_batches(list(base.batches())).append_column("contact", pa.array([value] * 6))
    return replace(base, columns=[*base.columns, contact], batches=_batches(table))


def test_undeclared_published_column_fails():
    base = customers()
    table = pa.Table.from_batches(list(base.batches())).append_column("ssn", pa.array(["x"] * 6))
    summary = run([replace(base, batches=_batches(table))])

    assert fired(summary) == {("customers", None, "columns_declared")}


def test_no_value_appears_in_summary_report_or_suites(tmp_path):
    notes = [*SAFE_NOTES[:4], f"mail {LEAK_EMAIL}", f"card {LEAK_CARD}"]
    profile = ['{"plan": "pro"}'] * 5 + [json.dumps({"aws_access_key_id": LEAK_AWS})]
    tables = [customers(data={"note": notes, "profile": profile, "first_name": ORIGINAL_FIRST}), orders()]
    summary = run(tables, extra_identifiers=(LEAK_EMAIL,), report_dir=tmp_path)
    report = tmp_path / "report.html"
    write_report(summary, {"customers": {"note": {"transform": "scrub", "classification": "free_text"}}}, report)

    assert not summary["passed"]
    published = [json.dumps(summary), report.read_text()] + [p.read_text() for p in (tmp_path / "suites").glob("*.json")]
    planted = [LEAK_EMAIL, LEAK_CARD, LEAK_CARD.replace(" ", ""), LEAK_AWS, "Alice", "realmail", *SAFE_NOTES[:4]]
    for text in published:
        for value in planted:
            assert value not in text


def test_report_is_readable_html(tmp_path):
    summary = run([customers(data={"first_name": ORIGINAL_FIRST})])
    path = tmp_path / "report.html"
    write_report(summary, {"customers": {"first_name": {"transform": "fake:first_name", "classification": "personal"}}}, path)

    page = path.read_text()
    assert page.startswith("<!doctype html>") and "FAILED" in page
    assert "fake:first_name" in page and "personal" in page and "no_row_kept_original" in page


def test_suite_round_trips_with_every_expectation(tmp_path):
    suite = build_suite("shop", customers())
    save_suite(suite, tmp_path / "customers.json")

    loaded = load_suite(tmp_path / "customers.json")

    text_columns = [c.name for c in customers().columns if c.logical in ("string", "json")]
    detector = [e for e in loaded.expectations if e.expectation_type == "expect_column_values_to_hold_no_detector_matches"]
    assert len(loaded.expectations) == len(suite.expectations)
    assert sorted(e.column for e in detector) == sorted(text_columns)
    assert all(e.kinds == list(DETECTORS) for e in detector)  # no allow lists here: every kind


def test_detector_expectation_reports_one_check_per_kind_and_skips_allowed_kinds():
    contact = ["write to someone@realmail.test", *["nothing here"] * 5]
    base = customers(data={"profile": contact})
    columns = [replace(c, allow=("email",)) if c.name == "profile" else c for c in base.columns]
    summary = run([replace(base, columns=columns)])

    checks = {(c["column"], c["check"]) for c in summary["checks"] if c["table"] == "customers"}
    assert {("note", f"no_{kind}") for kind in DETECTORS} <= checks
    assert ("profile", "no_email") not in checks and ("profile", "no_card") in checks
    assert fired(summary) == set()


def test_declared_checks_are_the_checks_the_built_suite_reports(tmp_path):
    """The gate declares checks from plan_suite before GX is imported; the GX suite must agree."""
    from expectations.gate import _checks_of, plan_suite

    for table in (customers(), orders()):
        suite = build_suite("shop", table)
        from_suite = [(getattr(e, "column", None), check) for e in suite.expectations
                      for check in _checks_of(e.meta["check"], getattr(e, "kinds", ()))]
        planned = [(e.column, check) for e in plan_suite(table) for check in e.checks]
        assert planned == from_suite and len(planned) > 1


def test_a_table_without_rows_still_writes_and_reloads_its_suite(tmp_path):
    empty = pa.table({"id": pa.array([], pa.int32()), "customer_id": pa.array([], pa.int32()),
                      "reference": pa.array([], pa.string())})
    table = replace(orders(), expected_rows=0, batches=_batches(empty))

    summary = run([table], fks=[], report_dir=tmp_path)

    assert summary["passed"] is True and summary["tables"]["orders"]["rows"] == 0
    saved = json.loads((tmp_path / "suites" / "orders.json").read_text())
    assert [e["type"] for e in saved["expectations"]] == [
        "expect_table_row_count_to_equal", "expect_column_values_to_hold_no_detector_matches"]


def test_an_unknown_allow_kind_fails_before_any_chunk_is_read():
    def never_read():
        raise AssertionError("the table was read before its suite was checked")

    table = customers(columns=[ColumnInput("note", "string", "keep", False, None, allow=("emial",))])

    with pytest.raises(SuiteError, match="emial"):
        run([replace(table, batches=never_read)], fks=[])


def test_findings_do_not_import_great_expectations():
    """The gate searches chunks while GX imports on another thread: findings must not need GX."""
    import subprocess
    import sys

    probe = "import sys\nfrom expectations import findings, gate\nprint('great_expectations' in sys.modules)\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False"]


def test_load_suite_raises_when_gx_drops_an_expectation(tmp_path):
    path = tmp_path / "s.json"
    save_suite(build_suite("shop", orders()), path)
    data = json.loads(path.read_text())
    data["expectations"].append({**data["expectations"][0], "type": "expect_column_values_to_be_a_unicorn", "id": None})
    path.write_text(json.dumps(data))

    written = len(data["expectations"])

    with pytest.raises(SuiteError, match=f"holds {written} expectations but {written - 1} loaded"):
        load_suite(path)


def test_unknown_allow_kind_is_rejected():
    table = customers(columns=[ColumnInput("note", "string", "keep", False, None, allow=("emial",))])

    with pytest.raises(SuiteError, match="unknown detector kind"):
        build_suite("shop", table)


@pytest.mark.parametrize("value, check", [
    ("4111111111111111@example.com", "no_card"),
    ("jane@example.com.realmail.test", "no_email"),
    ("+1-555-201-3344 or 4111 1111 1111 1111", "no_card"),
    ("+1-212-555-0199", "no_phone"),
], ids=["card-as-local-part", "reserved-name-inside-real-domain", "card-after-fake-phone", "real-area-code"])
def test_values_shaped_like_fakes_still_fail(value, check):
    summary = run([customers(data={"note": [*SAFE_NOTES[:5], value]})])

    assert ("customers", "note", check) in fired(summary)


def test_original_phone_as_bare_digits_inside_a_note_fails_the_survivor_check():
    import numpy as np
    import pyarrow as pa

    from expectations import gate
    from masking.keys import MaskingKey, fingerprints

    key = MaskingKey("gate-test-key-0123456789abcdef")
    notes = pa.record_batch({"id": [1, 2], "note": ["Questions: x@example.com / 7763661934", "order 12345678 shipped"]})
    column = gate.ColumnInput(name="note", logical="string", transform="scrub", masks=True, survivor_scope="set")
    ident = gate.ColumnInput(name="id", logical="integer", transform="keep", masks=False, survivor_scope=None, unique=True)
    table = gate.TableInput(name="t", expected_rows=2, columns=[ident, column], batches=lambda: iter([notes]),
                            row_fingerprints=lambda name: None)
    summary = gate.validate_snapshot(
        source="s", tables=[table], dropped=[], published_tables={"t"},
        identifier_fingerprints=np.sort(fingerprints(key, ["7763661934"])), key=key, foreign_keys=[],
    )
    failed = {(t, c, check): n for t, c, check, n in gate.failures(summary)}
    assert failed == {("t", "note", "no_original_values"): 1}


@pytest.fixture
def many_partitions(monkeypatch):
    """Spill every set of these tiny tables over 16 partitions, as at a hundred million rows."""
    from expectations import spill

    monkeypatch.setattr(spill, "PARTITION_TARGET", 1)
    assert spill.partitions_for(10) == 16


@pytest.mark.parametrize("scenario", [
    test_kept_personal_column_fails_survivor_set_check,
    test_fake_equal_to_another_persons_original_fails_set_check_only,
    test_email_in_free_text_fails_pattern_and_survivor_checks,
    test_duplicate_across_batches_in_unique_column_fails,
    test_dangling_foreign_key_fails,
    test_original_phone_as_bare_digits_inside_a_note_fails_the_survivor_check,
], ids=lambda f: f.__name__.removeprefix("test_"))
def test_leaks_are_found_the_same_when_sets_spill_over_many_partitions(many_partitions, scenario):
    scenario()


def test_clean_snapshot_passes_over_many_partitions_and_leaves_no_spill(many_partitions, tmp_path):
    work = tmp_path / "gate"
    # What a crashed earlier attempt could leave: a set file full of repeated key hashes.
    (work / "set-00002").mkdir(parents=True)
    np.full(100, 7, dtype=np.uint64).tofile(work / "set-00002" / "part-0000.u64")
    summary = validate_snapshot(
        source="shop", tables=[customers(), orders()], dropped=[], published_tables={"customers", "orders"},
        identifier_fingerprints=iter([identifiers()[:4], identifiers()[4:]]), key=KEY,
        foreign_keys=[("orders", ("customer_id",), "customers", ("id",))], work_dir=work,
    )

    assert fired(summary) == set()
    assert not work.exists()


def test_reserved_mask_agrees_with_is_reserved():
    from expectations import findings

    values = {
        "email": ["a@example.com", "A.B@EXAMPLE.ORG", "x@mail.example.net", "x@example.com.evil.org", "x@notexample.com",
                  "x@example.co", "jane@gmail.com"],
        "phone": ["+1-555-123-4567", "555-123-4567", "(555) 123-4567", "1 555 123 4567", "+1-555-123-4567 x12",
                  "+44 555 123 4567", "415-555-0100", "+15551234567"],
        "ipv4": ["192.0.2.1", "198.51.100.255", "203.0.113.0", "192.0.2.01", "192.0.3.1", "10.0.0.1", "203.0.113.256"],
    }
    for kind, texts in values.items():
        assert findings.reserved_mask(kind, pa.array(texts)).tolist() == [findings.is_reserved(kind, t) for t in texts], kind


def test_detector_counts_are_the_same_for_texts_judged_in_arrow_and_in_python():
    from expectations import findings
    from masking import detectors

    texts = ["mail jane@x.org", "mail jane@example.com", "call +1-415-555-0100", "call +1-555-123-4567", "from 10.0.0.7",
             "from 192.0.2.7", "jane@x.org, +1-415-555-0100", "x@example.com, 198.51.100.2", None, "clean"] * 3

    found = findings.analyse(pa.array(texts))

    expected: dict[str, set[int]] = {}
    for row, text, matches in detectors.find_all(pa.array(texts)):
        for m in matches:
            if not findings.is_reserved(m.kind, text[m.start:m.end]):
                expected.setdefault(m.kind, set()).add(row)
    assert {k: set(v.tolist()) for k, v in found.rows.items()} == expected
    assert sorted(found.tokens) == sorted(
        (row, m.kind, text[m.start:m.end]) for row, text, matches in detectors.find_all(pa.array(texts)) for m in matches
        if not findings.is_reserved(m.kind, text[m.start:m.end])
    )


def test_mostly_distinct_columns_are_searched_row_by_row_with_the_findings_of_distinct_texts():
    from expectations import findings
    from masking.transforms import mostly_distinct

    # 6,000 distinct texts, so the column is searched row by row; every 97th holds an email,
    # every 89th a phone, and a few repeat earlier rows.
    texts = [f"order {i} note" for i in range(6000)]
    for i in range(0, 6000, 97):
        texts[i] = f"contact person{i}@mail.test about order {i}"
    for i in range(5, 6000, 89):
        texts[i] = f"call +1-415-555-{i % 10000:04d} re {i}"
    texts[5999], texts[5998] = texts[97], None
    array = pa.array(texts)
    halves = [array.slice(0, 3000), array.slice(3000)]  # each under the sample size: deduplicated

    found = findings.analyse(array)

    assert mostly_distinct(array) and not any(mostly_distinct(h) for h in halves)
    expected = [findings.analyse(half) for half in halves]
    for kind in ("email", "phone"):
        rows = np.concatenate([expected[0].rows.get(kind, []), np.asarray(expected[1].rows.get(kind, [])) + 3000])
        assert found.rows[kind].tolist() == rows.astype(np.int64).tolist()
    assert sorted(found.tokens) == sorted([*expected[0].tokens, *[(r + 3000, k, t) for r, k, t in expected[1].tokens]])
    assert 5999 in found.rows["email"].tolist()


def test_plain_fakes_are_found_by_reading_only_rows_with_an_at_sign_or_eleven_digits():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from expectations import findings
    from masking import detectors

    @settings(max_examples=200, deadline=None)
    @given(st.from_regex(findings._PLAIN_FAKE, fullmatch=True))
    def holds_what_the_search_needs(text):
        assert "@" in text or sum(c in "0123456789" for c in text) >= 11

    holds_what_the_search_needs()
    texts = ["jane.doe@example.com", "+1-555-123-4567", "+1-555-123-4567 x12", "Jane Doe", None, "555-1234",
             "j@example.org", "x@real.test", "12345678901"] * 4
    values = pa.chunked_array([texts[:10], texts[10:]])

    narrowed = detectors.rows_matching(values, findings._PLAIN_FAKE, min_digits=11, or_holding="@")

    full = pa.compute.match_substring_regex(values.combine_chunks(), findings._PLAIN_FAKE).fill_null(False)
    assert narrowed.tolist() == full.to_pylist()
    assert sum(narrowed) == 16


def test_gx_import_defers_altair_and_scipy_stats_until_first_use():
    """The gate's GX import leaves the chart and distribution libraries unexecuted, yet usable."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from expectations.gximport import DEFERRED, import_gx\n"
        "import_gx()\n"
        "from expectations import gate\n"
        "gate._Runner.get()\n"
        "lazy = sorted(n for n in DEFERRED if type(sys.modules.get(n)).__name__ == '_LazyModule')\n"
        "print(','.join(lazy))\n"
        "import scipy.stats\n"
        "print(round(float(scipy.stats.entropy([0.5, 0.5], base=2)), 6))\n"
        "print(type(sys.modules['scipy.stats']).__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lazy, entropy, loaded_type = done.stdout.split()
    assert lazy == "altair,scipy.stats"  # imported by GX, not executed
    assert entropy == "1.0"  # the first use executes the module in full
    assert loaded_type == "module"
