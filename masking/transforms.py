"""The transform catalogue: column-level masking on whole Arrow arrays.

Each transform declares the logical column types it accepts, its parameters and whether it
keeps distinct inputs distinct (``injective``). Parameters are validated when the transform
is built, and :meth:`Transform.check` validates it against a column, both before any row is
read. :meth:`Transform.apply` works on one Arrow array at a time; transforms that depend on
the value compute keyed digests once per distinct value, not once per row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from masking import schema as S
from masking.errors import TransformError
from masking.keys import MaskingKey, fingerprints

ANY = frozenset(S.LOGICAL_TYPES)
# Identifying kinds are always generated injectively, so the same email gets the same fake in
# a unique column, a plain column and inside free text.
ALWAYS_UNIQUE = frozenset({"email", "user_name"})
TEXT = frozenset({S.STRING})


@dataclass(frozen=True)
class Param:
    """One declared transform parameter."""

    type: type | tuple[type, ...]
    default: Any = None
    required: bool = False
    doc: str = ""


@dataclass
class ColumnContext:
    """What a transform may know while it masks one column of one batch."""

    key: MaskingKey
    table: str
    column: S.Column
    locale: str = "en_US"
    batch: pa.RecordBatch | None = None
    stats: dict[str, int] = field(default_factory=dict)
    # When a list: ``scrub`` appends the original personal values it replaced (kinds in
    # detectors.PERSONAL_KINDS), so the caller can fingerprint them without a second search:
    # strings one by one, and string arrays for rows it replaced in Arrow.
    # The caller empties it after every batch.
    found: list[str | pa.Array] | None = None

    def count(self, name: str, n: int = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + n


class Transform:
    """Base class: subclasses set the class attributes and implement :meth:`apply`."""

    name: ClassVar[str]
    accepts: ClassVar[frozenset[str]] = ANY
    injective: ClassVar[bool] = False
    params: ClassVar[dict[str, Param]] = {}
    shorthand: ClassVar[str | None] = None  # the parameter a scalar shorthand (`fake: email`) sets
    description: ClassVar[str] = ""
    # Masking a value costs more than reading it from the database (text search, values built
    # per distinct input): worth handing to worker processes. The others are a few vectorised
    # kernels per batch, cheaper than shipping the batch to another process and back.
    costly: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        self.options = self._validate_params(params)
        self._post_init()

    def _post_init(self) -> None:
        """Check parameter combinations; raise TransformError."""

    def _validate_params(self, given: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            raise TransformError(
                f"transform {self.name!r} has no parameter(s) {', '.join(unknown)}; "
                f"it takes: {', '.join(sorted(self.params)) or 'no parameters'}"
            )
        values = {}
        for pname, spec in self.params.items():
            if pname not in given or given[pname] is None:
                if spec.required:
                    raise TransformError(f"transform {self.name!r} needs parameter {pname!r} ({spec.doc})")
                values[pname] = spec.default
                continue
            value = given[pname]
            if isinstance(value, bool) and spec.type in (int, float):
                raise TransformError(f"transform {self.name!r}: {pname} must be a number, got a boolean")
            if not isinstance(value, spec.type):
                expected = spec.type.__name__ if isinstance(spec.type, type) else "/".join(t.__name__ for t in spec.type)
                raise TransformError(
                    f"transform {self.name!r}: {pname} must be {expected}, got {type(value).__name__}"
                )
            values[pname] = value
        return values

    @property
    def label(self) -> str:
        """A short description for manifests and logs, e.g. ``fake:email``."""
        if self.shorthand and self.options.get(self.shorthand) is not None:
            return f"{self.name}:{self.options[self.shorthand]}"
        return self.name

    @property
    def is_injective(self) -> bool:
        return self.injective

    @property
    def masks(self) -> bool:
        """Whether this transform replaces the original values (keep does not)."""
        return True

    @property
    def survivor_scope(self) -> str | None:
        """How the validation gate checks that originals did not survive this transform.

        ``"set"``: no published value anywhere may equal any original of this column (for
        identifying values: emails, phones, full names, free text). ``"row"``: no row may keep
        its own original (for values that are common by nature, such as first names or
        cities, where a fake may legitimately equal somebody else's real value). ``None``: no
        check (the output cannot hold the original, or the transform keeps it on purpose).
        """
        return "set"

    def spec(self) -> dict[str, Any]:
        return {"transform": self.name, **{k: v for k, v in self.options.items() if v is not None}}

    def check(self, column: S.Column) -> list[str]:
        """Return problems with applying this transform to ``column`` (empty when fine)."""
        problems = []
        if column.logical not in self.accepts:
            problems.append(
                f"transform {self.label!r} does not accept {column.logical} columns "
                f"(type {column.sql_type}); it accepts {', '.join(sorted(self.accepts))}"
            )
        if column.needs_injective and not self.is_injective:
            problems.append(
                f"column is a primary key or unique, but transform {self.label!r} can map two values to one; "
                "use an injective transform (keep, hash, or fake with a unique-capable kind)"
            )
        return problems

    def apply(self, array: pa.Array, ctx: ColumnContext) -> pa.Array:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Transform) and self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash(json.dumps(self.spec(), sort_keys=True, default=str))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec()}>"


REGISTRY: dict[str, type[Transform]] = {}


def register(cls: type[Transform]) -> type[Transform]:
    REGISTRY[cls.name] = cls
    return cls


def build(spec: str | dict[str, Any]) -> Transform:
    """Build a transform from its policy spelling.

    Accepted spellings: ``"keep"``; ``{"fake": "email"}`` (shorthand);
    ``{"partial": {"keep_last": 4}}``; ``{"transform": "fake", "kind": "email"}``.
    """
    if isinstance(spec, str):
        name, params = spec, {}
    elif isinstance(spec, dict) and "transform" in spec:
        params = dict(spec)
        name = params.pop("transform")
    elif isinstance(spec, dict) and len(spec) == 1:
        ((name, arg),) = spec.items()
        if isinstance(arg, dict):
            params = dict(arg)
        elif arg is None:
            params = {}
        else:
            cls = REGISTRY.get(name)
            if cls is None or cls.shorthand is None:
                raise TransformError(f"transform {name!r} takes a mapping of parameters, not a single value")
            params = {cls.shorthand: arg}
    else:
        raise TransformError(
            "a column rule must be a transform name or a one-key mapping such as `{fake: email}`; "
            f"got a {type(spec).__name__}"
        )
    cls = REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise TransformError(f"unknown transform {name!r}; known transforms: {', '.join(sorted(REGISTRY))}")
    return cls(**params)


# --- helpers shared by transforms -------------------------------------------------------------


def map_distinct(
    array: pa.Array, fn: Callable[[Any], Any], out_type: pa.DataType, *, arrow: bool = False
) -> pa.Array:
    """Apply ``fn`` to the distinct non-null values of ``array`` and broadcast the results back.

    Nulls stay null. ``fn`` receives Python values, or with ``arrow=True`` the distinct values
    as an Arrow array (no Python objects built for them), and returns one output per input.
    """
    if len(array) == 0:
        return pa.array([], type=out_type)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if mostly_distinct(array):
        # Emails, notes, timestamps: a hash table of the values would cost more than it saves.
        values = array.drop_null() if array.null_count else array
        outputs = fn(values if arrow else values.to_pylist())
        outputs = _as_array(outputs, out_type)
        if not array.null_count:
            return outputs
        return pc.replace_with_mask(pa.nulls(len(array), out_type), array.is_valid(), outputs)
    encoded = pc.dictionary_encode(array)
    distinct = encoded.dictionary
    if len(distinct) == 0:
        return pa.nulls(len(array), type=out_type)
    outputs = fn(distinct if arrow else distinct.to_pylist())
    return _as_array(outputs, out_type).take(encoded.indices)


DISTINCT_SAMPLE = 4096
"""Values of a batch looked at to decide whether working on its distinct values pays."""


def mostly_distinct(array: pa.Array) -> bool:
    """Whether most of a long array's first DISTINCT_SAMPLE values differ, so deduplicating would not pay."""
    head = array.slice(0, DISTINCT_SAMPLE)
    return len(array) > DISTINCT_SAMPLE and len(pc.unique(head)) > len(head) // 2


def distinct_or_all(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Return the values to work on once each, and per row the position of its value among them.

    The distinct values (a null row gets position -1), unless most values differ (emails,
    notes, fake names), where building the hash table costs more than it saves: then every
    row, nulls included, at its own position.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if mostly_distinct(values):
        return values, np.arange(len(values), dtype=np.int64)
    encoded = values.dictionary_encode()
    return encoded.dictionary, encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _as_array(outputs, out_type: pa.DataType) -> pa.Array:
    if not isinstance(outputs, pa.Array):
        return pa.array(outputs, type=out_type)
    return outputs if outputs.type == out_type else outputs.cast(out_type)


def string_type_of(array: pa.Array) -> pa.DataType:
    return array.type if pa.types.is_string(array.type) or pa.types.is_large_string(array.type) else pa.string()


def fit_length(values: list[str], max_length: int | None) -> list[str]:
    if not max_length:
        return values
    return [v[:max_length] for v in values]


# --- the catalogue ---------------------------------------------------------------------------


@register
class Keep(Transform):
    name = "keep"
    injective = True
    description = "Copy the value unchanged. `allow` names detector kinds the value may legitimately hold."
    params = {
        "allow": Param(list, default=None, doc="detector kinds allowed in this column, e.g. [email]"),
        "reason": Param(str, default=None, doc="why keeping is safe, for reviewers"),
    }

    @property
    def masks(self) -> bool:
        return False

    @property
    def survivor_scope(self) -> str | None:
        return None

    def apply(self, array, ctx):
        return array


@register
class Null(Transform):
    name = "null"
    description = "Replace every value with NULL."

    def check(self, column):
        problems = super().check(column)
        if not column.nullable:
            problems.append("transform 'null' needs a nullable column; this one is NOT NULL (use redact or fake)")
        return problems

    @property
    def survivor_scope(self) -> str | None:
        return None

    def apply(self, array, ctx):
        return pa.nulls(len(array), type=array.type)


@register
class Constant(Transform):
    name = "constant"
    shorthand = "value"
    description = "Replace every non-null value with one constant."
    params = {"value": Param((str, int, float, bool), required=True, doc="the replacement value")}

    def check(self, column):
        problems = super().check(column)
        value = self.options["value"]
        if column.logical in (S.INTEGER, S.FLOAT, S.DECIMAL) and not isinstance(value, (int, float)):
            problems.append(f"transform 'constant' needs a number for a {column.logical} column")
        if column.max_length and isinstance(value, str) and len(value) > column.max_length:
            problems.append(f"constant is {len(value)} characters; the column holds {column.max_length}")
        return problems

    def apply(self, array, ctx):
        filled = pa.repeat(pa.scalar(self.options["value"]).cast(array.type), len(array))
        return pc.if_else(pc.is_null(array), pa.nulls(len(array), type=array.type), filled)


@register
class Redact(Transform):
    name = "redact"
    accepts = frozenset({S.STRING, S.JSON})
    shorthand = "text"
    description = "Replace every non-null value with a fixed marker (default 'REDACTED')."
    params = {"text": Param(str, default="REDACTED", doc="the marker")}

    def apply(self, array, ctx):
        text = self.options["text"]
        if ctx.column.max_length:
            text = text[: ctx.column.max_length]
        if ctx.column.logical == S.JSON:
            text = json.dumps(text)
        filled = pa.repeat(pa.scalar(text, type=string_type_of(array)), len(array))
        return pc.if_else(pc.is_null(array), pa.nulls(len(array), type=filled.type), filled)


@register
class Hash(Transform):
    name = "hash"
    accepts = frozenset({S.STRING, S.INTEGER, S.UUID, S.BINARY})
    injective = True
    description = (
        "Replace with a keyed digest: hex text for text columns, a positive 63-bit integer for "
        "integer columns. Injective unless `length` truncates it below 16 hex digits."
    )
    params = {
        "domain": Param(str, default="hash", doc="consistency domain; same domain, same output"),
        "length": Param(int, default=16, doc="hex digits for text output (8..32)"),
    }

    def _post_init(self):
        if not 8 <= self.options["length"] <= 32:
            raise TransformError("transform 'hash': length must be between 8 and 32 hex digits")

    @property
    def is_injective(self) -> bool:
        return self.options["length"] >= 16

    def check(self, column):
        problems = super().check(column)
        if column.logical == S.STRING and column.max_length and column.max_length < self.options["length"]:
            problems.append(
                f"transform 'hash' writes {self.options['length']} characters but the column holds "
                f"{column.max_length}; set `length: {column.max_length}` (below 16 it is not injective)"
            )
        if column.logical == S.INTEGER and column.sql_type.upper() in ("SMALLINT", "INT2", "TINYINT"):
            problems.append("transform 'hash' needs an integer column of at least 32 bits")
        return problems

    def apply(self, array, ctx):
        domain = self.options["domain"]
        if pa.types.is_integer(array.type):
            bits = 62 if array.type.bit_width >= 64 else 30

            def ints(distinct):
                digests = ctx.key.digests64_arrow(domain, distinct)
                return (digests >> np.uint64(64 - bits)).astype(np.int64) + 1

            return map_distinct(array, ints, array.type, arrow=True)
        length = self.options["length"]
        out_type = pa.binary() if pa.types.is_binary(array.type) else string_type_of(array)

        def hexes(distinct):
            return ctx.key.hexdigests_arrow(domain, distinct, length).cast(out_type)

        return map_distinct(array, hexes, out_type, arrow=True)


@register
class Fake(Transform):
    name = "fake"
    costly = True
    accepts = frozenset({S.STRING, S.DATE})
    shorthand = "kind"
    description = "Replace with a realistic dummy of the given kind, chosen by keyed digest."
    params = {
        "kind": Param(str, required=True, doc="what to generate: name, email, phone, ..."),
        "locale": Param(str, default=None, doc="en_US or ja_JP; default: the policy's locale"),
        "domain": Param(str, default=None, doc="consistency domain; default: the kind"),
        "unique": Param(bool, default=None, doc="force injective output (default: when the column is unique)"),
    }

    def _post_init(self):
        from masking import fakes

        fakes.check_kind(self.options["kind"], self.options["locale"] or "en_US")

    @property
    def is_injective(self) -> bool:
        from masking import fakes

        return self.options["unique"] is not False and fakes.can_be_unique(self.options["kind"])

    def check(self, column):
        problems = super().check(column)
        if column.logical == S.DATE and self.options["kind"] != "date_of_birth":
            problems.append("only `fake: date_of_birth` fits a date column")
        return problems

    # Kinds whose real values are common to many people: a fake may equal somebody else's
    # real value, so the gate only checks that no row keeps its own.
    # Full names belong here too: "John Smith" is many people, and realistic fakes drawn from
    # the same name distribution as the source will sometimes equal another row's real name.
    COMMON_KINDS = frozenset({
        "name", "name_kana", "first_name", "last_name", "first_name_kana", "last_name_kana", "city", "state", "country",
        "postal_code", "company", "date_of_birth",
    })

    @property
    def survivor_scope(self) -> str | None:
        return "row" if self.options["kind"] in self.COMMON_KINDS else "set"

    def apply(self, array, ctx):
        from masking import fakes

        kind = self.options["kind"]
        locale = self.options["locale"] or ctx.locale
        domain = self.options["domain"] or kind
        unique = self.options["unique"]
        if unique is None:
            unique = ctx.column.needs_injective or kind in ALWAYS_UNIQUE
        max_length = ctx.column.max_length

        def generate(distinct: pa.Array):
            digests = ctx.key.digests64_arrow(domain, distinct)
            originals = fingerprints(ctx.key, distinct)
            out = fakes.fake_array(kind, digests, locale, unique=bool(unique), max_length=max_length)
            # A fake that happens to equal its own original is drawn again from a derived
            # digest, so no row ever keeps its real value by chance. Equal means equal
            # fingerprints (trimmed, case-folded text), as the gate's per-row check judges it.
            for attempt in range(1, 8):
                same = fingerprints(ctx.key, out) == originals
                if not same.any():
                    break
                ctx.count("redrawn", int(same.sum()))
                redrawn = digests[same] ^ np.uint64(0x9E3779B97F4A7C15 * attempt % (1 << 64))
                again = fakes.fake_array(kind, redrawn, locale, unique=bool(unique), max_length=max_length)
                out = pc.replace_with_mask(out, pa.array(same), again)
            return out

        if pa.types.is_date(array.type):
            # ISO text, as date.isoformat() spells it: the digest of a date is that of its text.
            as_text = map_distinct(array, lambda d: generate(pc.cast(d, pa.string())), pa.string(), arrow=True)
            return pc.cast(pc.strptime(as_text, format="%Y-%m-%d", unit="s"), pa.date32()).cast(array.type)
        return map_distinct(array, generate, string_type_of(array), arrow=True)


@register
class Partial(Transform):
    name = "partial"
    accepts = TEXT
    shorthand = "keep_last"
    description = "Mask all but the last N characters with a mask character."
    params = {
        "keep_last": Param(int, default=4, doc="characters kept at the end"),
        "char": Param(str, default="*", doc="mask character"),
    }

    def _post_init(self):
        if self.options["keep_last"] < 0 or len(self.options["char"]) != 1:
            raise TransformError("transform 'partial': keep_last must be >= 0 and char one character")

    def apply(self, array, ctx):
        n = self.options["keep_last"]
        lengths = pc.utf8_length(array)
        longer = pc.greater(lengths, n)
        # Short values keep nothing: a 3-character value with keep_last=4 is fully masked.
        masked_len = pc.if_else(longer, pc.subtract(lengths, n), lengths)
        kind = string_type_of(array)
        prefix = pc.binary_repeat(pa.scalar(self.options["char"], kind), masked_len)
        if n == 0 or not pc.any(longer).as_py():
            return prefix
        nothing = pa.scalar("", kind)
        tail = pc.if_else(longer, pc.utf8_slice_codeunits(array, start=-n).cast(kind), nothing)
        return pc.binary_join_element_wise(prefix, tail, nothing)


@register
class Scrub(Transform):
    name = "scrub"
    costly = True
    accepts = frozenset({S.STRING, S.JSON})
    description = (
        "Keep free text but replace personal data and secrets found inside it: emails and phones "
        "with consistent fakes, cards, tokens and keys with markers."
    )
    params = {"kinds": Param(list, default=None, doc="detector kinds to scrub (default: all)")}

    def _post_init(self):
        from masking import detectors

        unknown = sorted(set(self.options["kinds"] or ()) - set(detectors.DETECTORS))
        if unknown:
            raise TransformError(
                f"transform 'scrub': unknown detector kind(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(detectors.DETECTORS))}"
            )

    def finds_all(self, kinds) -> bool:
        """Whether this scrub searches for every one of ``kinds``."""
        return self.options["kinds"] is None or set(kinds) <= set(self.options["kinds"])

    def apply(self, array, ctx):
        from masking import detectors

        replacer = TextReplacer(ctx)
        out = detectors.scrub_array_bulk(
            array, replacer.replace_all, kinds=self.options["kinds"], replace_kind=replacer.replace_kind
        )
        ctx.count("scrubbed_values", replacer.replaced)
        return out


class TextReplacer:
    """Decide the substitute for a personal value found inside free text.

    Emails and phones become the same fakes the dedicated columns get (same domains), so an
    email copied into a note still matches the masked customer row.
    """

    FAKE_KINDS = {"email": "email", "phone": "phone", "phone_jp": "phone", "ipv4": "ipv4", "ipv6": "ipv6"}

    def __init__(self, ctx: ColumnContext) -> None:
        self.ctx = ctx
        self.replaced = 0

    def replace_all(self, pairs: list[tuple[Any, str]]) -> list[str]:
        """Substitutes for every match of a batch: fakes computed once per kind, in bulk."""
        from masking import detectors, fakes

        self.replaced += len(pairs)  # less the fakes of an earlier pass, below
        out = [f"[{m.kind.upper()} REMOVED]" for m, _ in pairs]
        groups: dict[tuple[str, str], list[int]] = {}
        found = self.ctx.found
        for i, (match, text) in enumerate(pairs):
            fake_kind = self.FAKE_KINDS.get(match.kind)
            if fake_kind is not None and fakes.is_own_fake(fake_kind, text):
                out[i] = text  # already one of our fakes (a second scrub pass): leave it
                self.replaced -= 1
                continue
            if found is not None and match.kind in detectors.PERSONAL_KINDS:
                found.append(text)
            if fake_kind is not None:
                locale = "ja_JP" if match.kind == "phone_jp" else self.ctx.locale
                groups.setdefault((fake_kind, locale), []).append(i)
        for (fake_kind, locale), positions in groups.items():
            texts = [pairs[i][1].lower() if fake_kind == "email" else pairs[i][1] for i in positions]
            digests = self.ctx.key.digests64(fake_kind, texts)
            values = fakes.fake_values(fake_kind, digests, locale, unique=fake_kind in ALWAYS_UNIQUE)
            for i, value in zip(positions, values):
                out[i] = value
        return out

    def replace_kind(self, kind: str, values: pa.Array) -> pa.Array:
        """Substitutes for values of one kind, as :meth:`replace_all` gives them, in Arrow.

        Only for kinds with a fake (``FAKE_KINDS``); our own fakes come back unchanged.
        """
        from masking import detectors, fakes

        fake_kind = self.FAKE_KINDS[kind]
        fresh = ~fakes.own_fake_mask(fake_kind, values)
        originals = values.filter(pa.array(fresh))
        self.replaced += len(originals)
        if not len(originals):
            return values
        if self.ctx.found is not None and kind in detectors.PERSONAL_KINDS:
            self.ctx.found.append(originals)
        locale = "ja_JP" if kind == "phone_jp" else self.ctx.locale
        texts = pc.utf8_lower(originals) if fake_kind == "email" else originals
        digests = self.ctx.key.digests64_arrow(fake_kind, texts)
        substitutes = fakes.fake_array(fake_kind, digests, locale, unique=fake_kind in ALWAYS_UNIQUE)
        return pc.replace_with_mask(values, pa.array(fresh), substitutes.cast(values.type))

    def __call__(self, match, text: str) -> str:
        from masking import fakes

        self.replaced += 1
        fake_kind = self.FAKE_KINDS.get(match.kind)
        if fake_kind is None:
            return f"[{match.kind.upper()} REMOVED]"
        if fake_kind == "email":
            text = text.lower()
        digest = self.ctx.key.digests64(fake_kind, [text])
        locale = "ja_JP" if match.kind == "phone_jp" else self.ctx.locale
        return fakes.fake_values(fake_kind, digest, locale, unique=fake_kind in ALWAYS_UNIQUE)[0]


@register
class DateShift(Transform):
    name = "date_shift"
    accepts = frozenset({S.DATE, S.TIMESTAMP})
    description = (
        "Move dates by a keyed offset of up to max_days, the same offset for every row of one "
        "entity (the `entity` column, e.g. customer_id) so intervals within an entity survive."
    )
    params = {
        "max_days": Param(int, default=30, doc="largest shift in days, either direction"),
        "entity": Param(str, default=None, doc="column whose value picks the offset (default: the row's own value)"),
    }

    def _post_init(self):
        if not 1 <= self.options["max_days"] <= 3650:
            raise TransformError("transform 'date_shift': max_days must be between 1 and 3650")

    def offsets_days(self, ctx: ColumnContext, array: pa.Array) -> np.ndarray:
        span = 2 * self.options["max_days"] + 1
        entity = self.options["entity"]
        source = ctx.batch.column(entity) if entity and ctx.batch is not None else array
        domain = f"date_shift:{entity or ctx.table + '.' + ctx.column.name}"

        def days_of(values: pa.Array) -> np.ndarray:
            digests = ctx.key.digests64_arrow(domain, values)
            days = (digests % np.uint64(span)).astype(np.int64) - self.options["max_days"]
            days[days == 0] = 1
            return days

        if not source.null_count and mostly_distinct(source):
            # Timestamps and most entity ids differ row to row: digest each row, no hash table.
            return days_of(source)
        encoded = pc.dictionary_encode(source)
        per_distinct = days_of(encoded.dictionary)
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        indices = np.nan_to_num(indices.astype(float), nan=0).astype(np.int64) if encoded.indices.null_count else indices
        return per_distinct[indices] if len(per_distinct) else np.zeros(len(array), dtype=np.int64)

    def apply(self, array, ctx):
        days = self.offsets_days(ctx, array)
        if pa.types.is_date(array.type):
            as_int = pc.cast(array, pa.int32()) if array.type == pa.date32() else pc.cast(pc.cast(array, pa.date32()), pa.int32())
            shifted = pc.add(as_int, pa.array(days.astype(np.int32)))
            return pc.cast(shifted, pa.date32()).cast(array.type)
        unit = array.type.unit
        per_day = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}[unit]
        as_int = pc.cast(array, pa.int64())
        shifted = pc.add(as_int, pa.array(days * per_day))
        return pc.cast(shifted, array.type)

    @property
    def survivor_scope(self) -> str | None:
        return "row"


@register
class Noise(Transform):
    name = "noise"
    accepts = frozenset({S.INTEGER, S.FLOAT, S.DECIMAL})
    description = "Multiply numbers by a keyed factor within ±relative, clipped to [min, max]."
    params = {
        "relative": Param((int, float), default=0.1, doc="largest relative change, e.g. 0.1 for ±10%"),
        "min": Param((int, float), default=None, doc="lower bound of the output"),
        "max": Param((int, float), default=None, doc="upper bound of the output"),
    }

    @property
    def survivor_scope(self) -> str | None:
        return None  # a small integer may round back to itself; noise hides magnitude, not identity

    def _post_init(self):
        if not 0 < self.options["relative"] <= 1:
            raise TransformError("transform 'noise': relative must be in (0, 1]")

    def apply(self, array, ctx):
        rel = float(self.options["relative"])
        domain = f"noise:{ctx.table}.{ctx.column.name}"

        def factors(distinct):
            digests = ctx.key.digests64_arrow(domain, distinct)
            unit = (digests >> np.uint64(11)).astype(np.float64) / float(1 << 53)
            return pa.array(1.0 + (unit * 2 - 1) * rel, pa.float64())

        factor = map_distinct(array, factors, pa.float64(), arrow=True)
        as_float = pc.cast(array, pa.float64())
        out = pc.multiply(as_float, factor)
        if self.options["min"] is not None:
            out = pc.max_element_wise(out, float(self.options["min"]))
        if self.options["max"] is not None:
            out = pc.min_element_wise(out, float(self.options["max"]))
        if pa.types.is_integer(array.type):
            out = pc.round(out)
        if pa.types.is_decimal(array.type):
            out = pc.round(out, ndigits=array.type.scale)
        return pc.cast(out, array.type, safe=False)


@register
class RegexReplace(Transform):
    name = "regex"
    costly = True
    accepts = frozenset({S.STRING, S.JSON})
    description = "Replace every match of an RE2 pattern with a replacement (\\1 style groups allowed)."
    params = {
        "pattern": Param(str, required=True, doc="RE2 regular expression"),
        "replace": Param(str, default="*", doc="replacement text"),
    }

    def _post_init(self):
        try:
            pc.replace_substring_regex(pa.array(["x"]), pattern=self.options["pattern"], replacement="")
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise TransformError(f"transform 'regex': pattern is not a valid RE2 expression: {exc}") from exc

    def apply(self, array, ctx):
        return pc.replace_substring_regex(array, pattern=self.options["pattern"], replacement=self.options["replace"])


@register
class JsonMask(Transform):
    name = "json"
    costly = True
    accepts = frozenset({S.JSON, S.STRING})
    description = (
        "Mask fields inside JSON documents by path: `paths: {'$.contact.email': {fake: email}}`. "
        "`*` matches every key or array element at one level. Unparseable documents are redacted."
    )
    params = {"paths": Param(dict, required=True, doc="JSON path -> transform spec")}

    def _post_init(self):
        self.rules: list[tuple[list[str], Transform]] = []
        for path, spec in self.options["paths"].items():
            if not isinstance(path, str) or not path.startswith("$"):
                raise TransformError(f"transform 'json': path {path!r} must start with '$', e.g. '$.user.email'")
            steps = [s for s in re.split(r"\.|\[(\*|\d+)\]", path[1:]) if s]
            inner = build(spec)
            if isinstance(inner, (JsonMask, DropColumn)):
                raise TransformError(f"transform 'json': path {path!r} cannot use {inner.name!r}")
            self.rules.append((steps, inner))

    def apply(self, array, ctx):
        inner_ctx = ColumnContext(ctx.key, ctx.table, S.Column(ctx.column.name, "TEXT", S.STRING), ctx.locale)

        def mask_documents(values):
            docs = []
            for text in values:
                try:
                    doc = json.loads(text) if isinstance(text, str) else text
                except ValueError:
                    ctx.count("unparseable_json")
                    docs.append(json.dumps("REDACTED"))
                    continue
                for steps, inner in self.rules:
                    doc = _mask_path(doc, steps, inner, inner_ctx)
                docs.append(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
            return docs

        return map_distinct(array, mask_documents, string_type_of(array))


def _mask_path(node: Any, steps: list[str], inner: Transform, ctx: ColumnContext) -> Any:
    if not steps:
        if node is None or isinstance(node, (dict, list)):
            return None if isinstance(inner, Null) else node if node is None else _mask_leaf(json.dumps(node), inner, ctx)
        return _mask_leaf(node, inner, ctx)
    head, rest = steps[0], steps[1:]
    if isinstance(node, dict):
        keys = list(node) if head == "*" else [head] if head in node else []
        for k in keys:
            node[k] = _mask_path(node[k], rest, inner, ctx)
    elif isinstance(node, list):
        idx = range(len(node)) if head == "*" else [int(head)] if head.isdigit() and int(head) < len(node) else []
        for i in idx:
            node[i] = _mask_path(node[i], rest, inner, ctx)
    return node


def _mask_leaf(value: Any, inner: Transform, ctx: ColumnContext) -> Any:
    text = value if isinstance(value, str) else json.dumps(value)
    out = inner.apply(pa.array([text], type=pa.string()), ctx)
    return out[0].as_py()


@register
class DropColumn(Transform):
    name = "drop"
    description = "Leave the column out of the snapshot entirely."

    @property
    def survivor_scope(self) -> str | None:
        return None

    def check(self, column):
        if column.primary_key:
            return ["a primary-key column cannot be dropped; hash or fake it instead"]
        return []

    def apply(self, array, ctx):  # pragma: no cover - the extractor never reads dropped columns
        raise TransformError("transform 'drop' has no output; the column is not extracted")


def catalogue() -> list[dict[str, Any]]:
    """Describe every registered transform (for docs and `cleanroom transforms`)."""
    return [
        {
            "name": cls.name,
            "accepts": sorted(cls.accepts),
            "injective": cls.injective,
            "params": {k: p.doc for k, p in cls.params.items()},
            "description": cls.description,
        }
        for cls in sorted(REGISTRY.values(), key=lambda c: c.name)
    ]


def apply_all(batch: pa.RecordBatch, rules: dict[str, Transform], ctx_for: Callable[[str], ColumnContext]) -> pa.RecordBatch:
    """Mask one batch: every column through its rule, dropped columns left out."""
    arrays, names = [], []
    for name in batch.schema.names:
        rule = rules[name]
        if isinstance(rule, DropColumn):
            continue
        ctx = ctx_for(name)
        ctx.batch = batch
        arrays.append(rule.apply(batch.column(name), ctx))
        names.append(name)
    return pa.RecordBatch.from_arrays(arrays, names=names)
