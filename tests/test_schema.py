"""The exported SDL stays in sync, and GraphiQL users find a description everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
)

from stepgraph.graphql.schema import build_schema

ROOT = Path(__file__).resolve().parent.parent
# Types that federation or GraphQL itself contribute; their descriptions are not ours.
FOREIGN = {
    "_Service",
    "_Entity",
    "_Any",
    "link__Import",
    "link__Purpose",
    "FieldSet",
    "_FieldSet",
    "Boolean",
    "String",
    "Int",
    "Float",
    "ID",
}


def test_schema_graphql_matches_the_live_schema() -> None:
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    assert committed == build_schema().as_str() + "\n", "schema.graphql drifted: run `make schema`"


def _own_types() -> list[GraphQLNamedType]:
    schema = build_schema()._schema
    return [
        t
        for name, t in schema.type_map.items()
        if not name.startswith("__") and name not in FOREIGN
    ]


def _undescribed() -> list[str]:
    missing: list[str] = []
    for named in _own_types():
        if not named.description:
            missing.append(named.name)
        if isinstance(named, GraphQLObjectType):
            for field_name, field in named.fields.items():
                if field_name.startswith("_"):
                    continue
                assert isinstance(field, GraphQLField)
                if not field.description:
                    missing.append(f"{named.name}.{field_name}")
                for arg_name, arg in field.args.items():
                    assert isinstance(arg, GraphQLArgument)
                    if not arg.description:
                        missing.append(f"{named.name}.{field_name}({arg_name})")
        if isinstance(named, GraphQLEnumType):
            missing += [
                f"{named.name}.{value_name}"
                for value_name, value in named.values.items()
                if not value.description
            ]
    return missing


# Described by the subgraph that owns flows. Composers report INCONSISTENT_DESCRIPTION
# when two subgraphs describe one element differently (see the README's supergraph section).
OWNED_ELSEWHERE = {"Flow", "Flow.id"}


def test_every_type_field_argument_and_enum_value_has_a_description() -> None:
    assert [name for name in _undescribed() if name not in OWNED_ELSEWHERE] == []


def test_elements_owned_by_another_subgraph_stay_undescribed() -> None:
    assert set(_undescribed()) >= OWNED_ELSEWHERE


@pytest.mark.parametrize("name", ["StepResult", "Flow", "StepResultConnection", "Pagination"])
def test_the_contract_types_are_in_the_schema(name: str) -> None:
    assert name in {t.name for t in _own_types()}


def test_scalars_of_the_contract_are_custom() -> None:
    scalars = {t.name for t in _own_types() if isinstance(t, GraphQLScalarType)}
    assert {"DateTime", "Decimal", "JSON"} <= scalars
