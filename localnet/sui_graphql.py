"""The localnet's Sui GraphQL server: ``POST /graphql`` over the schema subset in ``sui_graphql_schema``.

Built with graphql-core. Views are dicts whose callables graphql-core's default resolver calls with the
field arguments; unions are resolved through ``__typename``. Move values render as Sui GraphQL's
``MoveValue.json`` does (u64 as strings, ``vector<u8>`` as base64). Connections take ``first`` ≤ 50 and
an opaque ``after`` cursor (base64url of the last item's key).

Reads come from ``World.read_view()``, so they trail execution by the world's indexing lag, as the
real service's indexer does; ``executeTransaction`` executes against the current state and answers
with the transaction's effects (no checkpoint yet).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Callable

from graphql import DocumentNode, GraphQLError, GraphQLSchema, build_schema, execute_sync, parse, validate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chain.address import normalize_address
from chain.move_json import normalize_type
from localnet import move_values
from localnet.execution import TransactionError
from localnet.json_body import read_json
from localnet.object_store import CHAIN_IDENTIFIER, ReadView, StoredEvent, StoredObject, StoredTransaction
from localnet.sui_graphql_schema import SCHEMA_SDL
from localnet.world import World

MAX_PAGE_SIZE = 50
MAX_QUERY_CHARS = 16 * 1024
MAX_PREPARED_QUERIES = 256  # clients send a few fixed documents with different variables


def _cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode("ascii")


def _uncursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise GraphQLError("invalid cursor") from exc


def connection(items: list, key, view, first: int | None, after: str | None) -> dict:
    size = MAX_PAGE_SIZE if first is None else first
    if not 0 <= size <= MAX_PAGE_SIZE:
        raise GraphQLError(f"Connection's page size of {size} exceeds max of {MAX_PAGE_SIZE}")
    start = 0
    if after is not None:
        keys = [key(item) for item in items]
        wanted = _uncursor(after)
        if wanted not in keys:
            raise GraphQLError("cursor does not match any item")
        start = keys.index(wanted) + 1
    page = items[start : start + size]
    edges = [{"cursor": _cursor(key(item)), "node": view(item)} for item in page]
    return {
        "pageInfo": {
            "hasNextPage": start + size < len(items),
            "hasPreviousPage": start > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
        "edges": edges,
        "nodes": [edge["node"] for edge in edges],
    }


class Views:
    """Renders one request's ``ReadView`` (or, for execution effects, the current world)."""

    def __init__(self, view: ReadView) -> None:
        self.view = view

    def move_value(self, type_name: str, value: move_values.MoveValue) -> dict:
        return {"__typename": "MoveValue", "type": {"repr": type_name}, "json": move_values.to_graphql_json(value)}

    def owner(self, item: StoredObject) -> dict:
        if item.owner == "Immutable":
            return {"__typename": "Immutable", "_": None}
        if not isinstance(item.owner, dict):
            raise TypeError(f"unknown owner {item.owner!r}")
        (kind, value), = item.owner.items()
        if kind == "Shared":
            return {"__typename": "Shared", "initialSharedVersion": value["initial_shared_version"]}
        return {"__typename": kind, "address": self.address(value)}

    def _field_accessors(self, object_id: str) -> dict:
        def dynamic_field(info, name: dict):
            try:
                name_bytes = base64.b64decode(name["bcs"], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise GraphQLError("DynamicFieldName.bcs is not base64") from exc
            try:
                found = self.view.find_field(object_id, name["type"], name_bytes)
            except ValueError as exc:
                raise GraphQLError(f"invalid dynamic field name type: {exc}") from exc
            return None if found is None else self.dynamic_field(found)

        def dynamic_fields(info, first=None, after=None):
            return connection(self.view.fields_of(object_id), lambda item: item.object_id, self.dynamic_field, first, after)

        return {"dynamicField": dynamic_field, "dynamicFields": dynamic_fields}

    def move_object(self, item: StoredObject) -> dict:
        return {
            "__typename": "MoveObject", "address": item.object_id, "version": item.version, "digest": item.digest,
            "owner": lambda info: self.owner(item), "hasPublicTransfer": "AccountRegistry" not in item.type,
            "contents": self.move_value(item.type, item.contents), **self._field_accessors(item.object_id),
        }

    def object(self, item: StoredObject) -> dict:
        package = {"address": item.object_id, "version": item.version, "digest": item.digest}
        return {
            "address": item.object_id, "version": item.version, "digest": item.digest,
            "owner": lambda info: self.owner(item),
            "asMoveObject": None if item.contents is None else self.move_object(item),
            "asMovePackage": package if item.contents is None else None,
            **self._field_accessors(item.object_id),
        }

    def dynamic_field(self, item: StoredObject) -> dict:
        name = item.contents.fields["name"]  # type: ignore[union-attr]
        value = item.contents.fields["value"]  # type: ignore[union-attr]
        value_type = item.type[len("0x2::dynamic_field::Field<") : -1].split(", ", 1)[1]
        return {
            "address": item.object_id, "version": item.version, "digest": item.digest,
            "name": self.move_value(item.name_type or "", name), "value": self.move_value(value_type, value),
        }

    def address(self, address: str) -> dict:
        address = normalize_address(address)

        def as_object(info):
            found = self.view.get(address)
            return None if found is None else self.object(found)

        def objects(info, first=None, after=None, filter=None):
            items = self.view.owned_by(address, (filter or {}).get("type"))
            return connection(items, lambda item: item.object_id, self.move_object, first, after)

        return {"address": address, "asObject": as_object, "objects": objects, **self._field_accessors(address)}

    def event(self, item: StoredEvent) -> dict:
        return {
            "contents": self.move_value(item.type, item.contents), "sender": self.address(item.sender),
            "sequenceNumber": item.event_seq, "transaction": self.transaction(item.tx_digest), "timestamp": None,
        }

    def transaction(self, digest: str) -> dict:
        checkpoint = self.view.checkpoint_of(digest)
        return {"digest": digest, "effects": {"digest": digest, "status": "SUCCESS", "executionError": None,
                                              "checkpoint": None if checkpoint is None else {"sequenceNumber": checkpoint}}}

    def indexed_transaction(self, position: int, done: StoredTransaction) -> dict:
        """A checkpointed transaction with its object changes, each object as that transaction left it."""

        def output_state(object_id: str) -> dict | None:
            found = self.view.state_at(object_id, position)
            return None if found is None else self.object(found)

        effects = {"digest": done.digest, "status": "SUCCESS", "executionError": None,
                   "checkpoint": {"sequenceNumber": position + 1}, "objectChanges": object_changes(done, output_state)}
        return {"digest": done.digest, "effects": effects}


def object_changes(done: StoredTransaction, output_state: Callable[[str], dict | None]) -> Callable[..., dict]:
    """``TransactionEffects.objectChanges``: each object the transaction wrote, in the state ``output_state`` gives."""
    changes = [{"address": change["objectId"], "idCreated": change["type"] == "created", "idDeleted": False,
                "inputState": None, "outputState": output_state(change["objectId"])}
               for change in done.object_changes if change["type"] != "published"]
    return lambda info, first=None, after=None: connection(
        changes, lambda change: change["address"], lambda change: change, first, after)


def executed_effects(world: World, done: StoredTransaction) -> dict:
    """``TransactionEffects`` of a transaction just executed: from execution, so no checkpoint yet."""
    views = Views(world.read_view())

    def output_state(object_id: str) -> dict | None:
        found = world.get(object_id)  # the current state: effects describe execution, not the index
        return None if found is None else views.object(found)

    return {
        "digest": done.digest, "status": "SUCCESS", "executionError": None, "checkpoint": None,
        "epoch": {"epochId": world.epoch, "referenceGasPrice": str(world.reference_gas_price)},
        "gasEffects": {"gasObject": None if done.gas_object is None else output_state(done.gas_object)},
        "objectChanges": object_changes(done, output_state),
    }


def _event_matches(event: StoredEvent, event_filter: dict | None) -> bool:
    if not event_filter:
        return True
    if event_filter.get("sender") and event.sender != normalize_address(event_filter["sender"]):
        return False
    wanted = event_filter.get("type") or event_filter.get("module")
    if wanted:
        actual = normalize_type(event.type)
        wanted = normalize_type(wanted)
        if wanted.count("::") >= 2:  # a full type name, with or without type arguments
            return actual == wanted or actual.split("<", 1)[0] == wanted
        return actual.startswith(wanted + "::")  # a package or package::module
    return True


def build_root(world: World, view: ReadView) -> dict:
    views = Views(view)

    def object_field(info, address: str):
        found = view.get(address)
        return None if found is None else views.object(found)

    def objects(info, filter: dict, first=None, after=None):
        if not filter.get("owner"):
            raise GraphQLError("the localnet only serves owner-filtered object queries")
        items = view.owned_by(filter["owner"], filter.get("type"))
        return connection(items, lambda item: item.object_id, views.object, first, after)

    def events(info, first=None, after=None, filter=None):
        items = [event for event in view.events if _event_matches(event, filter)]
        return connection(items, lambda event: f"{event.tx_digest}:{event.event_seq}", views.event, first, after)

    def transaction(info, digest: str):
        return views.transaction(digest) if view.is_indexed(digest) else None

    def transactions(info, filter=None, first=None, after=None):
        address = (filter or {}).get("affectedAddress")
        if not address:
            raise GraphQLError("the localnet only serves transactions filtered by affectedAddress")
        address = normalize_address(address)
        start = int((filter or {}).get("afterCheckpoint") or 0)  # checkpoint k holds the transaction at position k - 1
        found = [(position, done) for position, done in enumerate(view.transactions[start:], start)
                 if done.sender == address or address in done.recipients]
        return connection(found, lambda item: item[1].digest, lambda item: views.indexed_transaction(*item), first, after)

    def checkpoint(info, sequenceNumber=None):
        latest = view.indexed  # checkpoint 0 is genesis; each transaction is a checkpoint of its own
        if sequenceNumber is not None and not 0 <= sequenceNumber <= latest:
            return None
        return {"sequenceNumber": latest if sequenceNumber is None else sequenceNumber}

    def execute(info, transactionDataBcs: str, signatures: list[str]):
        try:
            done = world.apply_transaction(base64.b64decode(transactionDataBcs, validate=True), signatures)
        except (binascii.Error, ValueError) as exc:
            return {"effects": None, "errors": [f"InvalidTransaction: {exc}"]}
        except TransactionError as exc:
            return {"effects": None, "errors": [str(exc)]}
        return {"effects": executed_effects(world, done), "errors": None}

    return {
        "address": lambda info, address: views.address(address),
        "object": object_field,
        "objects": objects,
        "events": events,
        "transaction": transaction,
        "transactions": transactions,
        "checkpoint": checkpoint,
        "epoch": lambda info, epochId=None: {"epochId": world.epoch, "referenceGasPrice": str(world.reference_gas_price)},
        "chainIdentifier": CHAIN_IDENTIFIER,
        "executeTransaction": execute,
    }


def query_preparer(schema: GraphQLSchema) -> Callable[[str], tuple[DocumentNode | None, tuple[GraphQLError, ...]]]:
    """Parse and validate each distinct query text once (validation was half the localnet's CPU under load)."""

    @functools.lru_cache(maxsize=MAX_PREPARED_QUERIES)
    def prepare(query: str) -> tuple[DocumentNode | None, tuple[GraphQLError, ...]]:
        try:
            document = parse(query)
        except GraphQLError as error:
            return None, (error,)
        errors = validate(schema, document)
        return (None, tuple(errors)) if errors else (document, ())

    return prepare


def build_sui_graphql_app(world: World) -> Starlette:
    schema = build_schema(SCHEMA_SDL)
    prepare = query_preparer(schema)

    async def endpoint(request: Request) -> JSONResponse:
        try:
            body = await read_json(request)
        except ValueError as exc:
            return JSONResponse({"errors": [{"message": f"invalid request body: {exc}"}]}, status_code=400)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str) or len(body["query"]) > MAX_QUERY_CHARS:
            return JSONResponse({"errors": [{"message": "expected {query, variables} with a bounded query"}]}, status_code=400)
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            return JSONResponse({"errors": [{"message": "variables must be an object"}]}, status_code=400)
        document, errors = prepare(body["query"])
        if document is None:
            return JSONResponse({"data": None, "errors": [{"message": error.message, "path": error.path} for error in errors]})
        root = build_root(world, world.read_view())
        result = execute_sync(schema, document, root_value=root, variable_values=variables,
                              operation_name=body.get("operationName"))
        answer: dict = {"data": result.data}
        if result.errors:
            answer["errors"] = [{"message": error.message, "path": error.path} for error in result.errors]
        return JSONResponse(json.loads(json.dumps(answer, default=str)))

    return Starlette(routes=[Route("/graphql", endpoint, methods=["POST"])])
