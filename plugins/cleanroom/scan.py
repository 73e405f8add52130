"""Scan a source database and draft a masking policy for it.

The scan reflects the schema, reads the first N rows of every table that is not a payment
table (one read-only transaction, streamed), gathers detector evidence per text column and
hands everything to :mod:`masking.classify`. Only counts and pattern names leave the sample:
the draft policy, its comments and the log never carry a value.

The draft is checked with :func:`masking.policy.check` against the same schema before it is
returned, so it is runnable as is; a human still reviews it before it guards real data.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass

from masking import classify as C
from masking import policy as P
from masking import schema as S
from masking.errors import CleanroomError, SourceError

log = logging.getLogger(__name__)

DEFAULT_SAMPLE = 1000
# Columns whose values are read as text and run through the detectors. Arrays, full-text
# vectors and other exotic types arrive as their text form, which is what a leak would look like.
SAMPLED_TYPES = frozenset({S.STRING, S.JSON, S.OTHER})


@dataclass
class ScanResult:
    schema: S.Schema
    proposals: dict[str, C.TableProposal]
    policy_text: str

    def counts(self) -> Counter[str]:
        """Columns per class, plus ``dropped_table`` per dropped table."""
        counts: Counter[str] = Counter()
        for proposal in self.proposals.values():
            if proposal.drop:
                counts["dropped_table"] += 1
            counts.update(c.kind for c in proposal.columns.values())
        return counts


def scan(
    url: str, *, sample: int = DEFAULT_SAMPLE, db_schema: str | None = None, locale: str = "en_US"
) -> ScanResult:
    """Reflect and sample the source at ``url``; return a checked draft policy.

    Raises SourceError when the URL is unusable or the source cannot be reached.
    """
    from cleanroom import source as src

    if locale not in P.LOCALES:
        raise CleanroomError(f"unknown locale {locale!r}; use one of {', '.join(P.LOCALES)}")
    engine = src.create_engine(_checked_url(url))
    try:
        schema = src.reflect(engine, db_schema)
        log.info("reflected %d table(s) from a %s source", len(schema.tables), engine.dialect.name)
        evidence = sample_evidence(engine, schema, sample) if sample else {}
    finally:
        engine.dispose()

    proposals = {name: C.propose(table, evidence.get(name), locale) for name, table in schema.tables.items()}
    text = C.render_policy(proposals.values(), locale, _header(schema, sample, db_schema))
    _self_check(text, schema)
    return ScanResult(schema, proposals, text)


def _checked_url(url: str) -> str:
    from cleanroom import source as src

    if "://" not in url:
        raise SourceError(
            f"source URL must look like scheme://user@host/database (e.g. postgresql://...); got "
            f"{len(url)} character(s) without '://'"
        )
    scheme = url.split("://", 1)[0]
    if not scheme or any(not (c.isalnum() or c in "+-.") for c in scheme):
        raise SourceError(
            f"source URL has an invalid scheme {scheme!r}; use postgresql, mysql, mariadb or sqlite"
        )
    return src.normalise_url(url)


def sample_evidence(engine, schema: S.Schema, sample: int) -> dict[str, dict[str, C.Evidence]]:
    """Read up to ``sample`` rows per table, in one read-only transaction; return evidence per column.

    Payment tables are not read: the draft drops them whole anyway.
    """
    from cleanroom import source as src

    evidence: dict[str, dict[str, C.Evidence]] = {}
    with src.read_only(engine) as conn:
        for name, table in schema.tables.items():
            columns = [c.name for c in table.columns if c.logical in SAMPLED_TYPES]
            if C.is_payment_table(name) or not columns:
                continue
            batch = _first_batch(src.stream_batches(conn, table, columns, sample))
            if batch is None:
                evidence[name] = {c: C.Evidence() for c in columns}
                continue
            evidence[name] = {c: C.gather_evidence(batch.column(c)) for c in columns}
            log.debug("sampled %s: %d row(s), %d text column(s)", name, batch.num_rows, len(columns))
    return evidence


def _first_batch(batches):
    """Take the first batch and close the cursor: the rest of the table is never fetched."""
    try:
        return next(batches, None)
    finally:
        batches.close()


def _header(schema: S.Schema, sample: int, db_schema: str | None) -> list[str]:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = f"schema {db_schema}" if db_schema else "default schema"
    sampled = f"first {sample} row(s) of each table sampled" if sample else "no rows sampled (names only)"
    return [
        f"Draft masking policy written by `cleanroom scan` on {stamp}.",
        f"Source: a {schema.dialect} database, {where}, {len(schema.tables)} table(s); {sampled}.",
        "It passes `cleanroom check` as written. Review every rule before it guards real data:",
        "comments give the class and the evidence (name patterns and match counts, never values).",
        "Foreign keys are `keep`: they inherit the transform of the key they reference.",
    ]


def _self_check(text: str, schema: S.Schema) -> None:
    """Refuse to hand out a draft that would not pass the policy check (a bug in the classifier)."""
    try:
        P.check(P.loads(text, source="<scanned policy>"), schema)
    except CleanroomError as exc:
        raise CleanroomError(
            f"the scanned draft policy does not pass its own check; please report this:\n{exc}"
        ) from exc
