"""Admin routes under ``/_localnet/``, used by the localnet CLI, tests and the dev stack.

Served on their own port (``admin_url`` in localnet.json, so they work with JSON-RPC switched off) and,
for compatibility, on the JSON-RPC app. JSON in, JSON out; errors are ``{"error": …}`` with 400 (bad
input), 404 (no such account) or 409 (a Move abort, e.g. a second account for one owner):

- ``GET  /_localnet/info`` → ``{memwalPackageId, registryId, walrusPackageId, referenceGasPrice}``
- ``POST /_localnet/accounts {owner?}`` → ``{accountId, owner, ownerPrivateKey?}``; without ``owner`` a fresh
  Ed25519 owner is generated and its ``suiprivkey1…`` returned (localnet only)
- ``POST /_localnet/accounts/{id}/delegates {public_key: hex32, label}`` → ``{suiAddress}``
- ``DELETE /_localnet/accounts/{id}/delegates/{public_key hex}`` → ``{}``
- ``POST /_localnet/accounts/{id}/active {active: bool}`` → ``{active}``
- ``POST /_localnet/fund {address, amount}`` → ``{coinObjectId}``
- ``POST /_localnet/key-servers {name, url, public_key: hex96}`` → ``{objectId}``
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import nacl.signing
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chain.address import normalize_address, sui_address
from chain.keys import encode_sui_private_key
from localnet.json_body import read_json
from localnet.object_store import MoveAbort
from localnet.world import World

Handler = Callable[[Request], Awaitable[JSONResponse]]


def _hex_bytes(value: object, length: int, what: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a hex string")
    text = value[2:] if value.startswith("0x") else value
    raw = bytes.fromhex(text)
    if len(raw) != length:
        raise ValueError(f"{what} must be {length} bytes")
    return raw


def new_owner(world: World) -> tuple[str, str]:
    """A fresh owner keypair from the world's randomness: (address, suiprivkey)."""
    seed = world.rng(32)
    return sui_address(bytes(nacl.signing.SigningKey(seed).verify_key)), encode_sui_private_key(seed)


def _guarded(handler: Callable[[Request, dict], object]) -> Handler:
    async def endpoint(request: Request) -> JSONResponse:
        try:
            body = await read_json(request) if request.method in ("POST", "PUT") else {}
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            return JSONResponse(handler(request, body))
        except LookupError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        except MoveAbort as exc:
            return JSONResponse({"error": str(exc), "code": exc.code}, status_code=409)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return endpoint


def admin_routes(world: World) -> list[Route]:
    def account_id(request: Request) -> str:
        found = world.get(request.path_params["account_id"])
        if found is None or not found.type.endswith("::account::MemWalAccount"):
            raise LookupError("no such account")
        return found.object_id

    def info(request: Request, body: dict) -> dict:
        return {
            "memwalPackageId": world.packages.get("memwal"),
            "registryId": world.registry_id,
            "walrusPackageId": world.packages.get("walrus"),
            "referenceGasPrice": world.reference_gas_price,
        }

    def create_account(request: Request, body: dict) -> dict:
        private_key = None
        if body.get("owner") is None:
            owner, private_key = new_owner(world)
        else:
            owner = normalize_address(body["owner"])
        created = {"accountId": world.create_account(owner), "owner": owner}
        if private_key is not None:
            created["ownerPrivateKey"] = private_key
        return created

    def add_delegate(request: Request, body: dict) -> dict:
        public_key = _hex_bytes(body.get("public_key"), 32, "public_key")
        label = body.get("label", "")
        if not isinstance(label, str):
            raise ValueError("label must be a string")
        world.add_delegate_key(account_id(request), public_key, label)
        return {"suiAddress": sui_address(public_key)}

    def remove_delegate(request: Request, body: dict) -> dict:
        public_key = _hex_bytes(request.path_params["public_key"], 32, "public_key")
        world.remove_delegate_key(account_id(request), public_key)
        return {}

    def set_active(request: Request, body: dict) -> dict:
        if not isinstance(body.get("active"), bool):
            raise ValueError("active must be true or false")
        world.set_active(account_id(request), body["active"])
        return {"active": body["active"]}

    def fund(request: Request, body: dict) -> dict:
        amount = body.get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise ValueError("amount must be an integer")
        return {"coinObjectId": world.fund(normalize_address(body.get("address", "")), amount)}

    def key_server(request: Request, body: dict) -> dict:
        name, url = body.get("name"), body.get("url")
        if not isinstance(name, str) or not isinstance(url, str):
            raise ValueError("name and url must be strings")
        return {"objectId": world.register_key_server(name, url, _hex_bytes(body.get("public_key"), 96, "public_key"))}

    prefix = "/_localnet"
    return [
        Route(f"{prefix}/info", _guarded(info), methods=["GET"]),
        Route(f"{prefix}/accounts", _guarded(create_account), methods=["POST"]),
        Route(f"{prefix}/accounts/{{account_id}}/delegates", _guarded(add_delegate), methods=["POST"]),
        Route(f"{prefix}/accounts/{{account_id}}/delegates/{{public_key}}", _guarded(remove_delegate), methods=["DELETE"]),
        Route(f"{prefix}/accounts/{{account_id}}/active", _guarded(set_active), methods=["POST"]),
        Route(f"{prefix}/fund", _guarded(fund), methods=["POST"]),
        Route(f"{prefix}/key-servers", _guarded(key_server), methods=["POST"]),
    ]


def build_admin_app(world: World) -> Starlette:
    return Starlette(routes=admin_routes(world))
