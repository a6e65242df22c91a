"""Relayer overhead on a local DevStack: recall latency vs a direct baseline, remember throughput, auth req/s.

    python -m bench relayer [--memories 200] [--recalls 40] [--clients 16] [--seconds 3]

(a) signed ``POST /api/recall`` p50/p99 against the same work done directly: the relayer's own vector search
    (``VectorStore.search`` over asyncpg), aggregator reads and a Seal key fetch + decrypt with a session.
    Goal: relayer ≤ 1.5× baseline.
(b) remember throughput: 202s per second while submitting, and jobs done per second end to end.
(c) auth throughput: a cheap signed route (``/api/stats``) hammered by K clients vs unauthenticated ``/health``.
Rate limits are disabled. Writes build/bench/relayer.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import nacl.signing

from bench.common import LatencySummary, print_table, time_async, write_report
from chain import bcs
from chain.jsonrpc import JsonRpcChainReader
from devtools.devstack import DevStack
from relayer.database.pool import connect
from relayer.database.vectors import VectorStore
from sealcrypto import EncryptedObject, KeyServerClient, KeyServerEndpoint, SessionKey, build_seal_approve_ptb, decrypt

NAMESPACE = "bench"
QUERY = "what do I like to eat"


class Signer:
    def __init__(self, stack: DevStack) -> None:
        self.stack = stack
        self.seed = bytes.fromhex(stack.account.delegate_private_key_hex)
        self.key = nacl.signing.SigningKey(self.seed)
        self.account_id = stack.account.account_id
        self.session_key = SessionKey.create(user_seed=self.seed, package_id=stack.info["memwal_package_id"], ttl_min=30,
                                             now_ms=int(time.time() * 1000), session_seed=os.urandom(32))
        self.session = base64.b64encode(json.dumps(self.session_key.to_exported()).encode()).decode()

    def headers(self, method: str, path: str, body: bytes, *, session: bool = False) -> dict[str, str]:
        ts, nonce = str(int(time.time())), str(uuid.uuid4())
        message = f"{ts}.{method}.{path}.{hashlib.sha256(body).hexdigest()}.{nonce}.{self.account_id}".encode()
        headers = {"content-type": "application/json", "x-public-key": bytes(self.key.verify_key).hex(),
                   "x-signature": self.key.sign(message).signature.hex(), "x-timestamp": ts, "x-nonce": nonce,
                   "x-account-id": self.account_id}
        if session:
            headers["x-seal-session"] = self.session
        return headers

    async def post(self, http: httpx.AsyncClient, path: str, payload: dict, *, session: bool = False) -> httpx.Response:
        body = json.dumps(payload, separators=(",", ":")).encode()
        response = await http.post(self.stack.relayer_url + path, content=body, headers=self.headers("POST", path, body, session=session))
        response.raise_for_status()
        return response


async def wait_until_done(signer: Signer, http: httpx.AsyncClient, job_ids: list[str], *, poll_seconds: float) -> None:
    """Poll the bulk status route (20 ids a call) until every job is done; a failed job raises."""
    pending = list(job_ids)
    while pending:
        chunks = [pending[i:i + 20] for i in range(0, len(pending), 20)]
        results = await asyncio.gather(*(signer.post(http, "/api/remember/bulk/status", {"job_ids": c}) for c in chunks))
        statuses = {entry["job_id"]: entry["status"] for result in results for entry in result.json()["results"]}
        failed = [job for job, status in statuses.items() if status == "failed"]
        if failed:
            raise RuntimeError(f"{len(failed)} remember jobs failed")
        pending = [job for job in pending if statuses[job] != "done"]
        if pending:
            await asyncio.sleep(poll_seconds)


async def remember_all(signer: Signer, http: httpx.AsyncClient, count: int) -> dict:
    foods = ["sushi", "tacos", "pho", "paella", "ramen", "curry", "pizza", "falafel"]
    texts = [f"memory {i}: I like {foods[i % len(foods)]} on day {i}" for i in range(count)]
    semaphore = asyncio.Semaphore(16)

    async def one(text: str) -> str:
        async with semaphore:
            return (await signer.post(http, "/api/remember", {"text": text, "namespace": NAMESPACE})).json()["job_id"]

    started = time.perf_counter()
    job_ids = await asyncio.gather(*(one(text) for text in texts))
    accepted_seconds = time.perf_counter() - started
    await wait_until_done(signer, http, job_ids, poll_seconds=0.25)
    done_seconds = time.perf_counter() - started
    return {"memories": count, "accepted_per_second": count / accepted_seconds, "done_per_second": count / done_seconds,
            "accepted_seconds": accepted_seconds, "done_seconds": done_seconds}


async def recall_latency(signer: Signer, http: httpx.AsyncClient, stack: DevStack, iterations: int, limit: int) -> dict:
    info = stack.info
    vector = (await signer.post(http, "/api/embed", {"text": QUERY})).json()["vector"]
    if stack.database_url is None:
        raise RuntimeError("the dev stack has no database")
    database = await connect(stack.database_url, min_size=1, max_size=2, command_timeout=60, migrate=False)
    chain = JsonRpcChainReader(info["sui_rpc_url"], http=http)
    endpoints = []
    for server in info["seal_key_servers"]:
        key_server = await chain.key_server(server["objectId"])
        if key_server.url is None:
            raise RuntimeError(f"key server {server['objectId']} is a committee; the bench expects independent servers")
        endpoints.append(KeyServerEndpoint(key_server.object_id, key_server.url, key_server.public_key))
    account = await chain.get_account(signer.account_id)
    if account is None:
        raise RuntimeError(f"account {signer.account_id} does not exist on the localnet")
    owner = stack.account.owner_address
    inner_id = bcs.address(owner)  # relayer writes use the owner address as the Seal id
    ptb = build_seal_approve_ptb(info["memwal_package_id"], [(inner_id, account.account_id, account.initial_shared_version)])
    seal = KeyServerClient(endpoints, info["seal_threshold"], http)
    aggregator = info["walrus_aggregator_urls"][0]
    vectors = VectorStore(database)

    async def baseline() -> int:
        hits = await vectors.search(owner, NAMESPACE, vector, limit)
        blobs = await asyncio.gather(*(http.get(f"{aggregator}/v1/blobs/{hit.blob_id}") for hit in hits))
        objects = [EncryptedObject.from_bytes(blob.content) for blob in blobs]
        keys = await seal.fetch_keys(ptb, signer.session_key, list({obj.full_id for obj in objects}))
        texts = [decrypt(obj, {oid: per_id[obj.full_id] for oid, per_id in keys.items()}).decode() for obj in objects]
        return len(texts)

    async def relayer() -> int:
        return len((await signer.post(http, "/api/recall", {"query": QUERY, "namespace": NAMESPACE, "limit": limit}, session=True)).json()["results"])

    try:
        hits = await baseline()
        assert await relayer() == hits, "relayer and baseline disagree on the hit count"
        relayer_ms, baseline_ms = [], []
        for _ in range(iterations):  # interleaved, so both see the same machine load
            relayer_ms.append((await time_async(relayer))[0])
            baseline_ms.append((await time_async(baseline))[0])
    finally:
        await database.close()
    ours, base = LatencySummary.of(relayer_ms), LatencySummary.of(baseline_ms)
    return {"limit": limit, "hits": hits, "relayer": ours.__dict__, "baseline": base.__dict__,
            "p50_ratio": ours.p50_ms / base.p50_ms, "p99_ratio": ours.p99_ms / base.p99_ms, "goal_ratio": 1.5}


async def throughput(make_request, clients: int, seconds: float) -> float:
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await make_request()
            count += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return count / (time.perf_counter() - started)


async def auth_throughput(signer: Signer, http: httpx.AsyncClient, stack: DevStack, clients: int, seconds: float) -> dict:
    async def signed() -> None:
        await signer.post(http, "/api/stats", {"namespace": NAMESPACE})

    async def health() -> None:
        (await http.get(stack.relayer_url + "/health")).raise_for_status()

    health_rps = await throughput(health, clients, seconds)
    signed_rps = await throughput(signed, clients, seconds)
    return {"clients": clients, "seconds": seconds, "signed_stats_rps": signed_rps, "health_rps": health_rps,
            "signed_over_health": signed_rps / health_rps}


async def run(args: argparse.Namespace) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="memwal-bench-"))
    data_dir.chmod(0o755)  # embedded PostgreSQL may run as another user
    try:
        async with DevStack(data_dir, database_url=os.environ.get("DATABASE_URL") or None,
                            redis_url=os.environ.get("REDIS_URL") or None,
                            relayer_env={"RATE_LIMIT_DISABLED": "1", "LOG_FORMAT": "json"}) as stack:
            signer = Signer(stack)
            limits = httpx.Limits(max_connections=args.clients * 2, max_keepalive_connections=args.clients * 2)
            async with httpx.AsyncClient(timeout=60, limits=limits) as http:
                remember = await remember_all(signer, http, args.memories)
                recall = await recall_latency(signer, http, stack, args.recalls, args.limit)
                auth = await auth_throughput(signer, http, stack, args.clients, args.seconds)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return {"remember": remember, "recall": recall, "auth": auth}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench relayer", description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=200)
    parser.add_argument("--recalls", type=int, default=40)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    started = time.perf_counter()
    report = asyncio.run(run(args))
    report["wall_seconds"] = time.perf_counter() - started
    recall, remember, auth = report["recall"], report["remember"], report["auth"]
    print_table("recall latency (ms)", ["path", "p50", "p99", "mean", "max"], [
        ["relayer /api/recall", recall["relayer"]["p50_ms"], recall["relayer"]["p99_ms"], recall["relayer"]["mean_ms"], recall["relayer"]["max_ms"]],
        ["baseline direct", recall["baseline"]["p50_ms"], recall["baseline"]["p99_ms"], recall["baseline"]["mean_ms"], recall["baseline"]["max_ms"]],
        ["ratio (goal <= 1.5)", recall["p50_ratio"], recall["p99_ratio"], "", ""],
    ])
    print_table("remember throughput", ["memories", "accepted/s", "done/s"],
                [[remember["memories"], remember["accepted_per_second"], remember["done_per_second"]]])
    print_table(f"auth throughput ({auth['clients']} clients, {auth['seconds']} s)", ["route", "req/s"],
                [["signed /api/stats", auth["signed_stats_rps"]], ["/health (no auth)", auth["health_rps"]]])
    print(f"\nreport: {write_report('relayer', report)}")


if __name__ == "__main__":
    main()
