"""Arithmetic in GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1 (Rijndael's field).

Log/exp tables use the generator 0x03, as Seal's ``gf256.rs`` does. Not constant time: the
relayer that uses this sees the plaintext anyway; do not reuse it inside a key server.
"""

from __future__ import annotations

AES_POLYNOMIAL = 0x11B
GENERATOR = 0x03
FIELD_SIZE = 256


def _multiply_slow(left: int, right: int) -> int:
    product = 0
    while right:
        if right & 1:
            product ^= left
        left <<= 1
        if left & 0x100:
            left ^= AES_POLYNOMIAL
        right >>= 1
    return product


def _build_tables() -> tuple[tuple[int, ...], tuple[int, ...]]:
    exp = [0] * 510
    log = [0] * FIELD_SIZE
    value = 1
    for power in range(255):
        exp[power] = value
        log[value] = power
        value = _multiply_slow(value, GENERATOR)
    for power in range(255, 510):  # doubled so log(a) + log(b) needs no reduction
        exp[power] = exp[power - 255]
    return tuple(exp), tuple(log)


EXP, LOG = _build_tables()


def add(left: int, right: int) -> int:
    return left ^ right


def multiply(left: int, right: int) -> int:
    if left == 0 or right == 0:
        return 0
    return EXP[LOG[left] + LOG[right]]


def inverse(value: int) -> int:
    if value == 0:
        raise ZeroDivisionError("0 has no inverse in GF(256)")
    return EXP[255 - LOG[value]]


def divide(numerator: int, denominator: int) -> int:
    if denominator == 0:
        raise ZeroDivisionError("division by zero in GF(256)")
    if numerator == 0:
        return 0
    return EXP[LOG[numerator] + 255 - LOG[denominator]]
