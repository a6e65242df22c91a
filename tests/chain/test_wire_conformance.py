"""What we send matches the real wire formats: every GraphQL document validates against the vendored
real Sui schema (and the localnet's), and every gRPC call and message we use exists in pysui's generated
``sui.rpc.v2`` stubs with the same request and response types."""

from __future__ import annotations

import inspect
import re

import pytest
from graphql import GraphQLSchema, build_schema, parse, validate
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2

import chain.grpc
import localnet.sui_grpc
from chain import graphql_queries
from localnet.sui_graphql_schema import SCHEMA_SDL
from tests.sui_graphql_schema import real_schema

DOCUMENTS = {name: value for name, value in vars(graphql_queries).items()
             if isinstance(value, str) and re.match(r"\s*(query|mutation)\b", value)}


def test_every_document_is_collected():
    assert set(DOCUMENTS) == {
        "OBJECT_QUERY", "DYNAMIC_FIELDS_QUERY", "EVENTS_QUERY", "OWNED_OBJECTS_QUERY", "KEY_SERVER_QUERY",
        "GAS_PRICE_QUERY", "CHAIN_IDENTIFIER_QUERY", "EXECUTE_MUTATION", "TRANSACTION_QUERY",
        "OWNER_CHANGES_QUERY", "LATEST_CHECKPOINT_QUERY"}


@pytest.mark.parametrize("schema_name", ["real", "localnet"])
@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_documents_validate(name, schema_name):
    schema: GraphQLSchema = real_schema() if schema_name == "real" else build_schema(SCHEMA_SDL)
    assert [error.message for error in validate(schema, parse(DOCUMENTS[name]))] == []


def test_validation_catches_a_wrong_document():
    broken = DOCUMENTS["OBJECT_QUERY"].replace("digest", "digests")
    assert validate(real_schema(), parse(broken))


def _stub_routes() -> dict[str, tuple[type, str]]:
    """``/sui.rpc.v2.Service/Method`` → (response type, stub method name), read from pysui's stubs."""
    routes = {}
    for name, stub in vars(v2).items():
        if not (name.endswith("ServiceStub") and isinstance(stub, type)):
            continue
        for method_name, method in vars(stub).items():
            if not callable(method) or method_name.startswith("_"):
                continue
            source = inspect.getsource(method)
            route = re.search(r'"(/sui\.rpc\.v2\.\w+/\w+)"', source)
            response = re.search(r'"/sui\.rpc\.v2\.\w+/\w+",\s*message,\s*(\w+),', source)
            if route and response:
                routes[route.group(1)] = (getattr(v2, response.group(1)), method_name)
    return routes


def test_the_localnet_serves_routes_of_the_real_services():
    routes = _stub_routes()
    for service, methods in localnet.sui_grpc._ROUTES.items():
        for method, (_, _, request_type, response_type) in methods.items():
            path = f"/sui.rpc.v2.{service}/{method}"
            assert path in routes, path
            assert routes[path][0] is response_type, path
            stub_method = getattr(getattr(v2, f"{service}Stub"), routes[path][1])
            annotation = inspect.signature(stub_method).parameters["message"].annotation.strip('"')
            assert annotation.removesuffix(" | None") == request_type.__name__, path


def test_the_client_calls_only_stub_methods():
    source = inspect.getsource(chain.grpc)
    called = set(re.findall(r"(?:_ledger|_state|stub)\.(\w+)\(", source))
    assert called == {"get_object", "batch_get_objects", "list_dynamic_fields", "list_owned_objects", "get_epoch",
                      "get_service_info", "list_events", "subscribe_events", "execute_transaction", "get_transaction"}
    stub_methods = {method for _, method in _stub_routes().values()}
    assert called <= stub_methods


def test_every_message_class_we_build_exists_in_the_stubs():
    for module in (chain.grpc, localnet.sui_grpc):
        for name in set(re.findall(r"\bv2\.(\w+)", inspect.getsource(module))):
            assert isinstance(getattr(v2, name, None), type), f"{module.__name__} uses v2.{name}"
