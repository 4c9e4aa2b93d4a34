"""Ranking helpers: uniform random tie-breaking with the injected RNG.

Two shapes:
* `random_order` walks a priority tier in a uniformly random order, lazily (a partial
  Fisher-Yates shuffle), so the caller can stop as soon as it has enough eligible offers: the
  first m eligible offers of a uniform random permutation are a uniform random sample of the
  eligible ones, in uniform random order. This keeps large tie tiers cheap.
* `order_scored` sorts fully scored candidates by score, best first, with None scores last and
  exact ties broken uniformly at random (the docs only specify random ties for priority; we use
  the same rule for formula scores, which Adobe leaves undocumented).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def random_order(items: Sequence[T], rng: random.Random) -> Iterator[T]:
    """Yield `items` in uniformly random order, drawing randomness only for what is consumed."""
    n = len(items)
    if n == 1:
        yield items[0]
        return
    pool = list(items)
    rand = rng.random
    for i in range(n - 1):
        j = i + int(rand() * (n - i))
        pool[i], pool[j] = pool[j], pool[i]
        yield pool[i]
    yield pool[n - 1]


def rank_value(score: float | None) -> float:
    """Sort value of a score: a missing (null) score ranks after every number."""
    return -math.inf if score is None else score


def order_scored(items: Sequence[tuple[float, T]], rng: random.Random) -> list[T]:
    """Items (value, payload) ordered by value descending, ties uniformly at random."""
    rand = rng.random
    keyed = [(-value, rand(), payload) for value, payload in items]
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [payload for _, _, payload in keyed]
