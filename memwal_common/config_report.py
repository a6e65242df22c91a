"""What ``python -m relayer check`` and ``python -m sidecar check`` print: settings with their sources and
secrets redacted, then one line per check against the network.

Each settings dataclass names its environment variable in the comment of every field
(``socket_path: str  # SIDECAR_SOCKET ...``); that comment is how a field is shown under its variable.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from memwal_common.environment import SealServerConfig
from memwal_common.secret import Secret
from memwal_common.shared_settings import WALLET_KEY_VARIABLES, setting_source

OK, FAILED, UNREACHABLE = "ok", "FAILED", "unreachable"
_FIELD_VARIABLE = re.compile(r"^\s+(\w+): [^\n#]*#\s+([A-Z][A-Z0-9_]{2,})", re.MULTILINE)
_URL_VARIABLES = {"DATABASE_URL", "DATABASE_READ_URL", "REDIS_URL"}  # may carry a password

ExitStatus = int  # 0 ok, 1 a check failed, 2 invalid configuration, 3 unreachable (nothing failed)


class CheckFailed(Exception):
    """The network contradicts the configuration."""


@dataclass
class Report:
    out: TextIO
    results: list[str] = field(default_factory=list)

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def result(self, status: str, what: str, detail: str) -> None:
        self.results.append(status)
        self.line(f"  {status:<12} {what}: {detail}")

    def summary(self, who: str) -> None:
        self.line(f"{who}: {self.results.count(OK)} of {len(self.results)} checks passed")

    @property
    def exit_status(self) -> ExitStatus:
        if FAILED in self.results:
            return 1
        return 3 if UNREACHABLE in self.results else 0

    async def attempt(self, what: str, check: Callable[[], Awaitable[str]], *,
                      failed: tuple[type[BaseException], ...] = (),
                      unreachable: tuple[type[BaseException], ...] = ()) -> None:
        """Run one check and report it: its detail when it passes; ``CheckFailed`` or a ``failed`` exception
        is a failure, an ``unreachable`` one means the check could not run. ``failed`` is tried first."""
        failures: tuple[type[BaseException], ...] = (CheckFailed, *failed)
        try:
            detail = await check()
        except failures as exc:
            self.result(FAILED, what, str(exc) or type(exc).__name__)
        except unreachable as exc:
            self.result(UNREACHABLE, what, str(exc) or type(exc).__name__)
        else:
            self.result(OK, what, detail)


def worst(*statuses: ExitStatus) -> ExitStatus:
    """The exit status of several reports: invalid over failed over unreachable over ok."""
    for status in (2, 1, 3):
        if status in statuses:
            return status
    return 0


def setting_variables(settings_class: type) -> dict[str, str]:
    """Field → the environment variable its comment names."""
    return dict(_FIELD_VARIABLE.findall(inspect.getsource(settings_class)))


def redacted(variable: str, value: Any) -> str:
    """A setting's value as printed: secrets as ``<set>``/``<unset>``, keys counted, URL passwords masked."""
    if isinstance(value, Secret):
        return "<set>" if value else "<unset>"
    if variable in WALLET_KEY_VARIABLES:
        return f"<{len(value)} key{'s' if len(value) != 1 else ''}>"
    if value is None or value == "" or value == ():
        return "<unset>"
    if variable in _URL_VARIABLES:
        return _without_password(str(value))
    if isinstance(value, tuple) and value and isinstance(value[0], SealServerConfig):
        return json.dumps([_seal_config(server) for server in value])
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        value = value * 1000 if variable.endswith("_MS") else value  # a *_seconds field read from milliseconds
        return f"{value:g}"
    return str(value)


def print_settings(report: Report, env: Mapping[str, str], title: str, values: object,
                   skip: Collection[str] = ()) -> list[str]:
    """One line per field: variable, value, source (``env``, ``preset:<network>``, ``default``); returns the
    variables printed."""
    report.line(f"  {title}:")
    shown: list[str] = []
    for name, variable in setting_variables(type(values)).items():
        if variable in skip or variable in shown:
            continue
        shown.append(variable)
        source = setting_source(env, variable)
        report.line(f"    {variable:<36} {redacted(variable, getattr(values, name)):<50} "
                    f"{'default' if source == 'unset' else source}")
    return shown


def _seal_config(server: SealServerConfig) -> dict[str, Any]:
    rendered: dict[str, Any] = {"objectId": server.object_id, "weight": server.weight}
    if server.aggregator_url:
        rendered["aggregatorUrl"] = server.aggregator_url
    return rendered


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:****@" if parts.username else ":****@"
    netloc = user + (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
