"""The proxy process: bind every route, accept, and shut down in order.

    proxy = Proxy(settings)
    await proxy.start()      # binds all listeners first: a bad address fails before anything accepts
    ...
    await proxy.shutdown()   # 1. stop accepting  2. wait up to graceful_timeout  3. cancel the rest
                             # 4. close the metrics listener

``serve(settings, *, shutdown_trigger)`` does exactly this around an awaitable that completes when the
process should stop; the default trigger is SIGINT or SIGTERM.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from memwal_common.signals import wait_for_shutdown_signal

from .addresses import Endpoint
from .configuration_server import CONFIGURATION_ROUTE, ConfigurationServer
from .credentials import credentials_source
from .host_services import CredentialsServer, LogReceiver, TimeServer
from .listener import ConnectionTracker, Listener
from .metrics import ProxyMetrics
from .metrics_server import MetricsServer
from .settings import Settings
from .stream_server import StreamServer

ShutdownTrigger = Callable[[], Awaitable[object]]

logger = logging.getLogger(__name__)


class Proxy:
    def __init__(self, settings: Settings, *, metrics: ProxyMetrics | None = None) -> None:
        settings.validate()
        self.settings = settings
        self.metrics = metrics or ProxyMetrics()
        self._tracker: ConnectionTracker | None = None
        self._listeners: list[Listener] = []
        self._metrics_server: MetricsServer | None = None
        self._configuration_server: ConfigurationServer | None = None
        self._services: list[StreamServer] = []
        self.log_receiver: LogReceiver | None = None

    @property
    def active_connections(self) -> int:
        return self._tracker.active if self._tracker is not None else 0

    @property
    def addresses(self) -> dict[str, Endpoint]:
        """Route label → the endpoint actually bound (port 0 resolved); ``configuration`` if served."""
        addresses = {listener.route.label: listener.address for listener in self._listeners}
        if self._configuration_server is not None:
            addresses[CONFIGURATION_ROUTE] = self._configuration_server.address
        return addresses

    @property
    def metrics_address(self) -> Endpoint | None:
        return self._metrics_server.address if self._metrics_server is not None else None

    async def start(self) -> None:
        limits = self.settings.limits
        self._tracker = ConnectionTracker(limits.max_connections)
        listeners = [Listener(route, limits, self._tracker, self.metrics) for route in self.settings.routes]
        try:
            for listener in listeners:
                listener.bind()
                self._listeners.append(listener)
            configuration = self.settings.configuration
            if configuration is not None:
                self._configuration_server = ConfigurationServer(
                    configuration.listen, configuration.document, on_served=self.metrics.configuration_served.inc
                )
                await self._configuration_server.start()
            if self.settings.metrics is not None:
                self._metrics_server = MetricsServer(self.settings.metrics, self.metrics.render)
                await self._metrics_server.start()
            await self._start_services()
        except BaseException:
            await self.shutdown()
            raise
        for listener in self._listeners:
            listener.start()
            logger.info("%s: %s → %s", listener.route.label, listener.address, listener.route.target)
        if self._configuration_server is not None:
            logger.info("%s: serving the enclave document on %s", CONFIGURATION_ROUTE, self._configuration_server.address)

    async def _start_services(self) -> None:
        services = self.settings.services
        if services is None:
            return
        self.log_receiver = LogReceiver(services.logs)
        self._services = [self.log_receiver, TimeServer(services.time)]
        if services.credentials_source:
            self._services.append(CredentialsServer(services.credentials, credentials_source(services.credentials_source)))
        for server in self._services:
            await server.start()

    async def shutdown(self) -> None:
        for listener in self._listeners:
            await listener.stop()
        for server in self._services:
            await server.close()
        self._services = []
        if self._configuration_server is not None:
            await self._configuration_server.close()
            self._configuration_server = None
        if self._tracker is not None and self._tracker.active:
            graceful = self.settings.limits.graceful_timeout_seconds
            logger.info("waiting up to %g s for %d live connection(s)", graceful, self._tracker.active)
            if not await self._tracker.wait_idle(graceful):
                logger.warning("cancelling %d connection(s) still open", self._tracker.active)
                await self._tracker.cancel_all()
        if self._metrics_server is not None:
            await self._metrics_server.close()
            self._metrics_server = None
        self._listeners.clear()


async def serve(
    settings: Settings, *, shutdown_trigger: ShutdownTrigger | None = None, metrics: ProxyMetrics | None = None
) -> None:
    """Run the proxy until ``shutdown_trigger()`` completes (default: SIGINT or SIGTERM), then stop in order."""
    proxy = Proxy(settings, metrics=metrics)
    await proxy.start()
    try:
        await (shutdown_trigger or wait_for_shutdown_signal)()
    finally:
        await proxy.shutdown()


