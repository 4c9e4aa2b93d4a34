"""Where the Decisioning API and Edge get the evidence of a sandbox's ranking strategies
(engine/bandit.py's RankingStats), handed to the engine like the capping counters.

One seam: `Services.ranking_stats.get(sandbox)`; the server's is api/ranking.py's
RankingStatsCache, each worker's reader of the `ranking_stats` table that the learner fills.
"""

from __future__ import annotations

from typing import Protocol

from offerbase.engine.bandit import RankingStats
from offerbase.store.tenants import Sandbox


class RankingStatsSource(Protocol):
    async def get(self, sandbox: Sandbox) -> RankingStats:
        """The sandbox's evidence, strategy id -> StrategyStats (cheap: on the hot path)."""
        ...
