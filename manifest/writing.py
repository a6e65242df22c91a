"""Write a :class:`~manifest.model.Manifest` back as TOML (tools that generate a deployment, e.g. `make run`).

Relayer values are written as the environment strings they normalise to, so reading the file back
gives an equal manifest and the same digest. Strings are TOML basic strings (JSON string syntax is a
subset of them).
"""

from __future__ import annotations

import json

from .model import FORMAT_VERSION, Manifest


def manifest_toml(deployment: Manifest, *, comment: str = "") -> str:
    enclave, host = deployment.enclave, deployment.host
    lines = [f"# {line}" for line in comment.splitlines()]
    lines += [f"format = {FORMAT_VERSION}", "", "[enclave]"]
    lines += [f"tls_hostname = {_string(enclave.tls_hostname)}", f"ingress_port = {enclave.ingress_port}", "", "[relayer]"]
    lines += [f"{name} = {_string(value)}" for name, value in enclave.relayer]
    for route in enclave.egress:
        lines += ["", "[[egress]]", f"name = {_string(route.name)}", f"destination = {_string(route.destination)}"]
        lines.append(f"vsock_port = {route.vsock_port}")
        if route.allow_plaintext:
            lines.append("allow_plaintext = true  # this LLM endpoint may receive memory text (EGRESS_POLICY = \"private\")")
    lines += _provisioning(deployment)
    lines += ["", "[host]", f"enclave_cid = {host.enclave_cid}", f"public_ingress = {_string(host.public_ingress)}"]
    if host.metrics:
        lines.append(f"metrics = {_string(host.metrics)}")
    if host.relayer_metrics:
        lines.append(f"relayer_metrics = {_string(host.relayer_metrics)}")
    lines += [f"cpu_count = {host.cpu_count}", f"memory_mib = {host.memory_mib}"]
    if host.aws_credentials:
        lines.append(f"aws_credentials = {_string(host.aws_credentials)}")
    if host.limits:
        lines += ["", "[host.limits]", *(f"{key} = {value!r}" for key, value in host.limits)]
    return "\n".join(lines) + "\n"


def _string(value: str) -> str:
    return json.dumps(value, ensure_ascii=True)


def _provisioning(deployment: Manifest) -> list[str]:
    section = deployment.enclave.provisioning
    document = section.as_json()
    lines = ["", "[provisioning]", f"sources = {json.dumps(list(section.sources))}", f"retry_seconds = {section.retry_seconds}"]
    for name in ("kms", "peer"):
        if name in document:
            lines += ["", f"[provisioning.{name}]"]
            lines += [f"{key} = {json.dumps(value, ensure_ascii=True)}" for key, value in document[name].items()]
    return lines
