"""AI ranking (ranking strategies): Beta-Bernoulli Thompson sampling over eligible offers. Pure.

The engine reads the evidence, it never learns: the statistics are passed INTO decide()
(``ranking=``, like the capping counters) by the caller, which loads them from what a learner
made of interaction events off the hot path. docs/decisioning.md, "Ranking by an AI strategy",
says what the models are for users.

Evidence per offer is (trials, successes): displays, and goal events (clicks, or the strategy's
custom event type). An offer's posterior is Beta(1 + successes, 1 + trials - successes): an offer
with no evidence has the uniform Beta(1, 1) prior and is explored.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from offerbase.catalog import Offer, RankingStrategy, enums

MAX_CONTEXT_KEY = 255  # the ranking_stats.context_key column's size
MAX_FEATURE_VALUE = 64  # characters of one feature value kept in a context key


@dataclass(frozen=True, slots=True)
class ArmStats:
    """One offer's evidence."""

    trials: int  # displays
    successes: int  # goal events (clicks, or the custom event type)


@dataclass(frozen=True, slots=True)
class StrategyStats:
    offers: Mapping[str, ArmStats]  # offer id -> evidence, all contexts, both arms
    contexts: Mapping[str, Mapping[str, ArmStats]]  # context key -> offer id -> evidence


RankingStats = Mapping[str, StrategyStats]  # ranking strategy id -> its stats
EMPTY = StrategyStats({}, {})


def _lookup(root: Any, tokens: Sequence[str]) -> Any:
    """The value at JSON-Pointer `tokens` under `root` (list steps by index); None if absent."""
    found = root
    for token in tokens:
        if isinstance(found, Mapping):
            found = found.get(token)
        elif isinstance(found, list) and token.isdigit() and int(token) < len(found):
            found = found[int(token)]
        else:
            return None
    return found


def _value(found: Any) -> Any:
    """A feature value as it enters the key: scalars as they are (long strings cut), anything
    else (absent, objects, lists) as null, so a key stays small and deterministic."""
    if isinstance(found, str):
        return found[:MAX_FEATURE_VALUE]
    if isinstance(found, bool | int) or (isinstance(found, float) and found == found):
        return found
    return None


def _member_of(profile: Mapping[str, Any], audience: str) -> bool:
    """Whether the profile is in the audience, in any identity namespace (XDM
    segmentMembership: realized or existing)."""
    membership = profile.get("segmentMembership")
    if not isinstance(membership, Mapping):
        return False
    for by_ns in membership.values():
        if isinstance(by_ns, Mapping):
            entry = by_ns.get(audience)
            if isinstance(entry, Mapping) and entry.get("status") in ("realized", "existing"):
                return True
    return False


def context_key(
    strategy: RankingStrategy, profile: Mapping[str, Any], context: Mapping[str, Any]
) -> str:
    """The context a personalized strategy learns per: the JSON array of its features' values
    in the strategy's order (one boolean per audience, then each profile path's value, then each
    context path's), e.g. ``[true,false,"mobile"]``. "" for auto-optimization. Deterministic;
    a key longer than MAX_CONTEXT_KEY is replaced by ``sha256:<hex>`` of it."""
    if strategy.type != enums.STRATEGY_PERSONALIZED:
        return ""
    values: list[Any] = [_member_of(profile, a) for a in strategy.audiences]
    values.extend(_value(_lookup(profile, p)) for p in strategy.profile_paths)
    values.extend(_value(_lookup(context, p)) for p in strategy.context_paths)
    key = orjson.dumps(values).decode()
    if len(key) > MAX_CONTEXT_KEY:
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


# Personalized optimization's prior strength: a context's posterior starts from the offer's
# global evidence down-weighted to at most this many displays (empirical Bayes), so a context
# with little data borrows the offer's overall CTR, and one with much more data than this
# follows its own. 20 displays is about where one context's own clicks start to tell offers
# with CTRs a few points apart (docs/decisioning.md, "Ranking by an AI strategy").
SHRINK_STRENGTH = 20.0


def _counts(arm: ArmStats | None) -> tuple[int, int]:
    """(successes, failures), clamped so that a corrupt row cannot give a negative parameter."""
    if arm is None:
        return 0, 0
    trials = max(0, arm.trials)
    successes = min(max(0, arm.successes), trials)
    return successes, trials - successes


def posterior(
    strategy: RankingStrategy, stats: StrategyStats, key: str, offer_id: str
) -> tuple[float, float]:
    """(alpha, beta) of the offer's Beta posterior of its success rate in context `key`.

    Auto-optimization: Beta(1 + successes, 1 + failures), the uniform prior updated with all
    the offer's evidence. Personalized: the context's evidence on top of a prior that is the
    offer's global posterior scaled down to at most SHRINK_STRENGTH displays."""
    successes, failures = _counts(stats.offers.get(offer_id))
    if strategy.type != enums.STRATEGY_PERSONALIZED:
        return 1.0 + successes, 1.0 + failures
    total = successes + failures
    weight = 1.0 if total <= SHRINK_STRENGTH else SHRINK_STRENGTH / total
    in_context = stats.contexts.get(key)
    cs, cf = _counts(in_context.get(offer_id) if in_context is not None else None)
    return 1.0 + successes * weight + cs, 1.0 + failures * weight + cf


MODEL = "model"
HOLDOUT = "holdout"

# Posterior draws kept per table (below): a request ranks by one of them, picked with its rng.
WORLDS = 64
MAX_TABLES = 256  # tables kept per snapshot (contexts of personalized strategies add up)


class Table:
    """One criterion's candidates under one strategy, its evidence and a context: each
    candidate's posterior, and up to WORLDS joint draws from them ("worlds"), each made on
    first use and kept while the evidence is the same object.

    A request on the model arm ranks by world r (r uniform, from the request's rng): each
    candidate's score is one draw from its posterior, exactly Thompson sampling for that
    request, and the candidates are walked best draw first, checking eligibility only until
    itemCount offers qualify (the cost of a priority walk, not of 1,000 draws). Requests that
    pick the same world while the evidence is unchanged share its draws; new evidence (a new
    stats object) makes new worlds. A world's draws come from a seed that is a digest of the
    strategy, the context, the candidates and their posteriors, so they are the same in every
    worker and every run."""

    __slots__ = ("offers", "params", "positions", "seed", "stats", "worlds")

    def __init__(
        self,
        strategy: RankingStrategy,
        stats: StrategyStats,
        key: str,
        offers: Sequence[Offer],
    ) -> None:
        self.stats = stats
        self.offers = offers
        self.params = [posterior(strategy, stats, key, o.id) for o in offers]
        self.positions = {o.id: i for i, o in enumerate(offers)}
        digest = hashlib.sha256(
            orjson.dumps([strategy.id, key, [o.id for o in offers], self.params])
        ).digest()
        self.seed = int.from_bytes(digest[:8], "big")
        self.worlds: dict[int, tuple[list[float], list[int]]] = {}

    def world(self, r: int) -> tuple[list[float], list[int]]:
        """World r: (score per candidate, candidate indexes best score first)."""
        got = self.worlds.get(r)
        if got is None:
            draw = random.Random(self.seed * WORLDS + r).betavariate
            scores = [draw(alpha, beta) for alpha, beta in self.params]
            order = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)
            got = self.worlds[r] = (scores, order)  # benign race: equal worlds
        return got


class Tables:
    """A snapshot's tables, by (criterion plan, context key): a criterion plan is one
    criterion of one decision in one placement, and names its strategy."""

    def __init__(self) -> None:
        self._tables: dict[tuple[object, str], Table] = {}

    def get(
        self,
        where: object,
        strategy: RankingStrategy,
        stats: StrategyStats,
        key: str,
        offers: Sequence[Offer],
    ) -> Table:
        memo_key = (where, key)
        table = self._tables.get(memo_key)
        if table is None or table.stats is not stats:
            if len(self._tables) >= MAX_TABLES:
                self._tables.clear()  # bounded: a burst of new contexts starts afresh
            table = self._tables[memo_key] = Table(strategy, stats, key, offers)
        return table
