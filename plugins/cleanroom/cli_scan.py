"""``cleanroom scan URL``: draft a masking policy from a live database.

Reads the schema and a sample of rows (read-only), classifies every column and writes a policy
that passes ``cleanroom check`` as is, with the evidence for each rule in a YAML comment.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("cleanroom.scan")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "scan",
        help="draft a masking policy from a database: schema plus a sample of rows, read-only",
        description="Reflect a database, sample its rows read-only, classify every column and write a draft "
        "policy. Comments carry pattern names and counts, never values.",
    )
    p.add_argument("url", help="SQLAlchemy-style URL, e.g. postgresql://user@host/db or sqlite:///path.db")
    p.add_argument("--out", help="write the policy to this file (default: stdout)")
    p.add_argument(
        "--sample", type=_non_negative, default=1000, help="rows read per table (default 1000; 0: names only)"
    )
    p.add_argument(
        "--schema", dest="db_schema", help="database schema to scan (default: the connection's default)"
    )
    p.add_argument(
        "--locale", choices=("en_US", "ja_JP"), default="en_US", help="locale for fakes (default en_US)"
    )
    p.set_defaults(func=cmd_scan)


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of rows, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("the sample size cannot be negative")
    return value


def cmd_scan(args) -> int:
    from cleanroom.cli import EXIT_OK
    from cleanroom.scan import scan

    from masking.classify import CLASSES

    result = scan(args.url, sample=args.sample, db_schema=args.db_schema, locale=args.locale)
    if args.out:
        Path(args.out).write_text(result.policy_text, encoding="utf-8")
        log.info("wrote draft policy to %s", args.out)
    else:
        sys.stdout.write(result.policy_text)
    counts = result.counts()
    summary = ", ".join(f"{kind} {counts[kind]}" for kind in (*CLASSES, "dropped_table") if counts[kind])
    log.info("scanned %d table(s): %s", len(result.schema.tables), summary)
    return EXIT_OK
