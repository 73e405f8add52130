"""The cleanroom exception tree.

Every error the project raises on purpose derives from :class:`CleanroomError`. Messages
name what was wrong, what was received (never a raw production value) and what to do.
Each class keeps its constructor arguments in ``args`` so that instances survive pickling:
Airflow moves exceptions between processes.
"""

from __future__ import annotations

from dataclasses import dataclass


class CleanroomError(Exception):
    """Root of every error cleanroom raises on purpose."""


class ConfigError(CleanroomError):
    """The cleanroom.yaml file or a source entry in it is wrong."""


class KeyMissingError(ConfigError):
    """No masking key is configured for a source that needs one."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a policy, located as precisely as the input allows."""

    message: str
    table: str | None = None
    column: str | None = None
    file: str | None = None
    line: int | None = None

    def render(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        target = ".".join(p for p in (self.table, self.column) if p)
        return f"{where}{target + ': ' if target else ''}{self.message}"


class PolicyError(CleanroomError):
    """A masking policy is invalid for the schema it is applied to.

    All problems are collected first and reported together.
    """

    def __init__(self, problems: list[Problem] | tuple[Problem, ...], hint: str = "") -> None:
        problems = tuple(problems)
        super().__init__(problems, hint)
        self.problems = problems
        self.hint = hint

    def __str__(self) -> str:
        lines = [f"masking policy has {len(self.problems)} problem(s):"]
        lines += [f"  - {p.render()}" for p in self.problems]
        if self.hint:
            lines.append(self.hint)
        return "\n".join(lines)


class SchemaDriftError(PolicyError):
    """The source schema has tables or columns the policy does not cover.

    ``fragment`` is a YAML policy fragment that would cover them (safe defaults: masked).
    """

    def __init__(self, problems, hint: str = "", fragment: str = "") -> None:
        super().__init__(problems, hint)
        self.args = (tuple(problems), hint, fragment)
        self.fragment = fragment

    def __str__(self) -> str:
        text = super().__str__()
        if self.fragment:
            text += "\nProposed policy fragment (review, then add it to the policy):\n" + self.fragment
        return text


class TransformError(CleanroomError):
    """A transform failed or was given parameters it cannot use."""


class SourceError(CleanroomError):
    """The source database could not be reached, read or understood."""


class ValidationFailed(CleanroomError):
    """The masked snapshot failed validation; nothing was published.

    ``failures`` holds (table, column, check, count) tuples, never values.
    """

    def __init__(self, failures: list[tuple[str, str | None, str, int]] | tuple = (), summary: str = "") -> None:
        failures = tuple(tuple(f) for f in failures)
        super().__init__(failures, summary)
        self.failures = failures
        self.summary = summary

    def __str__(self) -> str:
        lines = [f"validation failed: {len(self.failures)} check(s) did not pass; nothing was published"]
        for table, column, check, count in self.failures:
            target = f"{table}.{column}" if column else table
            lines.append(f"  - {target}: {check} ({count} offending row(s))")
        if self.summary:
            lines.append(self.summary)
        return "\n".join(lines)


class ArtifactError(CleanroomError):
    """A published snapshot is missing, incomplete or has been tampered with."""


class BucketError(CleanroomError):
    """The sandbox bucket cannot be reached or used."""
