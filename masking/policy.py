"""Masking policies: load, check against a schema, resolve foreign keys.

A policy is a YAML file::

    locale: en_US            # default locale for fakes (en_US or ja_JP)
    tables:
      customers:
        columns:
          id: keep
          email: {fake: email}
          phone: {partial: {keep_last: 4}}
          notes: scrub
      payments: drop           # dropped whole: never read
      audit_log:
        rows: none             # structure only
        columns: {...}
      orders:
        where: "created_at >= '2024-01-01'"   # row filter, SQL in the source's dialect
        columns: {...}

The check is fail-closed: every table and column of the source must be covered, and every
problem is reported at once with file and line. Nothing is read before the check passes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from masking import schema as S
from masking import transforms as T
from masking.errors import PolicyError, Problem, SchemaDriftError, TransformError

MASK, DROP, EMPTY = "mask", "drop", "empty"
LOCALES = ("en_US", "ja_JP")


@dataclass
class TableRule:
    name: str
    action: str = MASK
    columns: dict[str, T.Transform] = field(default_factory=dict)
    column_lines: dict[str, int] = field(default_factory=dict)
    where: str | None = None
    locale: str | None = None
    line: int | None = None


@dataclass
class Policy:
    tables: dict[str, TableRule]
    locale: str = "en_US"
    path: str | None = None
    sha256: str = ""

    def rule(self, table: str, column: str) -> T.Transform:
        return self.tables[table].columns[column]

    def locale_for(self, table: str) -> str:
        return self.tables[table].locale or self.locale

    def summary(self) -> dict[str, Any]:
        """Tables and columns with transform labels, safe to publish."""
        return {
            name: {"action": rule.action, "columns": {c: t.label for c, t in rule.columns.items()}}
            for name, rule in self.tables.items()
        }


# --- loading ---------------------------------------------------------------------------------


def load(path: str | Path) -> Policy:
    """Load and parse a policy file; structural problems raise PolicyError with line numbers."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError([Problem(f"cannot read policy file: {exc.strerror}", file=str(path))]) from exc
    return loads(text, source=str(path))


def loads(text: str, source: str = "<policy>") -> Policy:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        line = exc.problem_mark.line + 1 if getattr(exc, "problem_mark", None) else None
        raise PolicyError([Problem(f"not valid YAML: {getattr(exc, 'problem', exc)}", file=source, line=line)]) from exc
    problems: list[Problem] = []
    policy = _parse_root(root, source, problems)
    if problems:
        raise PolicyError(problems, hint="Fix the policy file and run again; nothing was read from the source.")
    policy.sha256 = hashlib.sha256(text.encode()).hexdigest()
    return policy


def _line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _to_py(node: yaml.Node) -> Any:
    return yaml.SafeLoader(" ").construct_object(node, deep=True) if node is not None else None


def _mapping_items(node: yaml.Node) -> list[tuple[yaml.Node, yaml.Node]]:
    return node.value if isinstance(node, yaml.MappingNode) else []


def _parse_root(root: yaml.Node | None, source: str, problems: list[Problem]) -> Policy:
    if not isinstance(root, yaml.MappingNode):
        problems.append(Problem("a policy must be a mapping with a `tables:` key", file=source, line=_line(root)))
        return Policy(tables={}, path=source)
    locale, tables_node = "en_US", None
    for key, value in root.value:
        if key.value == "tables":
            tables_node = value
        elif key.value == "locale":
            locale = value.value
            if locale not in LOCALES:
                problems.append(Problem(f"unknown locale {locale!r}; use one of {', '.join(LOCALES)}", file=source, line=_line(key)))
        elif key.value != "version":
            problems.append(Problem(f"unknown top-level key {key.value!r} (expected locale, tables)", file=source, line=_line(key)))
    if not isinstance(tables_node, yaml.MappingNode):
        problems.append(Problem("`tables:` must be a mapping of table name to rule", file=source, line=_line(tables_node or root)))
        return Policy(tables={}, locale=locale, path=source)
    tables = {}
    for key, value in tables_node.value:
        tables[key.value] = _parse_table(key.value, key, value, source, problems)
    return Policy(tables=tables, locale=locale, path=source)


def _parse_table(name: str, key: yaml.Node, node: yaml.Node, source: str, problems: list[Problem]) -> TableRule:
    rule = TableRule(name=name, line=_line(key))
    if isinstance(node, yaml.ScalarNode):
        if node.value == "drop":
            rule.action = DROP
        else:
            problems.append(Problem(f"a table rule is `drop` or a mapping, got {node.value!r}", name, file=source, line=_line(node)))
        return rule
    for k, v in _mapping_items(node):
        if k.value == "drop":
            rule.action = DROP if _to_py(v) is True else rule.action
        elif k.value == "rows":
            if v.value != "none":
                problems.append(Problem("`rows:` only accepts `none` (keep the structure, no rows)", name, file=source, line=_line(k)))
            rule.action = EMPTY
        elif k.value == "where":
            rule.where = str(v.value)
        elif k.value == "locale":
            rule.locale = v.value
            if v.value not in LOCALES:
                problems.append(Problem(f"unknown locale {v.value!r}", name, file=source, line=_line(k)))
        elif k.value == "columns":
            for ck, cv in _mapping_items(v):
                rule.column_lines[ck.value] = _line(ck)
                if isinstance(cv, yaml.ScalarNode) and not cv.value.strip():
                    problems.append(Problem("empty rule; name a transform (e.g. keep, redact, {fake: email})", name, ck.value, file=source, line=_line(ck)))
                    continue
                # A bare scalar is a transform name taken literally: YAML would read `null` as None.
                spec = cv.value if isinstance(cv, yaml.ScalarNode) else _to_py(cv)
                try:
                    rule.columns[ck.value] = T.build(spec)
                except TransformError as exc:
                    problems.append(Problem(str(exc), name, ck.value, file=source, line=_line(ck)))
        else:
            problems.append(
                Problem(f"unknown table key {k.value!r} (expected columns, drop, rows, where, locale)", name, file=source, line=_line(k))
            )
    if rule.action != DROP and not isinstance(node, yaml.MappingNode):
        problems.append(Problem("a table rule must be a mapping", name, file=source, line=_line(node)))
    return rule


# --- checking against a schema ---------------------------------------------------------------


def check(policy: Policy, schema: S.Schema) -> Policy:
    """Check ``policy`` against ``schema``; return it with foreign keys resolved.

    Raises SchemaDriftError when the source has tables or columns the policy does not cover
    (with a proposed fragment), PolicyError for every other problem. All problems are
    reported together.
    """
    problems: list[Problem] = []
    new_tables, new_columns = [], []
    src = policy.path

    for name in sorted(set(policy.tables) - set(schema.tables)):
        problems.append(Problem("table is in the policy but not in the source", name, file=src, line=policy.tables[name].line))
    for name, table in schema.tables.items():
        rule = policy.tables.get(name)
        if rule is None:
            new_tables.append(table)
            problems.append(Problem("table is in the source but not covered by the policy (schema drift?)", name, file=src))
            continue
        if rule.action == DROP:
            continue
        for col in table.columns:
            transform = rule.columns.get(col.name)
            if transform is None:
                new_columns.append((table, col))
                problems.append(Problem("column is not covered by the policy (schema drift?)", name, col.name, file=src, line=rule.line))
                continue
            for message in transform.check(col):
                problems.append(Problem(message, name, col.name, file=src, line=rule.column_lines.get(col.name)))
        for cname in sorted(set(rule.columns) - set(table.column_names)):
            problems.append(Problem("column is in the policy but not in the source table", name, cname, file=src, line=rule.column_lines.get(cname)))
        problems += _check_entities(rule, table, src)

    problems += _resolve_foreign_keys(policy, schema)
    if new_tables or new_columns:
        from masking.classify import propose_fragment

        raise SchemaDriftError(
            problems,
            hint="The source changed or the policy is incomplete: every table and column must have a rule.",
            fragment=propose_fragment(new_tables, new_columns),
        )
    if problems:
        raise PolicyError(problems, hint="Fix the policy and run again; nothing was read from the source.")
    return policy


def _check_entities(rule: TableRule, table: S.Table, src: str | None) -> list[Problem]:
    problems = []
    for cname, transform in rule.columns.items():
        entity = transform.options.get("entity") if isinstance(transform, T.DateShift) else None
        if entity and entity not in table.column_names:
            problems.append(
                Problem(f"date_shift entity column {entity!r} does not exist in this table", rule.name, cname, file=src, line=rule.column_lines.get(cname))
            )
    return problems


def _resolve_foreign_keys(policy: Policy, schema: S.Schema) -> list[Problem]:
    """Give every foreign-key column the transform of the key it references.

    A referencing column left on ``keep`` inherits the referenced column's transform, so
    joins still match after masking. Any other disagreement is a problem: the two sides
    would no longer join.
    """
    problems = []
    for table in schema.tables.values():
        rule = policy.tables.get(table.name)
        if rule is None or rule.action == DROP:
            continue
        for fk in table.foreign_keys:
            ref_rule = policy.tables.get(fk.ref_table)
            if ref_rule is None:
                continue
            for col, ref_col in zip(fk.columns, fk.ref_columns):
                if col not in rule.columns:
                    continue
                if ref_rule.action == DROP:
                    continue
                ref_transform = ref_rule.columns.get(ref_col)
                mine = rule.columns[col]
                if ref_transform is None or mine == ref_transform:
                    continue
                if isinstance(mine, T.Keep):
                    rule.columns[col] = ref_transform
                else:
                    problems.append(
                        Problem(
                            f"foreign key to {fk.ref_table}.{ref_col} uses {mine.label!r} but the referenced column uses "
                            f"{ref_transform.label!r}; they must match or the join breaks (set `keep` to inherit)",
                            table.name, col, file=policy.path, line=rule.column_lines.get(col),
                        )
                    )
    return problems
