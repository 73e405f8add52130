"""Plan a referentially closed subset of a source: one SQL ``WHERE`` fragment per table.

A source may ask for a subset (``subset: {roots: {customer: {percent: 10}}}``). The plan is
pure SQL generation: each table gets a fragment that the extractor ANDs into its streaming
``SELECT``, so extraction stays read-only and streaming. Nothing is written to the source:
PostgreSQL refuses ``CREATE TEMP TABLE`` inside a ``READ ONLY`` transaction, and key sets
fetched into Python would not be memory-bounded on production tables.

The rows kept, per table:

- **seed** (downward): a root keeps the rows matching its filter. A table that references a
  seeded table keeps the rows whose foreign key points at a seeded row or is NULL, for every
  seeded parent at once (``rental`` of the kept customers).
- **closure** (upward): every row referenced by a kept row is kept too, transitively
  (``inventory`` of the kept rentals, then ``film`` of that inventory). Children pulled in
  this way do not pull in *their* other children, so a subset cannot snowball into the
  whole database.
- **whole**: tables unrelated to any root, and referenced tables that a whole table points
  at, are kept whole (fragment ``None``).

Cycles (``store`` <-> ``staff``) and self-references (``employee.manager_id``) are closed by
one ``WITH RECURSIVE`` query per strongly connected group of tables, inside the fragment.
Every fragment is self-contained: the common table expressions it needs are repeated inside
it, so fragments can be run in any order, in separate transactions.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from masking import schema as S
from masking.errors import ConfigError

log = logging.getLogger(__name__)

# Percent sampling places each row's key hash in one of this many buckets, so percentages
# down to 0.01 are honoured.
BUCKETS = 10_000
ROOT_KEYS = frozenset({"percent", "where"})
MYSQL = ("mysql", "mariadb")
DIALECTS = ("postgresql", "sqlite", *MYSQL)
TRUE = "1 = 1"
FALSE = "1 = 0"


# --- checking --------------------------------------------------------------------------------


def check_subset(schema: S.Schema, roots: object, dialect: str | None = None) -> list[str]:
    """List every problem of a subset's ``roots`` against the schema; empty when it is usable."""
    dialect = dialect or schema.dialect
    if not isinstance(roots, Mapping) or not roots:
        return [
            "subset.roots must be a non-empty mapping of table name to {percent: N} or {where: SQL}, "
            f"got {type(roots).__name__}"
        ]
    problems = []
    if dialect not in DIALECTS:
        problems.append(f"subsetting supports the {', '.join(DIALECTS)} dialects, not {dialect!r}")
    for name, spec in roots.items():
        problems += [f"subset root {name!r}: {p}" for p in _root_problems(schema, name, spec, dialect)]
    return problems


def _root_problems(schema: S.Schema, name: object, spec: object, dialect: str) -> list[str]:
    table = schema.tables.get(name) if isinstance(name, str) else None
    if table is None:
        hint = " (put the tables under `subset: {roots: ...}`)" if name == "roots" else ""
        return [f"is not a table of the source{hint}"]
    if not isinstance(spec, Mapping) or not spec:
        return [f"must be a mapping with `percent:` and/or `where:`, got {type(spec).__name__}"]
    problems = []
    unknown = sorted(str(k) for k in spec if k not in ROOT_KEYS)
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)} (expected percent, where)")
    if "where" in spec:
        where = spec["where"]
        if not isinstance(where, str) or not where.strip():
            problems.append(f"`where` must be a non-empty SQL condition, got {type(where).__name__}")
        elif ";" in where:
            problems.append("`where` must be one condition without `;`")
    if "percent" in spec:
        problems += _percent_problems(table, spec["percent"], dialect)
    return problems


def _percent_problems(table: S.Table, percent: object, dialect: str) -> list[str]:
    if isinstance(percent, bool) or not isinstance(percent, numbers.Real):
        return [f"`percent` must be a number, got {type(percent).__name__}"]
    if not 0 < percent <= 100:
        return [f"`percent` must be above 0 and at most 100, got {percent}"]
    if round(percent * BUCKETS / 100) < 1:
        return [f"`percent` below {100 / BUCKETS} keeps nothing; use a larger one or `where:`"]
    if not table.primary_key:
        return ["`percent` samples by primary key and the table has none; use `where:` instead"]
    if dialect == "sqlite" and not (
        len(table.primary_key) == 1 and table.column(table.primary_key[0]).logical == S.INTEGER
    ):
        return ["`percent` on SQLite needs a single integer primary key; use `where:` instead"]
    return []


# --- the SQL the plan is made of -------------------------------------------------------------


@dataclass(eq=False)
class _Cte:
    """A named row set inside a fragment's ``WITH RECURSIVE`` list.

    Seed and keep sets select the columns other tables ask for (``demand``); a recursive set
    of a cycle has a fixed column list and a body rendered by the planner.
    """

    name: str
    table: S.Table | None = None
    where: object = None
    demand: list[str] = field(default_factory=list)
    columns: tuple[str, ...] = ()
    body: str = ""
    deps: tuple["_Cte", ...] = ()

    def want(self, columns: Iterable[str]) -> tuple[str, ...]:
        for c in columns:
            if c not in self.demand:
                self.demand.append(c)
        return tuple(columns)


@dataclass(frozen=True, eq=False)
class _In:
    """``(columns) IN (SELECT cte_columns FROM cte [WHERE t = tag])``."""

    columns: tuple[str, ...]
    cte: _Cte
    cte_columns: tuple[str, ...]
    tag: int | None = None


@dataclass(frozen=True)
class _Op:
    op: str  # "AND" or "OR"
    terms: tuple


def _and(terms: list) -> object:
    return terms[0] if len(terms) == 1 else _Op("AND", tuple(terms))


def _or(terms: list) -> object:
    if not terms:
        return FALSE
    return terms[0] if len(terms) == 1 else _Op("OR", tuple(terms))


def _ctes_of(pred: object) -> list[_Cte]:
    if isinstance(pred, _In):
        return [pred.cte]
    if isinstance(pred, _Op):
        return [c for t in pred.terms for c in _ctes_of(t)]
    return []


class _Renderer:
    def __init__(self, dialect: str) -> None:
        from sqlalchemy.dialects import mysql, postgresql, sqlite

        self.dialect = dialect
        self.preparer = {"postgresql": postgresql, "sqlite": sqlite}.get(dialect, mysql).dialect().identifier_preparer

    def q(self, name: str) -> str:
        return self.preparer.quote(name)

    def table(self, table: S.Table) -> str:
        name = self.q(table.name)
        return f"{self.q(table.schema)}.{name}" if table.schema else name

    def cols(self, columns: Iterable[str], alias: str = "") -> list[str]:
        prefix = f"{alias}." if alias else ""
        return [prefix + self.q(c) for c in columns]

    def row(self, columns: Iterable[str], alias: str = "") -> str:
        cols = self.cols(columns, alias)
        return cols[0] if len(cols) == 1 else f"({', '.join(cols)})"

    def pred(self, pred: object, inline: bool) -> str:
        """Render a predicate; ``inline`` puts the needed CTEs inside each subquery."""
        if isinstance(pred, str):
            return pred
        if isinstance(pred, _Op):
            return "(" + f" {pred.op} ".join(self.pred(t, inline) for t in pred.terms) + ")"
        select = f"SELECT {', '.join(self.cols(pred.cte_columns))} FROM {pred.cte.name}"
        if pred.tag is not None:
            select += f" WHERE t = {pred.tag}"
        if inline:
            select = f"WITH RECURSIVE {self.with_list(pred.cte)} {select}"
        return f"{self.row(pred.columns)} IN ({select})"

    def with_list(self, top: _Cte) -> str:
        ordered: list[_Cte] = []

        def visit(cte: _Cte) -> None:
            if cte in ordered:
                return
            for dep in cte.deps:
                visit(dep)
            ordered.append(cte)

        visit(top)
        return ", ".join(f"{c.name}({', '.join(self.cols(c.columns))}) AS ({c.body})" for c in ordered)

    def percent(self, table: S.Table, percent: float) -> str:
        keep = round(percent * BUCKETS / 100)
        if keep >= BUCKETS:
            return TRUE
        key = self.cols(table.primary_key)
        if self.dialect == "postgresql":
            # md5 is documented and stable across releases (hashtext is internal and is not).
            text = " || '|' || ".join(f"CAST({c} AS text)" for c in key)
            bucket = f"mod(CAST(CAST('x' || substr(md5({text}), 1, 7) AS bit(28)) AS integer), {BUCKETS})"
        elif self.dialect in MYSQL:
            text = key[0] if len(key) == 1 else f"CONCAT_WS('|', {', '.join(key)})"
            bucket = f"MOD(CRC32({text}), {BUCKETS})"
        else:
            # SQLite has no hash function: 7919 is prime to the bucket count, so consecutive
            # integer keys spread over the buckets instead of filling the first ones.
            bucket = f"((abs({key[0]}) * 7919) % {BUCKETS})"
        return f"{bucket} < {keep}"


# --- planning --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Edge:
    child: str
    columns: tuple[str, ...]
    parent: str
    ref_columns: tuple[str, ...]


def plan_subset(schema: S.Schema, roots: Mapping, dialect: str | None = None) -> dict[str, str | None]:
    """Return, for every table of ``schema``, the ``WHERE`` fragment of its subset rows.

    ``roots`` maps table names to ``{percent: P}`` (a deterministic, run-stable sample by
    primary key hash) and/or ``{where: SQL}`` (a condition in the source's dialect); both
    given means both must hold. ``None`` means the table is kept whole. The fragments refer
    to each table's columns unqualified, as ``source.stream_batches(where=...)`` expects.

    Raises :class:`ConfigError` listing every problem :func:`check_subset` finds.

    Known limitations: within a cycle, only roots and rows whose parents precede them in the
    cycle are seeded downward; other rows of a cycle are kept only when referenced. A table
    reached from a root only through unseeded tables keeps just the rows others reference.
    Fragments are evaluated per table: under ``per_table`` consistency, rows written between
    two tables' reads can break closure; read all tables in one snapshot.
    """
    dialect = dialect or schema.dialect
    problems = check_subset(schema, roots, dialect)
    if problems:
        raise ConfigError(
            f"the subset has {len(problems)} problem(s): " + "; ".join(problems)
            + ". Fix `subset.roots` in cleanroom.yaml."
        )
    plan = _Planner(schema, roots, _Renderer(dialect)).plan()
    restricted = sorted(t for t, f in plan.items() if f is not None)
    log.info(
        "subset from root(s) %s: %d table(s) filtered, %d kept whole",
        ", ".join(sorted(roots)), len(restricted), len(plan) - len(restricted),
    )
    return plan


class _Planner:
    def __init__(self, schema: S.Schema, roots: Mapping, renderer: _Renderer) -> None:
        self.tables = schema.tables
        self.roots = roots
        self.r = renderer
        self.parents: dict[str, list[_Edge]] = {t: [] for t in self.tables}
        self.children: dict[str, list[_Edge]] = {t: [] for t in self.tables}
        for table in self.tables.values():
            for fk in table.foreign_keys:
                parent = self.tables.get(fk.ref_table)
                if parent is None:
                    continue  # a table outside the source is not read, so it cannot be subset
                edge = _Edge(table.name, fk.columns, fk.ref_table, fk.ref_columns or parent.primary_key)
                self.parents[table.name].append(edge)
                self.children[fk.ref_table].append(edge)
        self.seeds: dict[str, object] = {}
        self.seed_ctes: dict[str, _Cte] = {}
        self.keeps: dict[str, object] = {}
        self.keep_ctes: dict[str, _Cte] = {}
        self.counter = 0

    def plan(self) -> dict[str, str | None]:
        restricted = self._restricted()
        groups = self._groups(restricted)
        for group in groups:
            self._seed(group)
        for group in reversed(groups):
            self._keep(group)
        for cte in self.seed_ctes.values():
            self._finish(cte)
        for cte in self.keep_ctes.values():
            self._finish(cte)
        return {
            name: self.r.pred(self.keeps[name], inline=True) if name in restricted else None
            for name in sorted(self.tables)
        }

    # Which tables are filtered at all.

    def _restricted(self) -> set[str]:
        downstream = _reach(self.roots, lambda t: (e.child for e in self.children[t]))
        affected = _reach(downstream, lambda t: (e.parent for e in self.parents[t]))
        whole = set(self.tables) - affected
        changed = True
        while changed:  # a table referenced by a whole table is whole too
            changed = False
            for name in sorted(affected - downstream - whole):
                if any(e.child in whole for e in self.children[name]):
                    whole.add(name)
                    changed = True
        return set(self.tables) - whole

    def _groups(self, restricted: set[str]) -> list[tuple[str, ...]]:
        """Strongly connected groups of restricted tables, referenced groups first."""
        reach = {t: _reach([t], lambda u: (e.parent for e in self.parents[u] if e.parent in restricted)) for t in restricted}
        group_of = {t: tuple(sorted(u for u in reach[t] if t in reach[u])) for t in restricted}
        ordered, placed = [], set()
        pending = sorted(set(group_of.values()))
        while pending:
            ready = next(
                g for g in pending
                if {e.parent for t in g for e in self.parents[t] if e.parent in restricted} - set(g) <= placed
            )
            ordered.append(ready)
            placed |= set(ready)
            pending.remove(ready)
        return ordered

    def _cyclic(self, group: tuple[str, ...]) -> bool:
        return len(group) > 1 or any(e.parent == group[0] for e in self.parents[group[0]])

    def _name(self, kind: str) -> str:
        self.counter += 1
        return f"cr_{kind}_{self.counter}"

    # Downward: the seed rows.

    def _seed(self, group: tuple[str, ...]) -> None:
        earlier: set[str] = set()
        pending = sorted(group, key=lambda t: (t not in self.roots, t))
        progress = True
        while pending and progress:
            progress = False
            for name in list(pending):
                terms = [self._seeded_by(e) for e in self.parents[name] if self._seeds_downward(e, group, earlier)]
                if name in self.roots:
                    terms = self._root_terms(name) + terms
                if terms:
                    self.seeds[name] = _and(terms)
                    earlier.add(name)
                    pending.remove(name)
                    progress = True

    def _seeds_downward(self, edge: _Edge, group: tuple[str, ...], earlier: set[str]) -> bool:
        if edge.parent == edge.child or edge.parent not in self.seeds:
            return False
        return edge.parent not in group or edge.parent in earlier

    def _root_terms(self, name: str) -> list:
        spec = self.roots[name]
        terms = []
        if "where" in spec:
            terms.append(f"({spec['where']})")
        if "percent" in spec:
            terms.append(self.r.percent(self.tables[name], spec["percent"]))
        return terms

    def _seeded_by(self, edge: _Edge) -> object:
        cte = self.seed_ctes.get(edge.parent)
        if cte is None:
            cte = self.seed_ctes[edge.parent] = _Cte(self._name("seed"), self.tables[edge.parent], self.seeds[edge.parent])
        member = _In(edge.columns, cte, cte.want(edge.ref_columns))
        child = self.tables[edge.child]
        nullable = [c for c in edge.columns if child.column(c).nullable]
        return _or([f"{self.r.q(c)} IS NULL" for c in nullable] + [member])

    # Upward: the closure.

    def _keep(self, group: tuple[str, ...]) -> None:
        if not self._cyclic(group):
            name = group[0]
            self.keeps[name] = self._seed_and_referenced(name, group)
            return
        self._keep_cycle(group)

    def _seed_and_referenced(self, name: str, group: tuple[str, ...]) -> object:
        terms = [self.seeds[name]] if name in self.seeds else []
        for edge in self.children[name]:
            if edge.child in group:
                continue
            cte = self.keep_ctes.get(edge.child)
            if cte is None:
                cte = self.keep_ctes[edge.child] = _Cte(self._name("keep"), self.tables[edge.child], self.keeps[edge.child])
            terms.append(_In(edge.ref_columns, cte, cte.want(edge.columns)))
        return _or(terms)

    def _keep_cycle(self, group: tuple[str, ...]) -> None:
        """Close a cycle with one recursive set of tagged keys: (t, keys of table t)."""
        ids = {t: self._identity(t, group) for t in group}
        slots, columns = {}, ["t"]
        for i, t in enumerate(group):
            slots[t] = [f"c{i}_{j}" for j in range(len(ids[t]))]
            columns += slots[t]
        cte = _Cte(self._name("cycle"), columns=tuple(columns))

        def select(tag: int, target: str, alias: str) -> str:
            values = [str(tag)]
            for t in group:
                values += self.r.cols(ids[t], alias) if t == target else ["NULL"] * len(ids[t])
            return "SELECT " + ", ".join(values)

        starts, deps = [], []
        for i, t in enumerate(group):
            where = self._seed_and_referenced(t, group)
            deps += _ctes_of(where)
            starts.append(f"{select(i, t, 'x')} FROM {self.r.table(self.tables[t])} x WHERE {self.r.pred(where, inline=False)}")
        steps = []
        for i, t in enumerate(group):
            for edge in self.parents[t]:
                if edge.parent not in group:
                    continue
                on_child = " AND ".join(f"{a} = {cte.name}.{b}" for a, b in zip(self.r.cols(ids[t], "x"), slots[t]))
                on_parent = " AND ".join(
                    f"{a} = {b}" for a, b in zip(self.r.cols(edge.ref_columns, "y"), self.r.cols(edge.columns, "x"))
                )
                steps.append((i, t, edge, on_child, on_parent))
        cte.body = self._cycle_body(cte, group, starts, steps, select)
        cte.deps = tuple(dict.fromkeys(deps))
        for i, t in enumerate(group):
            self.keeps[t] = _In(ids[t], cte, tuple(slots[t]), tag=i)

    def _cycle_body(self, cte: _Cte, group, starts: list[str], steps: list, select) -> str:
        tables = {t: self.r.table(self.tables[t]) for t in group}
        if self.r.dialect == "postgresql":
            # PostgreSQL allows one recursive reference: the steps run in a LATERAL union.
            branches = [
                f"{select(group.index(e.parent), e.parent, 'y')} FROM {tables[t]} x JOIN {tables[e.parent]} y ON {on_p} "
                f"WHERE {cte.name}.t = {i} AND {on_c}"
                for i, t, e, on_c, on_p in steps
            ]
            lateral = " UNION ALL ".join(branches)
            return f"({' UNION '.join(starts)}) UNION SELECT n.* FROM {cte.name} CROSS JOIN LATERAL ({lateral}) n"
        branches = [
            f"{select(group.index(e.parent), e.parent, 'y')} FROM {cte.name} JOIN {tables[t]} x ON {cte.name}.t = {i} "
            f"AND {on_c} JOIN {tables[e.parent]} y ON {on_p}"
            for i, t, e, on_c, on_p in steps
        ]
        return " UNION ".join(starts + branches)

    def _identity(self, name: str, group: tuple[str, ...]) -> tuple[str, ...]:
        """The columns that name a row of a cycle: the primary key, else a referenced key."""
        table = self.tables[name]
        if table.primary_key:
            return table.primary_key
        incoming = sorted(e.ref_columns for e in self.children[name] if e.child in group)
        return incoming[0]

    def _finish(self, cte: _Cte) -> None:
        cte.columns = tuple(cte.demand)
        cte.deps = tuple(dict.fromkeys(_ctes_of(cte.where)))
        cte.body = (
            f"SELECT {', '.join(self.r.cols(cte.columns))} FROM {self.r.table(cte.table)} "
            f"WHERE {self.r.pred(cte.where, inline=False)}"
        )


def _reach(start: Iterable[str], step) -> set[str]:
    seen = set(start)
    todo = list(seen)
    while todo:
        for nxt in step(todo.pop()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen
