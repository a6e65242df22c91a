"""Test helpers around the vendored real Sui GraphQL schema (tests/assets/sui/schema.graphql)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    build_schema,
)

REAL_SCHEMA_PATH = Path(__file__).resolve().parent / "assets" / "sui" / "schema.graphql"


@cache
def real_schema() -> GraphQLSchema:
    return build_schema(REAL_SCHEMA_PATH.read_text("utf-8"))


def subset_violations(ours: GraphQLSchema, real: GraphQLSchema) -> list[str]:
    """Everything ``ours`` serves that ``real`` lacks or types differently (empty: a faithful subset).

    Types must exist with the same kind; fields, arguments and input fields with the same type (the
    printed form, so nullability and list-ness count); union members, enum values and interfaces must be
    among the real ones. Omitting things the real schema has is fine: a subset serves less, never other.
    """
    problems: list[str] = []
    for name, ours_type in ours.type_map.items():
        if name.startswith("__"):
            continue
        real_type = real.type_map.get(name)
        if real_type is None:
            problems.append(f"type {name} does not exist in the real schema")
            continue
        if type(ours_type) is not type(real_type):
            problems.append(f"type {name} is a {type(ours_type).__name__}, the real one a {type(real_type).__name__}")
            continue
        if isinstance(ours_type, GraphQLObjectType | GraphQLInterfaceType):
            real_fields = real_type.fields  # type: ignore[union-attr]
            for field_name, field in ours_type.fields.items():
                real_field = real_fields.get(field_name)
                if real_field is None:
                    problems.append(f"{name}.{field_name} does not exist in the real schema")
                    continue
                if str(field.type) != str(real_field.type):
                    problems.append(f"{name}.{field_name} is {field.type}, the real one {real_field.type}")
                for argument_name, argument in field.args.items():
                    real_argument = real_field.args.get(argument_name)
                    if real_argument is None:
                        problems.append(f"{name}.{field_name}({argument_name}) does not exist in the real schema")
                    elif str(argument.type) != str(real_argument.type):
                        problems.append(f"{name}.{field_name}({argument_name}) is {argument.type}, the real one {real_argument.type}")
                for argument_name, real_argument in real_field.args.items():
                    if argument_name not in field.args and str(real_argument.type).endswith("!"):
                        problems.append(f"{name}.{field_name} lacks the required argument {argument_name}")
            real_interfaces = {interface.name for interface in real_type.interfaces}  # type: ignore[union-attr]
            for interface in ours_type.interfaces:
                if interface.name not in real_interfaces:
                    problems.append(f"{name} implements {interface.name}, the real one does not")
        elif isinstance(ours_type, GraphQLInputObjectType):
            real_inputs = real_type.fields  # type: ignore[union-attr]
            for field_name, input_field in ours_type.fields.items():
                real_input = real_inputs.get(field_name)
                if real_input is None:
                    problems.append(f"input {name}.{field_name} does not exist in the real schema")
                elif str(input_field.type) != str(real_input.type):
                    problems.append(f"input {name}.{field_name} is {input_field.type}, the real one {real_input.type}")
        elif isinstance(ours_type, GraphQLUnionType):
            real_members = {member.name for member in real_type.types}  # type: ignore[union-attr]
            for member in ours_type.types:
                if member.name not in real_members:
                    problems.append(f"union {name} has member {member.name}, the real one does not")
        elif isinstance(ours_type, GraphQLEnumType):
            for value in ours_type.values:
                if value not in real_type.values:  # type: ignore[union-attr]
                    problems.append(f"enum {name} has value {value}, the real one does not")
        elif not isinstance(ours_type, GraphQLScalarType):
            problems.append(f"type {name} has an unexpected kind")
    for operation in ("query_type", "mutation_type", "subscription_type"):
        ours_root, real_root = getattr(ours, operation), getattr(real, operation)
        if ours_root is not None and (real_root is None or ours_root.name != real_root.name):
            problems.append(f"the {operation} root differs from the real schema's")
    return problems
