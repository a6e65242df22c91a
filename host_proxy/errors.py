"""Errors raised by the ``host_proxy`` package.

Configuration errors stop the proxy before it binds anything. Connect errors only ever end the one
client connection that needed the target: the accept loops catch them, count them and keep serving.

    HostProxyError
    ├── ConfigurationError      settings, config file or command line are not usable
    │   └── AddressError        an endpoint string is not ``vsock:CID:PORT``, ``unix:/path`` or ``tcp:HOST:PORT``
    ├── ListenError             a listening socket could not be opened (in use, permission, no vsock)
    └── ConnectError            the target of one connection could not be reached; ``reason`` is a metric label
        ├── ConnectTimeout      no connection within the connect timeout        (reason "timeout")
        ├── ConnectRefused      nothing listens there / the path does not exist (reason "refused")
        ├── TargetUnreachable   no route, no vsock device, name does not resolve (reason "unreachable")
        └── ConnectFailed       any other OS error while connecting             (reason "error")
"""

from __future__ import annotations


class HostProxyError(Exception):
    """Base class for every error of the host_proxy package."""


class ConfigurationError(HostProxyError):
    """The settings, the config file or the command line cannot be used as given."""


class AddressError(ConfigurationError):
    """An endpoint string does not parse."""


class ListenError(HostProxyError):
    """A listening socket could not be opened."""


class ConnectError(HostProxyError):
    """The target of one connection could not be reached."""

    reason = "error"


class ConnectTimeout(ConnectError):
    """The target did not accept the connection within the connect timeout."""

    reason = "timeout"


class ConnectRefused(ConnectError):
    """The target refused the connection (or the Unix socket path does not exist)."""

    reason = "refused"


class TargetUnreachable(ConnectError):
    """No route to the target: unreachable network, no vsock transport, or a name that does not resolve."""

    reason = "unreachable"


class ConnectFailed(ConnectError):
    """Any other operating-system error while connecting."""

    reason = "error"
