"""Shamir secret sharing of byte strings over GF(256), byte by byte (Seal's ``tss.rs``).

``split`` gives shares the x-coordinates 1..n like the Rust and current TS SDKs; ``combine`` and
``interpolate`` accept any distinct non-zero x-coordinates, since an older TS release wrote random ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sealcrypto import gf256

MAX_SHARES = 255


@dataclass(frozen=True, repr=False)
class Share:
    """One share: x-coordinate ``index`` and the evaluations of every byte's polynomial there."""

    index: int
    value: bytes

    def __repr__(self) -> str:  # share bytes are secret material
        return f"Share(index={self.index}, value=<{len(self.value)} bytes>)"


def split(secret: bytes, threshold: int, count: int, rng: Callable[[int], bytes]) -> list[Share]:
    """Split ``secret`` so that any ``threshold`` of the ``count`` shares recover it."""
    if not 1 <= threshold <= count <= MAX_SHARES:
        raise ValueError("need 1 <= threshold <= count <= 255")
    random_coefficients = rng(len(secret) * (threshold - 1))
    # Polynomial of byte b: constant term secret[b], then threshold-1 random coefficients.
    polynomials = [
        [secret[b]] + list(random_coefficients[b * (threshold - 1) : (b + 1) * (threshold - 1)])
        for b in range(len(secret))
    ]
    return [
        Share(index=x, value=bytes(_evaluate(coefficients, x) for coefficients in polynomials))
        for x in range(1, count + 1)
    ]


def combine(shares: Sequence[Share]) -> bytes:
    """Lagrange interpolation at 0, bytewise. With too few or wrong shares the result is garbage."""
    _check_shares(shares)
    indices = [share.index for share in shares]
    # Lagrange basis at 0 in characteristic 2: l_i(0) = prod_{j != i} x_j / (x_j - x_i).
    weights = []
    for i, x_i in enumerate(indices):
        numerator, denominator = 1, 1
        for j, x_j in enumerate(indices):
            if i != j:
                numerator = gf256.multiply(numerator, x_j)
                denominator = gf256.multiply(denominator, x_j ^ x_i)
        weights.append(gf256.divide(numerator, denominator))
    length = len(shares[0].value)
    out = bytearray(length)
    for weight, share in zip(weights, shares, strict=True):
        for position in range(length):
            out[position] ^= gf256.multiply(weight, share.value[position])
    return bytes(out)


def interpolate(shares: Sequence[Share]) -> Callable[[int], bytes]:
    """Return the polynomial through ``shares`` (all bytes at once) as a function of x."""
    _check_shares(shares)
    length = len(shares[0].value)
    points = [(share.index, share.value) for share in shares]

    def evaluate(x: int) -> bytes:
        out = bytearray(length)
        for i, (x_i, value) in enumerate(points):
            numerator, denominator = 1, 1
            for j, (x_j, _) in enumerate(points):
                if i != j:
                    numerator = gf256.multiply(numerator, x ^ x_j)
                    denominator = gf256.multiply(denominator, x_i ^ x_j)
            weight = gf256.divide(numerator, denominator)
            for position in range(length):
                out[position] ^= gf256.multiply(weight, value[position])
        return bytes(out)

    return evaluate


def _evaluate(coefficients: list[int], x: int) -> int:
    result = 0
    for coefficient in reversed(coefficients):  # Horner
        result = gf256.multiply(result, x) ^ coefficient
    return result


def _check_shares(shares: Sequence[Share]) -> None:
    if not shares:
        raise ValueError("no shares")
    indices = [share.index for share in shares]
    if any(not 1 <= index <= 255 for index in indices) or len(set(indices)) != len(indices):
        raise ValueError("share indices must be distinct and in 1..255")
    if len({len(share.value) for share in shares}) != 1:
        raise ValueError("shares have different lengths")
