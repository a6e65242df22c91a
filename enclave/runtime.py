"""The enclave runtime: commit the configuration, serve attested TLS, wait for secrets, then run the
relayer behind signed responses. boot.py builds it (configuration, attester, identity) from a platform.

What it does once built:
    commit     SHA-384 of the enclave document (the manifest minus [host]) extended into PCR16, PCR16 locked
    serve      one hypercorn server on the ingress socket boot.py opened; TLS terminates here. A second, plain
               HTTP one on the metrics socket serves only the relayer's /metrics (operator-only: the parent's
               host proxy reaches it from loopback; clients never do)
    secrets    from the manifest's [provisioning] sources (POST /provision, KMS, a peer; secret_sources.py), then
               start_relayer(...) with them merged in; a provisioned enclave answers peers' /peer/* if listed

Routing (``EnclaveRuntime.app``): ``/attestation``, ``/provision`` and ``/health`` are the runtime's;
everything else goes to the relayer once it is ready, and is answered 503 before that
(``{"error":"enclave not provisioned"}`` until secrets arrive, then ``"enclave starting"``). Every
response except ``/attestation`` (a self-authenticating document) is signed (response_signing.py).

"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import os
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any

from hypercorn.config import Config
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from attestation.nsm import Attester
from attestation.trust import TrustRoot
from attestation.user_data import EnclaveUserData
from manifest import EnclaveDocument
from memwal_common.sigv4 import AwsCredentials

from .attestation_route import TokenBucket, attestation_endpoint
from .config_commitment import commit_configuration
from .egress import EgressAllowlist, EgressTransport
from .errors import SourceUnavailable
from .kms import CredentialsProvider
from .log_forwarding import Redactions
from .peer_provisioning import PEER_PATHS, PeerProvider
from .provisioning import IssuedDocuments, ProvisionedSecrets, SealedEnvelopeSource, SecretSource
from .response_signing import ResponseSigningMiddleware
from .secret_sources import EgressTransportFactory, EnclaveKeys, build_secret_source
from .tls_identity import EnclaveIdentity

logger = logging.getLogger("memwal.enclave.runtime")

RUNTIME_PATHS = ("/attestation", "/provision", "/health", *PEER_PATHS)
CERTIFICATE_CHECK_SECONDS = 3600.0
Clock = Callable[[], datetime]


class RelayerState(enum.Enum):
    WAITING_FOR_SECRETS = "waiting-for-secrets"
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"


class InMemoryTlsConfig(Config):
    """A hypercorn Config whose TLS context comes from memory instead of certfile/keyfile paths."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self._tls_context = context

    @property
    def ssl_enabled(self) -> bool:
        return True

    def create_ssl_context(self) -> ssl.SSLContext:
        return self._tls_context


def hypercorn_tls_config(
    bind: str, identity: EnclaveIdentity, environment: Mapping[str, str]
) -> tuple[InMemoryTlsConfig, ssl.SSLContext]:
    """The relayer's hypercorn limits (relayer.serve.hypercorn_config, from the relayer variables of the
    configuration document) with TLS from ``identity``; ``bind`` is fd://N."""
    # Imported here: the relayer's modules load only once the runtime serves, keeping boot to the wait short.
    from relayer.serve import hypercorn_config
    from relayer.settings import Settings

    context = identity.server_ssl_context()
    config = InMemoryTlsConfig(context)
    template = hypercorn_config(bind, Settings.from_environ(environment))
    for name in ("bind", "accesslog", "graceful_timeout", "h11_max_incomplete_size", "keep_alive_timeout"):
        setattr(config, name, getattr(template, name))
    return config, context


class EnclaveRuntime:
    """Everything between the socket and the relayer; see the module docstring."""

    def __init__(
        self,
        *,
        document: EnclaveDocument,
        relayer_environment: Mapping[str, str],
        attester: Attester,
        identity: EnclaveIdentity,
        egress: EgressAllowlist,
        clock: Clock,
        relayer_starter: Callable[..., Awaitable[Any]] | None = None,
        attestation_limiter: TokenBucket | None = None,
        trust_root: TrustRoot | None = None,
        egress_transport: EgressTransportFactory | None = None,
        credentials: CredentialsProvider | None = None,
        redactions: Redactions | None = None,
    ) -> None:
        self.document = document
        self._environment = dict(relayer_environment)
        self.attester = attester
        self.identity = identity
        self.egress = egress
        self._clock = clock
        self.configuration_digest = document.digest()
        self.user_data = EnclaveUserData(
            tls_spki_sha256=identity.tls_spki_sha256,
            configuration_sha384=self.configuration_digest,
            provisioning_public_key=identity.provisioning_public_key,
        ).encode()
        self.issued_documents = IssuedDocuments()
        self.trust_root = trust_root or TrustRoot.aws()  # what a peer's document must chain to
        self.operator_source = SealedEnvelopeSource(identity.provisioning_key, self.issued_documents)
        provisioning = document.provisioning
        self.secret_source: SecretSource = build_secret_source(
            provisioning,
            operator=self.operator_source,
            attester=attester,
            keys=EnclaveKeys(self.user_data, identity.signing_public_key, identity.provisioning_key, self.configuration_digest),
            egress=egress_transport or (lambda context: EgressTransport(egress, ssl_context=context)),
            credentials=credentials or _no_credentials,
            trust_root=self.trust_root,
            clock=clock,
        )
        self.secrets: ProvisionedSecrets | None = None
        self.redactions = redactions or Redactions()
        self.state = RelayerState.WAITING_FOR_SECRETS
        self._relayer: ASGIApp | None = None
        self._relayer_starter = relayer_starter
        self._router = Router(
            routes=[
                Route(
                    "/attestation",
                    attestation_endpoint(
                        attester,
                        user_data=self.user_data,
                        public_key=identity.signing_public_key,
                        limiter=attestation_limiter,
                        on_issued=self.issued_documents.record,
                    ),
                    methods=["GET"],
                ),
                Route("/provision", self._provision_endpoint(), methods=["POST"]),
                Route("/health", self._health, methods=["GET"]),
                *self._peer_routes(),
            ]
        )
        self.app = ResponseSigningMiddleware(
            self._dispatch,
            signing_key=identity.signing_key,
            clock_ms=lambda: int(self._clock().timestamp() * 1000),
            should_sign=lambda path: path != "/attestation",
        )

    def commit(self) -> bytes:
        """Extend PCR16 with the document's digest and lock it (boot step (6))."""
        value = commit_configuration(self.attester, self.configuration_digest)
        logger.info("configuration sha384 %s committed to PCR16", self.configuration_digest.hex())
        return value

    async def run_relayer(self, stack: AsyncExitStack, shutdown: asyncio.Event) -> None:
        """Wait for the secrets, then start the relayer with them (the secret names never overlap the document's)."""
        secrets = await self.secret_source.obtain()
        self.redactions.add(secrets.values.values())  # before anything could log them
        self.secrets = secrets
        logger.info("provisioned through %s", secrets.source)
        self.state = RelayerState.STARTING
        try:
            from relayer.settings import Settings

            environment = {**self._environment, **secrets.values}
            settings = Settings.from_environ(environment)
            settings.validate()
            starter = self._relayer_starter or _start_relayer
            self._relayer = await starter(settings, environment, stack, shutdown)
        except Exception:
            self.state = RelayerState.FAILED
            logger.exception("the relayer failed to start after provisioning")
            return
        self.state = RelayerState.READY
        logger.info("relayer ready")

    async def renew_certificate_forever(self, context: ssl.SSLContext) -> None:
        """Re-issue the TLS certificate over the same key before it expires (the SPKI binding holds)."""
        while True:
            await asyncio.sleep(CERTIFICATE_CHECK_SECONDS)
            if self.identity.needs_renewal(self._clock()):
                self.identity.reissue_certificate(self._clock())
                self.identity.load_into(context)
                logger.info("TLS certificate re-issued over the same key")

    async def serve(self, listener: socket.socket, shutdown: asyncio.Event, *, metrics_listener: socket.socket | None = None) -> None:
        """Serve on ``listener`` (the caller keeps and closes it) until ``shutdown``; stop the relayer after.

        ``metrics_listener`` (the operator metrics channel) gets a plain-HTTP server of the relayer's /metrics."""
        from hypercorn.asyncio import serve as hypercorn_serve

        # hypercorn closes the socket it is given, so it gets a duplicate of ours.
        config, context = hypercorn_tls_config(f"fd://{os.dup(listener.fileno())}", self.identity, self._environment)
        servers = [hypercorn_serve(self.app, config, shutdown_trigger=shutdown.wait)]  # type: ignore[arg-type]
        if metrics_listener is not None:
            metrics_config = Config()
            metrics_config.bind = [f"fd://{os.dup(metrics_listener.fileno())}"]
            metrics_config.accesslog = None
            servers.append(hypercorn_serve(self._metrics, metrics_config, shutdown_trigger=shutdown.wait))  # type: ignore[arg-type]
        async with AsyncExitStack() as stack:
            relayer = asyncio.create_task(self.run_relayer(stack, shutdown))
            renewal = asyncio.create_task(self.renew_certificate_forever(context))
            try:
                logger.info("enclave runtime serving TLS; configuration sha384 %s", self.configuration_digest.hex())
                await asyncio.gather(*servers)
            finally:
                for task in (relayer, renewal):
                    task.cancel()
                await asyncio.gather(relayer, renewal, return_exceptions=True)

    def _peer_routes(self) -> list[Route]:
        if "peer" not in self.document.provisioning.sources:
            return []
        provider = PeerProvider(
            attester=self.attester,
            trust_root=self.trust_root,
            configuration_digest=self.configuration_digest,
            secrets=lambda: self.secrets,
            clock=self._clock,
        )
        return [Route(PEER_PATHS[0], provider.challenge, methods=["POST"]), Route(PEER_PATHS[1], provider.secrets, methods=["POST"])]

    def _provision_endpoint(self) -> Callable[[Request], Awaitable[Response]]:
        if "operator" in self.document.provisioning.sources:
            return self.operator_source.endpoint()

        async def not_offered(request: Request) -> Response:
            return JSONResponse({"error": "provisioning is not offered by this enclave"}, status_code=404)

        return not_offered

    def _status(self) -> dict[str, Any]:
        return {
            "relayer": self.state.value,
            "provisioned": self.state is not RelayerState.WAITING_FOR_SECRETS,
            "provisioningSources": list(self.document.provisioning.sources),
            "provisionedThrough": self.secrets.source if self.secrets is not None else None,
            "configurationSha384": self.configuration_digest.hex(),
            "tlsSpkiSha256": self.identity.tls_spki_sha256.hex(),
            "identityPublicKey": self.identity.signing_public_key.hex(),
        }

    async def _health(self, request: Request) -> Response:
        if self.state is RelayerState.READY and self._relayer is not None:
            status, body = await _capture(self._relayer, request.scope)
            try:
                document = json.loads(body)
            except ValueError:
                document = {"status": "degraded"}
            document["enclave"] = self._status()
            return JSONResponse(document, status_code=status)
        summary = "failed" if self.state is RelayerState.FAILED else "ok"
        return JSONResponse({"status": summary, "enclave": self._status()}, status_code=200)

    async def _metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The operator metrics socket: the relayer's /metrics once it runs, 503 before."""
        if scope["type"] != "http":
            return
        metrics = getattr(getattr(self._relayer, "state", None), "metrics", None)
        if self.state is not RelayerState.READY or metrics is None:
            await JSONResponse({"error": "relayer not running"}, status_code=503)(scope, receive, send)
            return
        from relayer.metrics_listener import metrics_app

        await metrics_app(metrics)(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or scope.get("path") in RUNTIME_PATHS:
            await self._router(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        if self.state is RelayerState.READY and self._relayer is not None:
            await self._relayer(scope, receive, send)
            return
        message = {
            RelayerState.WAITING_FOR_SECRETS: "enclave not provisioned",
            RelayerState.STARTING: "enclave starting",
            RelayerState.FAILED: "relayer failed to start",
        }[self.state]
        await JSONResponse({"error": message}, status_code=503)(scope, receive, send)


async def _no_credentials() -> AwsCredentials:
    raise SourceUnavailable("this runtime has no credentials channel to its parent")


async def _start_relayer(*arguments: Any) -> ASGIApp:
    """relayer.serve.start_relayer, imported only once secrets arrived (the relayer is not needed before)."""
    from relayer.serve import start_relayer

    app: ASGIApp = await start_relayer(*arguments)
    return app


async def _capture(app: ASGIApp, scope: Scope) -> tuple[int, bytes]:
    """Run a GET through ``app`` in memory and return (status, body)."""
    status = 500
    parts: list[bytes] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    await app(dict(scope), receive, send)
    return status, b"".join(parts)
