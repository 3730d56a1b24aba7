"""Synthetic CVR numbers: 8 digits, no leading zero, modulus-11 with weights 2,7,6,5,4,3,2,1."""

from __future__ import annotations

import random

WEIGHTS = (2, 7, 6, 5, 4, 3, 2, 1)


def checksum(number: str) -> int:
    return sum(int(digit) * weight for digit, weight in zip(number, WEIGHTS, strict=True)) % 11


def make_cvr(rng: random.Random, taken: set[int]) -> int:
    """A fresh modulus-11-valid CVR number; adds it to ``taken``."""
    while True:
        head = f"{rng.randint(1, 9)}{rng.randint(0, 999_999):06d}"
        partial = sum(int(d) * w for d, w in zip(head, WEIGHTS[:7], strict=True))
        # The last weight is 1, so the last digit has to cancel the remainder; 10 cannot.
        last = (-partial) % 11
        if last == 10:
            continue
        number = int(f"{head}{last}")
        if number not in taken:
            taken.add(number)
            return number


def make_invalid_cvr(rng: random.Random, taken: set[int]) -> int:
    """Eight digits, no leading zero, failing modulus-11 (a typo-like wrong last digit)."""
    while True:
        number = make_cvr(rng, set())
        text = str(number)
        wrong = rng.choice([d for d in "0123456789" if d != text[-1]])
        candidate = int(text[:-1] + wrong)
        if candidate not in taken:
            taken.add(candidate)
            return candidate
