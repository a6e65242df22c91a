"""Shared fixtures: the real Nitro documents, and a test PKI + simulator at a fixed time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from attestation.policy import UnsafeAllowDebugMode
from attestation.simulator import SimulatedNsm
from attestation.testing import TestPki, deterministic_rng
from attestation.verifier import Verifier

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "attestation"
REAL_DOCUMENTS = ("anjuna_sample_prod_doc", "base_2026_indefinite_repaired", "evervault_beta_debug")
SIMULATED_NOW = datetime(2026, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)
IMAGE_PCRS = {0: bytes.fromhex("aa" * 48), 1: bytes.fromhex("bb" * 48), 2: bytes.fromhex("cc" * 48)}


def asset(name: str) -> bytes:
    return (ASSETS / name).read_bytes()


def expectation(name: str) -> dict:
    return json.loads(asset(f"{name}.json"))


class Clock:
    """A settable clock for the simulator."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def prod_raw() -> bytes:
    return asset("anjuna_sample_prod_doc.bin")


@pytest.fixture
def verified_prod(prod_raw):
    return Verifier.aws().verify_archived(prod_raw, policy=UnsafeAllowDebugMode())


@pytest.fixture
def verified_debug():
    return Verifier.aws().verify_archived(asset("evervault_beta_debug.bin"), policy=UnsafeAllowDebugMode())


@pytest.fixture(scope="session")
def pki() -> TestPki:
    return TestPki.create(now=SIMULATED_NOW - timedelta(hours=2), rng=deterministic_rng(b"tests pki"))


@pytest.fixture
def clock() -> Clock:
    return Clock(SIMULATED_NOW)


@pytest.fixture
def simulator(pki, clock) -> SimulatedNsm:
    return SimulatedNsm(pki=pki, clock=clock, boot_pcrs=IMAGE_PCRS, rng=deterministic_rng(b"tests nsm"))
