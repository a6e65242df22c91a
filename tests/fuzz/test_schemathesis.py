"""Schemathesis against the plain stack (separate processes, localnet upstreams), driven by /openapi.json.

Every documented operation gets FUZZ_EXAMPLES generated requests in each of schemathesis' two modes (valid per
the schema, and deliberately invalid), each signed by a delegate key of a localnet account with a fresh nonce
and timestamp; then a stateful run follows the document's links (remember → job status). Every response must:
not be a 5xx, use a documented status, content type and headers, match its documented schema, and leak nothing
internal (tracebacks, SQL, file paths). The closing line of the module reports what was sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterator

import hypothesis
import pytest
import pytest_asyncio
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devtools.devstack import DevStack
from localnet.cli import create_account
from tests.e2e.conftest import E2E_RELAYER_ENV
from tests.e2e.signing import seal_session_header, signed_headers

# Not marked "database": CI's second pass against external servers (-m database) need not fuzz twice.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Per operation and mode. A quick pass by default; .ci/run sets MEMWAL_FUZZ_EXAMPLES=100 (two modes: 200 per route).
FUZZ_EXAMPLES = int(os.environ.get("MEMWAL_FUZZ_EXAMPLES", "10"))
STATEFUL_STEPS = int(os.environ.get("MEMWAL_FUZZ_STATEFUL_STEPS", str(max(10, FUZZ_EXAMPLES // 2))))
FUZZ_TIMEOUT_SECONDS = 600 + 20 * FUZZ_EXAMPLES  # pytest-timeout's 300 s is for ordinary tests
FUZZ_ENV = {
    **E2E_RELAYER_ENV,
    "RATE_LIMIT_DELEGATE_KEY_PER_MINUTE": "1000000",
    "RATE_LIMIT_REQUESTS_PER_MINUTE": "1000000",
    "RATE_LIMIT_REQUESTS_PER_HOUR": "10000000",
    "WALLET_JOB_CONCURRENCY": "2",
}
# What must never reach a client: a traceback, a source path, SQL or a driver's error text.
LEAKS = re.compile(
    r"Traceback \(most recent call last\)|File \"|\.py\b|site-packages|/work/|/tmp/|/root/|asyncpg|sqlstate|"
    r"\bSELECT\b.*\bFROM\b|\bINSERT INTO\b|\bpg_[a-z_]+\(|redis\.exceptions|RecursionError|UnicodeEncodeError",
    re.IGNORECASE,
)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


def no_internals_leak(ctx, response, case) -> bool | None:
    text = response.content.decode("utf-8", "replace") if response.content else ""
    headers = " ".join(f"{k}: {v}" for k, v in response.headers.items())
    # What the client sent may come back (e.g. the job ids of a status query): only text it did not send leaks.
    sent = json.dumps([case.body, case.query, case.path_parameters], ensure_ascii=False, default=str)
    for match in (*LEAKS.finditer(text), *LEAKS.finditer(headers)):
        if match.group(0) not in sent:
            raise AssertionError(f"the response leaks internals: {match.group(0)!r} in {text[:300]!r}")
    return None


class Signer(requests.auth.AuthBase):
    """Signs each request as the official SDK does: fresh nonce and timestamp, over the exact bytes sent."""

    def __init__(self, seed: bytes, account_id: str, package_id: str) -> None:
        self.seed = seed
        self.account_id = account_id
        self.package_id = package_id
        self._session = ""
        self._session_made = 0.0

    def session(self) -> str:
        if time.monotonic() - self._session_made > 300:  # well inside its 10-minute TTL
            self._session = seal_session_header(self.seed, self.package_id)
            self._session_made = time.monotonic()
        return self._session

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        signed = signed_headers(self.seed, request.method or "GET", request.path_url, body, account_id=self.account_id)
        for name, value in signed.items():
            if name != "content-type":  # keep the content type the case chose (415 is documented)
                request.headers[name] = value
        request.headers["x-seal-session"] = self.session()
        return request


class Tally:
    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.per_operation: Counter[str] = Counter()

    def hook(self, label: str):
        def record(response: requests.Response, *args, **kwargs) -> None:
            self.statuses[response.status_code] += 1
            self.per_operation[label] += 1
        return record

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500 and status not in (501, 502, 503))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(tmp_path_factory, database_url, redis_url):
    async with DevStack(tmp_path_factory.mktemp("fuzz-stack"), database_url=database_url, redis_url=redis_url,
                        relayer_env=FUZZ_ENV) as running:
        yield running


async def new_signer(stack, label: str) -> Signer:
    """A fresh localnet account: each operation fuzzes on its own data (restore walks only its own blobs)."""
    account = await create_account(stack.info, label=label)
    return Signer(bytes.fromhex(account.delegate_private_key_hex), account.account_id, stack.info["memwal_package_id"])


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def signer(stack):
    return await new_signer(stack, "fuzz-stateful")


@pytest.fixture(scope="module")
def tally() -> Iterator[Tally]:
    counts = Tally()
    yield counts
    print(f"\nschemathesis: {counts.sent} requests sent, 5xx other than documented 501/502/503 = {counts.server_errors}, "
          f"statuses {dict(sorted(counts.statuses.items()))}")


@pytest.fixture(scope="module")
def schema(stack):
    loaded = schemathesis.openapi.from_url(f"{stack.relayer_url}/openapi.json")
    return loaded


def operations(schema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.timeout(FUZZ_TIMEOUT_SECONDS)
async def test_every_operation_in_both_modes(stack, schema, tally):
    failures: list[str] = []
    only = os.environ.get("MEMWAL_FUZZ_ONLY")  # e.g. "analyze": fuzz the operations whose label contains it
    for operation in operations(schema):
        if only and only not in operation.label:
            continue
        signer = await new_signer(stack, "fuzz")
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            http = requests.Session()
            http.hooks["response"].append(tally.hook(operation.label))

            @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def exercise(case) -> None:
                sent = time.monotonic()
                response = case.call(base_url=stack.relayer_url, session=http, auth=signer, timeout=60)
                if os.environ.get("MEMWAL_FUZZ_TRACE"):  # one line per request: status, time, size, body start
                    print(f"  {response.status_code} {time.monotonic() - sent:.2f}s {len(response.request.body or b'')}B "
                          f"{response.content[:100]!r}", flush=True)
                case.validate_response(response, checks=CHECKS, additional_checks=[no_internals_leak])

            started = time.monotonic()
            try:
                await asyncio.to_thread(exercise)
            except hypothesis.errors.Unsatisfiable:
                pass  # nothing to make invalid (an operation without inputs has no negative mode)
            except Exception as failure:
                failures.append(f"{operation.label} [{mode.value}]: {failure}")
            finally:
                http.close()
            print(f"{operation.label} [{mode.value}]: {tally.per_operation[operation.label]} so far, "
                  f"{time.monotonic() - started:.1f} s", flush=True)
    assert tally.server_errors == 0
    assert failures == [], "\n\n".join(failures)


@pytest.mark.timeout(FUZZ_TIMEOUT_SECONDS)
async def test_stateful_links(stack, schema, signer, tally):
    """Follow the document's links (POST /api/remember → GET /api/remember/{job_id}) with generated data."""
    http = requests.Session()
    http.hooks["response"].append(tally.hook("stateful"))
    base = schema.as_state_machine()

    class Workflow(base):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case):
            return {"base_url": stack.relayer_url, "session": http, "auth": signer, "timeout": 60}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, additional_checks=[no_internals_leak])

    sent_before = tally.per_operation["stateful"]
    try:
        await asyncio.to_thread(Workflow.run, settings=settings(
            max_examples=STATEFUL_STEPS, stateful_step_count=5, deadline=None, database=None, derandomize=True,
            phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck)))
    finally:
        http.close()
    assert tally.per_operation["stateful"] > sent_before
    assert tally.server_errors == 0
