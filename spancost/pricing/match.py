"""Model-id normalisation and the match clauses of the price table.

Clauses are tiny value objects with one method, `matches`, compared lower-case; a model entry's
rule is one clause. Ids are normalised before matching, so clauses never need to know about
cloud-provider spellings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# A snapshot suffix a provider appends to a model id: gpt-4o-2024-08-06, claude-sonnet-4-5-20250929,
# gpt-4-0613, claude-3-7-sonnet-latest.
SNAPSHOT_SUFFIX = r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|-latest)?"

# Bedrock: an optional geography (us., eu., apac., global., ...), the vendor, the id, a version tag.
_BEDROCK = re.compile(
    r"^(?:[a-z]{2,6}\.)?(?:anthropic|openai|google|meta|amazon|cohere|mistral)\.(.+?)(?:-v\d+(?::\d+)?)?$"
)
# Vertex: claude-sonnet-4-5@20250929, gemini-2.5-pro@001.
_VERTEX_AT = re.compile(r"@(?=[\w.-]+$)")


def normalise_model_id(raw: str) -> str:
    """The id as the price table spells it.

    `openai/gpt-4o` → `gpt-4o` (gateways and the upstream conventions prefix the provider);
    `projects/p/locations/l/publishers/google/models/gemini-2.5-pro` → `gemini-2.5-pro`;
    `us.anthropic.claude-sonnet-4-5-20250929-v1:0` → `claude-sonnet-4-5-20250929` (Bedrock);
    `claude-sonnet-4-5@20250929` → `claude-sonnet-4-5-20250929` (Vertex).
    """
    model = raw.strip().lower()
    model = model.rsplit("/", 1)[-1]
    bedrock = _BEDROCK.match(model)
    if bedrock:
        model = bedrock.group(1)
    return _VERTEX_AT.sub("-", model)


class Clause(Protocol):
    def matches(self, model: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Equals:
    value: str

    def matches(self, model: str) -> bool:
        return model == self.value


@dataclass(frozen=True, slots=True)
class StartsWith:
    prefix: str

    def matches(self, model: str) -> bool:
        return model.startswith(self.prefix)


@dataclass(frozen=True, slots=True)
class Regex:
    pattern: re.Pattern[str]

    def matches(self, model: str) -> bool:
        return self.pattern.fullmatch(model) is not None


@dataclass(frozen=True, slots=True)
class AnyOf:
    clauses: tuple[Clause, ...]

    def matches(self, model: str) -> bool:
        return any(clause.matches(model) for clause in self.clauses)


@dataclass(frozen=True, slots=True)
class AllOf:
    clauses: tuple[Clause, ...]

    def matches(self, model: str) -> bool:
        return all(clause.matches(model) for clause in self.clauses)


def default_clause(model_id: str) -> Clause:
    """The rule of an entry without `match`: its id, bare or with a snapshot suffix."""
    return Regex(re.compile(re.escape(model_id) + SNAPSHOT_SUFFIX))


class ClauseError(ValueError):
    """A `match` that is not a valid clause; the message says which part."""


def parse_clause(raw: Any, where: str = "match") -> Clause:
    """A clause from its YAML form.

    `{equals: x}`, `{starts_with: x}`, `{regex: x}`, `{or: [...]}` or `{and: [...]}`.
    """
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise ClauseError(
            f"{where}: must be a mapping with exactly one of equals, starts_with, regex, or, and"
        )
    ((kind, value),) = raw.items()
    if kind in ("equals", "starts_with", "regex"):
        if not isinstance(value, str) or not value:
            raise ClauseError(f"{where}.{kind}: must be a non-empty string")
        if kind == "equals":
            return Equals(value.lower())
        if kind == "starts_with":
            return StartsWith(value.lower())
        try:
            return Regex(re.compile(value.lower()))
        except re.error as err:
            raise ClauseError(f"{where}.regex: not a valid regular expression ({err})") from err
    if kind in ("or", "and"):
        if not isinstance(value, Sequence) or isinstance(value, str) or not value:
            raise ClauseError(f"{where}.{kind}: must be a non-empty list of clauses")
        clauses = tuple(parse_clause(item, f"{where}.{kind}[{i}]") for i, item in enumerate(value))
        return AnyOf(clauses) if kind == "or" else AllOf(clauses)
    raise ClauseError(f"{where}: unknown clause {kind!r}; use equals, starts_with, regex, or, and")
