"""The localnet serves a subset of the real Sui GraphQL schema: nothing the real service lacks, nothing typed
differently (tests/assets/sui/schema.graphql is the vendored upstream file)."""

from __future__ import annotations

from graphql import build_schema

from localnet.sui_graphql import query_preparer
from localnet.sui_graphql_schema import SCHEMA_SDL
from tests.sui_graphql_schema import real_schema, subset_violations


def test_the_localnet_schema_is_a_subset_of_the_real_one():
    assert subset_violations(build_schema(SCHEMA_SDL), real_schema()) == []


class TestTheCheckCanFail:
    """The checker itself: each kind of divergence is reported."""

    def test_an_invented_field(self):
        sdl = SCHEMA_SDL.replace("chainIdentifier: String!", "chainIdentifier: String!\n  invented: Int")
        assert subset_violations(build_schema(sdl), real_schema()) == ["Query.invented does not exist in the real schema"]

    def test_a_different_type_or_nullability(self):
        sdl = SCHEMA_SDL.replace("  digest: String!\n  effects: TransactionEffects", "  digest: String\n  effects: TransactionEffects")
        assert subset_violations(build_schema(sdl), real_schema()) == ["Transaction.digest is String, the real one String!"]

    def test_an_argument_of_another_type(self):
        sdl = SCHEMA_SDL.replace("transaction(digest: String!): Transaction", "transaction(digest: Base64!): Transaction")
        assert subset_violations(build_schema(sdl), real_schema()) == [
            "Query.transaction(digest) is Base64!, the real one String!"]

    def test_an_invented_union_member_and_enum_value(self):
        sdl = SCHEMA_SDL.replace("enum ExecutionStatus { SUCCESS FAILURE }", "enum ExecutionStatus { SUCCESS FAILURE PENDING }")
        assert subset_violations(build_schema(sdl), real_schema()) == ["enum ExecutionStatus has value PENDING, the real one does not"]
        sdl = SCHEMA_SDL.replace("union Owner = AddressOwner | ObjectOwner | Shared | Immutable",
                                 "union Owner = AddressOwner | ObjectOwner | Shared | Immutable | Transaction")
        assert subset_violations(build_schema(sdl), real_schema()) == ["union Owner has member Transaction, the real one does not"]


class TestPreparedQueries:
    """The server parses and validates each distinct query text once; bad queries keep their errors."""

    def test_a_repeated_query_is_prepared_once(self):
        prepare = query_preparer(build_schema(SCHEMA_SDL))
        document, errors = prepare("query { chainIdentifier }")
        assert document is not None and errors == ()
        assert prepare("query { chainIdentifier }")[0] is document
        assert prepare.cache_info().hits == 1  # type: ignore[attr-defined]

    def test_syntax_and_validation_errors_are_answered(self):
        prepare = query_preparer(build_schema(SCHEMA_SDL))
        document, errors = prepare("query { chainIdentifier")
        assert document is None and "Syntax Error" in errors[0].message
        document, errors = prepare("query { invented }")
        assert document is None and "invented" in errors[0].message
