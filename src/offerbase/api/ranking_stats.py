"""Where the Decisioning API and Edge get the evidence of a sandbox's ranking strategies
(engine/bandit.py's RankingStats), handed to the engine like the capping counters.

One seam: `Services.ranking_stats.get(sandbox)`. The default here holds what it is given, in
memory (no evidence until then: every offer has the uniform prior, so strategies explore); the
learner's per-worker reader of the `ranking_stats` table replaces it with the same interface.
"""

from __future__ import annotations

from typing import Protocol

from offerbase.engine.bandit import RankingStats
from offerbase.store.tenants import Sandbox


class RankingStatsSource(Protocol):
    async def get(self, sandbox: Sandbox) -> RankingStats:
        """The sandbox's evidence, strategy id -> StrategyStats (cheap: on the hot path)."""
        ...


class InMemoryRankingStats:
    """Evidence set by whoever holds it (tests, embedders), per sandbox."""

    def __init__(self) -> None:
        self._by_sandbox: dict[int, RankingStats] = {}

    def set(self, sandbox_pk: int, stats: RankingStats) -> None:
        self._by_sandbox[sandbox_pk] = stats

    async def get(self, sandbox: Sandbox) -> RankingStats:
        return self._by_sandbox.get(sandbox.pk, {})
