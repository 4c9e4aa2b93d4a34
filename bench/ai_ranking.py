"""AI ranking quality by simulation, through the real HTTP API of a real `offerbase serve`.

    .venv/bin/python bench/ai_ranking.py [--database-url postgresql+asyncpg://...] \
        [--displays 20000] [--after 2000] [--retrain-every 1000] [--concurrency 8] \
        [--plot docs/ai-ranking-ctr.png] [--small]

Simulated visitors ask the Edge endpoint (`POST /ee/v2/interact`) for one offer of a decision;
each decision is displayed (a display event), and clicked with the offer's true click
probability for the visitor's audience (a click event), both sent back through
`POST /ee/v2/collect` in batches, as a site's collector would. The server learns from those
events exactly as it would in production (store/ranking.py, api/ranking.py). Methods:

* random: one priority for every offer (ties are broken uniformly at random);
* priority: the marketer's priorities (offer-3, the 3% offer, first);
* auto-optimization: a ranking strategy (Thompson sampling, 10% holdout), learning online;
* auto, retrained every 6 h: the same strategy on a server whose reader loads the evidence
  only when it starts (OFFERBASE_RANKING_REFRESH_SECONDS set to 30 days), restarted every
  `--retrain-every` displays, which at 4,000 displays a simulated day is 6 simulated hours
  (Adobe's cadence). The learner keeps learning meanwhile: only the model's use is stale;
* personalized-optimization: a strategy with the visitor's audience as a context feature
  (scenario "audiences" only).

Scenario "five offers": true CTRs 1%, 2%, 3%, 4%, 5% for everyone. Target: auto-optimization
serves the best offer (offer-5) to at least 80% of the model arm's displays after 20,000
displays (measured over the `--after` displays that follow them, from the report's
modelDisplays). Scenario "audiences": two audiences of equal size whose best offers differ
(audience a: offer-1 5%, audience b: offer-2 5%; offer-5 3.5% for both, the best on average).
Target: personalized optimization's CTR at least 20% above auto-optimization's.

Figures: CTR (clicks / displays, holdout included: what the site got) and cumulative expected
regret (sum over displays of best true CTR for the visitor minus the shown offer's true CTR).
The plot shows cumulative CTR and regret per method over displays. Every method's visitors draw
the same random numbers (common random numbers: the same audiences and the same click draws),
so chance moves all methods alike and the gaps between them are the methods'. Results still
vary a little from run to run (the server's sampling is not seeded; visitors run concurrently).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from load_edge import create_datastream
from pgdb import fresh_database
from serving import auth_headers, free_port, machine, start_server, stop_server

WEB = "https://ns.adobe.com/xdm/channel-types/web"
FIVE = {"all": [0.01, 0.02, 0.03, 0.04, 0.05]}
AUDIENCES = {"a": [0.05, 0.01, 0.02, 0.01, 0.035], "b": [0.01, 0.05, 0.02, 0.01, 0.035]}
TWO_AUDIENCES = "two audiences, best offer differs"
CONTEXT = "_xdm.context.additionalParameters;version=1"
FEEDBACK_BATCH = 50  # events per /ee/v2/collect request (at most 100)
REFRESH_NEVER = str(30 * 86_400)  # the reader loads once per server start


def offer_ids(n: int) -> list[str]:
    return [f"offer-{i + 1}" for i in range(n)]


def scope_of(activity: str) -> str:
    return base64.b64encode(json.dumps({"activityId": activity, "placementId": "web"}).encode())


def build_catalog(
    base: str, headers: dict[str, str], method: str, n_offers: int, holdout: int
) -> None:
    """Placement, offers, fallback, collection, the method's strategy, decision `dec`."""
    dps = f"{base}/data/core/dps"
    with httpx.Client(headers=headers, timeout=30) as http:

        def post(path: str, body: dict[str, Any]) -> None:
            response = http.post(f"{dps}/{path}", json=body)
            assert response.status_code == 201, response.text

        def representation(text: str) -> list[dict[str, Any]]:
            components = [{"type": "html", "format": "text/html", "content": text}]
            return [{"channel": WEB, "placement": "web", "components": components}]

        post("placements/web", {"name": "web", "channel": WEB, "componentType": "html"})
        # The marketer's priorities: offer-3 first, then 1, 2, 4, 5 (a plausible guess).
        priorities = {"offer-3": 50, "offer-1": 40, "offer-2": 30, "offer-4": 20, "offer-5": 10}
        for offer in offer_ids(n_offers):
            priority = priorities.get(offer, 0) if method == "priority" else 0
            body = {
                "name": offer,
                "status": "approved",
                "rank": {"priority": priority},
                "representations": representation(offer),
                "selectionConstraint": {
                    "startDate": "2020-01-01T00:00:00Z",
                    "endDate": "2040-01-01T00:00:00Z",
                    "profileConstraintType": "none",
                },
            }
            post(f"offers/{offer}?offer-type=personalized", body)
        post(
            "offers/fallback?offer-type=fallback",
            {"name": "fallback", "status": "approved", "representations": representation("-")},
        )
        post(
            "offer-collections/all",
            {"name": "all", "filterType": "offers", "ids": offer_ids(n_offers)},
        )
        criterion: dict[str, Any] = {"optionSelection": {"filter": "all"}}
        if method in ("auto", "auto-6h", "personalized"):
            strategy: dict[str, Any] = {
                "name": method,
                "type": "personalized-optimization"
                if method == "personalized"
                else ("auto-optimization"),
                "holdoutPercentage": holdout,
            }
            if method == "personalized":
                strategy["features"] = {"contextPaths": [f"/{CONTEXT}/audience"]}
            post("ranking-strategies/strategy", strategy)
            criterion["rank"] = {
                "order": {"orderEvaluationType": "rankingStrategy", "rankingStrategy": "strategy"}
            }
        post(
            "offer-decisions/dec",
            {"name": "dec", "status": "live", "fallback": "fallback", "criteria": [criterion]},
        )


@dataclass
class Run:
    """One method's simulation: what was shown and clicked, in display order."""

    method: str
    shown: list[tuple[str, int, int]] = field(default_factory=list)  # audience, offer, click
    regret: float = 0.0
    model_share_after: float | None = None  # the best offer's share of the model arm
    seconds: float = 0.0

    def ctr(self, start: int = 0, end: int | None = None) -> float:
        window = self.shown[start:end]
        return sum(click for _, _, click in window) / len(window) if window else 0.0


class Site:
    """The simulated site: visitors, their audiences and true click probabilities."""

    def __init__(self, base: str, datastream: str, truth: dict[str, list[float]], seed: int):
        self.base = base
        self.datastream = datastream
        self.truth = truth
        self.rng = random.Random(seed)
        self.feedback: list[dict[str, Any]] = []

    def visitor(self) -> tuple[str, str]:
        audience = self.rng.choice(sorted(self.truth))
        return audience, f"{self.rng.getrandbits(64):016x}"

    async def decide(self, http: httpx.AsyncClient, audience: str, visitor: str) -> dict[str, Any]:
        body = {
            "event": {
                "xdm": {
                    "identityMap": {"ECID": [{"id": visitor, "primary": True}]},
                    "eventType": "decisioning.propositionFetch",
                },
                "data": {"audience": audience},
            },
            "query": {"personalization": {"decisionScopes": [scope_of("dec").decode()]}},
        }
        response = await http.post(
            f"{self.base}/ee/v2/interact?dataStreamId={self.datastream}", json=body
        )
        assert response.status_code == 200, response.text
        for handle in response.json()["handle"]:
            if handle["type"] == "personalization:decisions":
                proposition: dict[str, Any] = handle["payload"][0]
                return proposition
        raise AssertionError(f"no proposition: {response.text}")

    def event(self, kind: str, proposition: dict[str, Any], visitor: str) -> None:
        event_type = "display" if kind == "display" else "interact"
        self.feedback.append(
            {
                "xdm": {
                    "_id": f"{proposition['id']}-{kind}",
                    "eventType": f"decisioning.proposition{kind.capitalize()}",
                    "identityMap": {"ECID": [{"id": visitor, "primary": True}]},
                    "_experience": {
                        "decisioning": {
                            "propositionEventType": {event_type: 1},
                            "propositions": [
                                {
                                    "id": proposition["id"],
                                    "scope": proposition["scope"],
                                    "items": [{"id": proposition["items"][0]["id"]}],
                                }
                            ],
                        }
                    },
                }
            }
        )

    async def flush(self, http: httpx.AsyncClient) -> None:
        while self.feedback:
            batch, self.feedback = self.feedback[:FEEDBACK_BATCH], self.feedback[FEEDBACK_BATCH:]
            response = await http.post(
                f"{self.base}/ee/v2/collect?dataStreamId={self.datastream}",
                json={"events": batch},
            )
            assert response.status_code in (200, 204), response.text


async def report(base: str, headers: dict[str, str]) -> dict[str, Any]:
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        response = await http.get(f"{base}/data/core/ods/reports/ranking-strategies/strategy")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


async def learned(base: str, headers: dict[str, str], displays: int) -> dict[str, Any]:
    """The report once the learner has counted `displays` displays (at most 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        body = await report(base, headers)
        counted = sum(arm["displays"] for arm in body["arms"].values())
        if counted >= displays or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.2)


async def simulate(
    site: Site,
    run: Run,
    count: int,
    concurrency: int,
) -> None:
    """`count` displays, `concurrency` visitors at a time; feedback flushed per batch."""
    best = {audience: max(ctrs) for audience, ctrs in site.truth.items()}

    async with httpx.AsyncClient(timeout=30) as http:

        async def one() -> None:
            audience, visitor = site.visitor()
            proposition = await site.decide(http, audience, visitor)
            offer = int(proposition["items"][0]["id"].split("-")[1]) - 1
            p = site.truth[audience][offer]
            click = int(site.rng.random() < p)
            run.shown.append((audience, offer, click))
            run.regret += best[audience] - p
            site.event("display", proposition, visitor)
            if click:
                site.event("interact", proposition, visitor)

        done = 0
        while done < count:
            n = min(concurrency, count - done)
            await asyncio.gather(*(one() for _ in range(n)))
            done += n
            if len(site.feedback) >= FEEDBACK_BATCH:
                await site.flush(http)
        await site.flush(http)


def best_on_average(truth: dict[str, list[float]]) -> str:
    """The offer with the best true CTR over every audience (equal sizes)."""
    averages = [sum(ctrs) for ctrs in zip(*truth.values(), strict=True)]
    return f"offer-{averages.index(max(averages)) + 1}"


def model_share(before: dict[str, Any], after: dict[str, Any], best: str) -> float | None:
    """The best offer's share of the model arm's displays between two reports."""

    def model(body: dict[str, Any]) -> dict[str, int]:
        return {o["offerId"]: o["modelDisplays"] for o in body["offers"]}

    a, b = model(before), model(after)
    total = sum(b.values()) - sum(a.values())
    return (b.get(best, 0) - a.get(best, 0)) / total if total else None


class Server:
    """One `offerbase serve` on the run's database; restartable with other settings."""

    def __init__(self, env: dict[str, str], workers: int) -> None:
        self.env = env
        self.workers = workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, **extra: str) -> None:
        self.process = start_server({**self.env, **extra}, self.port, self.workers)

    def stop(self) -> None:
        if self.process is not None:
            stop_server(self.process)
            self.process = None


def run_method(
    server: Server,
    method: str,
    truth: dict[str, list[float]],
    args: argparse.Namespace,
    seed: int,
) -> Run:
    headers = {
        **auth_headers(server.base, server.env, "AIRANK"),
        "Content-Type": "application/json",
    }
    build_catalog(server.base, headers, method, len(next(iter(truth.values()))), args.holdout)
    datastream = create_datastream(
        server.env, headers["x-gw-ims-org-id"], headers["x-sandbox-name"]
    )
    site = Site(server.base, datastream, truth, seed)
    run = Run(method)
    started = time.monotonic()
    ranked = method in ("auto", "auto-6h", "personalized")
    total = args.displays
    if method == "auto-6h":
        while len(run.shown) < total:
            size = min(args.retrain_every, total - len(run.shown))
            asyncio.run(simulate(site, run, size, args.concurrency))
            asyncio.run(learned(server.base, headers, len(run.shown)))
            server.stop()  # "retrain": the next server reads the evidence once, at its start
            server.start(OFFERBASE_RANKING_REFRESH_SECONDS=REFRESH_NEVER)
    else:
        asyncio.run(simulate(site, run, total, args.concurrency))
    if ranked and args.after:
        before = asyncio.run(learned(server.base, headers, len(run.shown)))
        asyncio.run(simulate(site, run, args.after, args.concurrency))
        after = asyncio.run(learned(server.base, headers, len(run.shown)))
        run.model_share_after = model_share(before, after, best_on_average(truth))
    run.seconds = time.monotonic() - started
    return run


def print_runs(title: str, runs: list[Run], displays: int) -> None:
    print(f"\n{title} ({displays:,} displays each)")
    print(
        f"{'method':<28} {'CTR':>7} {'CTR last 25%':>13} {'regret':>8} {'best share':>11} {'s':>6}"
    )
    for run in runs:
        share = "" if run.model_share_after is None else f"{run.model_share_after:.1%}"
        print(
            f"{run.method:<28} {run.ctr(0, displays):>7.2%} "
            f"{run.ctr(displays * 3 // 4, displays):>13.2%} {run.regret:>8.1f} "
            f"{share:>11} {run.seconds:>6.0f}"
        )


def plot(path: Path, scenarios: list[tuple[str, list[Run]]], truths: dict[str, Any]) -> None:
    """Per scenario: cumulative CTR (top) and cumulative expected regret (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = len(scenarios)
    figure, axes = plt.subplots(2, columns, figsize=(6 * columns, 7), squeeze=False)
    for column, (title, runs) in enumerate(scenarios):
        truth = truths[title]
        best = {audience: max(ctrs) for audience, ctrs in truth.items()}
        top, bottom = axes[0][column], axes[1][column]
        for run in runs:
            clicks = regret = 0.0
            xs, ctrs, regrets = [], [], []
            for index, (audience, offer, click) in enumerate(run.shown, 1):
                clicks += click
                regret += best[audience] - truth[audience][offer]
                if index % 100 == 0:
                    xs.append(index)
                    ctrs.append(clicks / index * 100)
                    regrets.append(regret)
            top.plot(xs, ctrs, label=run.method)
            bottom.plot(xs, regrets, label=run.method)
        top.set_title(title)
        top.set_ylabel("cumulative CTR %")
        bottom.set_ylabel("cumulative regret (expected clicks lost)")
        bottom.set_xlabel("displays")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    print(f"\nplot: {path}")


LABELS = {
    "random": "random (equal priorities)",
    "priority": "priority (offer-3 first)",
    "auto": "auto-optimization",
    "auto-6h": "auto, retrained every 6 h",
    "personalized": "personalized-optimization",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--displays", type=int, default=20_000)
    parser.add_argument("--after", type=int, default=2_000, help="displays measured after")
    parser.add_argument("--retrain-every", type=int, default=1_000, help="displays (6 h)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--holdout", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--small", action="store_true", help="a smoke run (tests)")
    parser.add_argument("--methods", default="random,priority,auto,auto-6h,personalized")
    args = parser.parse_args()
    if args.small:
        args.displays, args.after, args.retrain_every, args.workers = 300, 50, 150, 1
    with ExitStack() as cleanup:
        database_url = args.database_url
        if database_url:
            database_url = cleanup.enter_context(fresh_database(database_url))
        run(args, database_url)


def run(args: argparse.Namespace, database_url: str | None) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="offerbase-ai-ranking-"))
    env = {**os.environ, "OFFERBASE_DATA_DIR": str(data_dir)}
    if database_url:
        env["OFFERBASE_DATABASE_URL"] = database_url
    methods = args.methods.split(",")
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    print(f"backend: {'PostgreSQL' if database_url else 'SQLite'}, {args.workers} workers")
    scenarios: list[tuple[str, list[Run]]] = []
    for title, truth, wanted in (
        ("five offers, CTR 1%-5%", FIVE, ("random", "priority", "auto", "auto-6h")),
        (TWO_AUDIENCES, AUDIENCES, ("auto", "personalized")),
    ):
        runs = []
        for method in (m for m in wanted if m in methods):
            server = Server(env, args.workers)
            extra = (
                {"OFFERBASE_RANKING_REFRESH_SECONDS": REFRESH_NEVER} if method == "auto-6h" else {}
            )
            server.start(**extra)
            try:
                found = run_method(server, method, truth, args, args.seed)
            finally:
                server.stop()
            found.method = LABELS[method]
            runs.append(found)
        if runs:
            print_runs(title, runs, args.displays)
            scenarios.append((title, runs))
    verdicts(scenarios)
    if args.plot:
        plot(args.plot, scenarios, {"five offers, CTR 1%-5%": FIVE, TWO_AUDIENCES: AUDIENCES})
    shutil.rmtree(data_dir, ignore_errors=True)


def verdicts(scenarios: list[tuple[str, list[Run]]]) -> None:
    by_name = {(title, run.method): run for title, runs in scenarios for run in runs}
    auto = by_name.get(("five offers, CTR 1%-5%", LABELS["auto"]))
    if auto is not None and auto.model_share_after is not None:
        share = auto.model_share_after
        print(
            f"auto-optimization serves the best offer to >= 80% of the model arm: {share:.1%} "
            f"{'PASS' if share >= 0.8 else 'FAIL'}"
        )
    title = TWO_AUDIENCES
    plain, personal = (
        by_name.get((title, LABELS["auto"])),
        by_name.get((title, LABELS["personalized"])),
    )
    if plain is not None and personal is not None and plain.ctr():
        ratio = personal.ctr() / plain.ctr() - 1
        print(
            f"personalized CTR >= 20% above auto-optimization's: {ratio:+.1%} "
            f"{'PASS' if ratio >= 0.2 else 'FAIL'}"
        )


if __name__ == "__main__":
    main()
