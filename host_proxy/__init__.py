"""Parent-host proxy between the network and a Nitro enclave's vsock (see ``python -m host_proxy --help``).

    from host_proxy import Settings, Route, parse_endpoint, serve
    settings = Settings(routes=(
        Route("ingress", parse_endpoint("tcp:0.0.0.0:443"), parse_endpoint("vsock:16:443")),
        Route("egress", parse_endpoint("vsock:ANY:8101"), parse_endpoint("tcp:api.openai.com:443")),
    ))
    await serve(settings)            # until SIGINT/SIGTERM; or serve(settings, shutdown_trigger=event.wait)

Modules: addresses (endpoints, sockets), settings (routes, limits), pump (the byte copy), connection
(one proxied connection), listener (accept loops, connection limit), proxy (start/shutdown, serve),
metrics + metrics_server (Prometheus), cli.
"""

from .addresses import Endpoint, TcpEndpoint, UnixEndpoint, VsockEndpoint, parse_endpoint
from .proxy import Proxy, serve
from .settings import Limits, Route, Settings

__all__ = [
    "Endpoint",
    "Limits",
    "Proxy",
    "Route",
    "Settings",
    "TcpEndpoint",
    "UnixEndpoint",
    "VsockEndpoint",
    "parse_endpoint",
    "serve",
]
