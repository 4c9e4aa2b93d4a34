"""Decision throughput without and with a concurrent stream of feedback events (issue 12,
point 4: ingesting events must not lower decision throughput by more than 10%).

Run by hand (needs `wrk`, Debian package `wrk`):

    .venv/bin/python bench/ingest_effect.py [--database-url postgresql+asyncpg://...] \
        [--fraction 1.0 | --rate N] [--rounds 5] [--duration 10] [--connections 32]

One `offerbase serve --workers 2` (bench/load_edge.py's set-up: the catalog of
bench/load_decide.py, a datastream, events not durable). A warm-up wrk run measures the
Decisioning API's decisions/s alone; the event stream's rate is `--fraction` of it (1.0: one
feedback event per decision, the rate bench/load_edge.py sustains, since every decision there
could be followed by a display) or `--rate` events/s. Then `--rounds` rounds, each decisions
alone and then decisions while a second wrk posts the stream to `/ee/v2/collect`: one event
per request (as the Web SDK sends them; `--per-request K` for K), each with its own event id
and one of 500,000 visitors, 19 displays to 1 click, paced by wrk's per-connection delay.
Prints each round, the stream's rate actually reached, the displays and clicks the report
counts afterwards (the events were stored, not only answered), and the median of the
per-round ratios with / without.

`--mode interact` measures the other pattern instead (docs/edge.md, "Display notifications in
the next request"): no collect stream; the decisions are Edge requests, `/ee/v2/interact` with a
decision scope, and each round compares them alone with the same requests each also carrying
one display event (its own event id) in the event's xdm, as alloy sends a deferred display with
its next `sendEvent`. Prints requests/s without and with, the server's CPU per request of each
and per carried event (the difference).

`--mode stream` runs the collect stream alone, `--rounds` runs of it at `--rate` events/s
(default 1,500) with no decisions, and prints the server's CPU per event of each: the cost of an
event without the subtraction of the decisions' CPU, to compare two builds of the server.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import statistics
import threading
from datetime import UTC, datetime

import httpx

from load_decide import run_wrk
from load_edge import decisioning_body, edge_server
from serving import cpu_seconds, machine, run_load_test

TARGET_DROP = 0.10
STREAM_CONNECTIONS = 64  # many, so that pacing, not latency, sets the rate
SCOPE = base64.b64encode(b'{"activityId":"dec","placementId":"web"}').decode()

# One distinct event per request: a duplicate event id would be skipped, and cost less than a
# new event does. `delay()` paces each connection (ms between its answer and its next request).
STREAM_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
local function event()
  counter = counter + 1
  local kind, event_type = "display", "decisioning.propositionDisplay"
  if counter %% 20 == 0 then kind, event_type = "interact", "decisioning.propositionInteract" end
  return string.format(
    '{"xdm":{"_id":"%(run)s-%%d","eventType":"%%s","timestamp":"%(timestamp)s",'
    .. '"identityMap":{"Email":[{"id":"v%%d@example.com","primary":true}]},'
    .. '"_experience":{"decisioning":{"propositionEventType":{"%%s":1},'
    .. '"propositions":[{"id":"%(run)s-p%%d","scope":"%(scope)s",'
    .. '"items":[{"id":"offer%%d"}]}]}}}}',
    counter, event_type, math.random(1, 500000), kind, counter, counter %% 100)
end
request = function()
  local events = {}
  for i = 1, %(per_request)d do events[i] = event() end
  return wrk.format(nil, nil, nil, '{"events":[' .. table.concat(events, ",") .. ']}')
end
delay = function() return %(delay_ms).3f end
"""


# `--mode interact`: one Edge decision request per wrk request, the display of a previous
# proposition carried in its event (`carry` 1) or not (0); the rest of the body is the same.
INTERACT_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
local counter = 0
request = function()
  counter = counter + 1
  local display = ""
  if %(carry)d == 1 then
    display = string.format(
      ',"_experience":{"decisioning":{"propositionEventType":{"display":1},'
      .. '"propositions":[{"id":"%(run)s-p%%d","scope":"%(scope)s","items":[{"id":"offer%%d"}]}]}}',
      counter, counter %% 100)
  end
  return wrk.format(nil, nil, nil, string.format(
    '{"event":{"xdm":{"_id":"%(run)s-%%d","eventType":"web.webpagedetails.pageViews",'
    .. '"timestamp":"%(timestamp)s","identityMap":{"Email":[{"id":"v%%d@example.com",'
    .. '"primary":true}]}%%s}},"query":{"personalization":{"decisionScopes":["%(scope)s"]}}}',
    counter, math.random(1, 500000), display))
end
"""


def interact_script(carry: bool, run: str) -> str:
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return INTERACT_SCRIPT % {
        "carry": int(carry),
        "run": run,
        "timestamp": timestamp,
        "scope": SCOPE,
    }


def stream_script(rate: float, per_request: int, run: str) -> str:
    """wrk's Lua for `rate` events/s, `per_request` events per request, over
    STREAM_CONNECTIONS connections (an upper bound: each connection also waits for its
    answers)."""
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    delay_ms = STREAM_CONNECTIONS * 1000 * per_request / rate
    return STREAM_SCRIPT % {
        "run": run,
        "timestamp": timestamp,
        "scope": SCOPE,
        "per_request": per_request,
        "delay_ms": delay_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32, help="decision connections")
    parser.add_argument("--duration", type=int, default=10, help="seconds of each run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--offers", type=int, default=100)
    parser.add_argument("--caps", action="store_true", help="frequency caps on 10%% of offers")
    parser.add_argument(
        "--fraction", type=float, default=1.0, help="events/s as a fraction of decisions/s alone"
    )
    parser.add_argument("--rate", type=float, help="events/s (instead of --fraction)")
    parser.add_argument(
        "--per-request", type=int, default=1, help="events per collect request (1: the Web SDK's)"
    )
    parser.add_argument(
        "--mode",
        choices=("collect", "interact", "stream"),
        default="collect",
        help="collect: a separate event stream (default); interact: events carried in the "
        "Edge decision requests; stream: the collect stream alone, its CPU per event",
    )
    run_load_test(parser, run)


def run(args: argparse.Namespace, database_url: str | None) -> None:
    if args.mode == "interact":
        run_interact(args, database_url)
        return
    if args.mode == "stream":
        run_stream(args, database_url)
        return
    print(f"machine: {machine()}; load average {_load()}", flush=True)
    alone: list[float] = []
    with_stream: list[float] = []
    streamed: list[dict[str, float]] = []
    decision_cpu: list[float] = []  # server CPU ms per decision, alone
    event_cpu: list[float] = []  # server CPU ms per event: the rest of a round with events
    with edge_server(args, database_url, "offerbase-ingest-") as (
        base,
        headers,
        datastream,
        server,
    ):
        decisions_url = f"{base}/data/core/ods/decisions"
        collect_url = f"{base}/ee/v2/collect?dataStreamId={datastream}"
        body = decisioning_body()

        def decide() -> dict[str, float]:
            figures = run_wrk(decisions_url, "POST", body, headers, args.connections, args.duration)
            assert figures["non_2xx"] == 0, figures
            return figures

        run_wrk(decisions_url, "POST", body, headers, args.connections, 3)  # warm-up
        warm = decide()["rps"]
        rate = args.rate or args.fraction * warm
        print(f"decisions/s alone (warm-up): {warm:.0f}; stream target {rate:.0f} events/s")

        def with_events(round_number: int) -> dict[str, float]:
            script = stream_script(
                rate, args.per_request, f"r{round_number}-{random.getrandbits(32):08x}"
            )
            figures: list[dict[str, float]] = []
            stream = threading.Thread(
                target=lambda: figures.append(
                    run_wrk(
                        collect_url,
                        "POST",
                        "",
                        {},
                        STREAM_CONNECTIONS,
                        args.duration + 2,
                        script=script,
                    )
                )
            )
            cpu = cpu_seconds(server)
            stream.start()
            threading.Event().wait(1)  # the stream is under way before decisions are counted
            decided = decide()
            stream.join()
            threading.Event().wait(0.5)  # the writer's last batch of the stream
            rest = (cpu_seconds(server) - cpu) * 1000 - decided["requests"] * decision_cpu[-1]
            assert figures[0]["non_2xx"] == 0, figures
            streamed.append(figures[0])
            event_cpu.append(rest / (figures[0]["requests"] * args.per_request))
            return decided

        for round_number in range(args.rounds):
            cpu = cpu_seconds(server)
            decided = decide()
            decision_cpu.append((cpu_seconds(server) - cpu) * 1000 / decided["requests"])
            alone.append(decided["rps"])
            with_stream.append(with_events(round_number)["rps"])
            print(
                f"round {round_number + 1}: alone {alone[-1]:.0f}/s, with events "
                f"{with_stream[-1]:.0f}/s (stream {streamed[-1]['rps'] * args.per_request:.0f} "
                f"events/s, p99 "
                f"{streamed[-1]['p99_ms']:.1f} ms); server CPU per decision "
                f"{decision_cpu[-1]:.2f} ms, per event {event_cpu[-1]:.2f} ms; "
                f"load average {_load()}",
                flush=True,
            )
        stored = _stored(base, headers)
    ratios = [w / a for w, a in zip(with_stream, alone, strict=True)]
    ratio = statistics.median(ratios)
    reached = statistics.median(figures["rps"] for figures in streamed) * args.per_request
    print(
        f"database: {args.database_url or 'sqlite'}; workers {args.workers}; "
        f"{args.connections} decision connections; {args.rounds} rounds of {args.duration}s; "
        f"offers {args.offers}; caps {args.caps}"
    )
    print(
        f"event stream: target {rate:.0f}/s, reached median {reached:.0f} events/s "
        f"({reached / statistics.median(alone):.2f} per decision alone), /ee/v2/collect, "
        f"{args.per_request} per request"
    )
    print(
        "decisions/s alone: "
        + " ".join(f"{v:.0f}" for v in alone)
        + "; with events: "
        + " ".join(f"{v:.0f}" for v in with_stream)
    )
    print(
        f"server CPU: median {statistics.median(decision_cpu):.2f} ms per decision alone, "
        f"{statistics.median(event_cpu):.2f} ms per event (a round's CPU less its decisions')"
    )
    sent = sum(figures["requests"] for figures in streamed) * args.per_request
    print(f"events sent {sent:.0f}; in the report after the runs: {stored}")
    verdict = "met" if 1 - ratio <= TARGET_DROP else "NOT met"
    print(
        f"with / without events: median {ratio:.2f} (per round: "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + f"); drop {1 - ratio:.1%} (target <= {TARGET_DROP:.0%}: {verdict})"
    )


def run_stream(args: argparse.Namespace, database_url: str | None) -> None:
    """`--mode stream` (see the module docstring)."""
    print(f"machine: {machine()}; load average {_load()}", flush=True)
    rate = args.rate or 1500.0
    cpu_ms: list[float] = []
    sent = 0.0
    with edge_server(args, database_url, "offerbase-ingest-") as (
        base,
        headers,
        datastream,
        server,
    ):
        url = f"{base}/ee/v2/collect?dataStreamId={datastream}"

        def stream(run: str, duration: int) -> dict[str, float]:
            script = stream_script(rate, args.per_request, f"{run}-{random.getrandbits(32):08x}")
            cpu = cpu_seconds(server)
            figures = run_wrk(url, "POST", "", {}, STREAM_CONNECTIONS, duration, script=script)
            threading.Event().wait(0.5)  # the writer's last batch
            assert figures["non_2xx"] == 0, figures
            events = figures["requests"] * args.per_request
            assert events > 0, "no event answered: raise --rate or --duration"
            figures["cpu_ms"] = (cpu_seconds(server) - cpu) * 1000 / events
            return figures

        sent += stream("warm", 3)["requests"] * args.per_request
        for round_number in range(args.rounds):
            figures = stream(f"r{round_number}", args.duration)
            sent += figures["requests"] * args.per_request
            cpu_ms.append(figures["cpu_ms"])
            print(
                f"round {round_number + 1}: {figures['rps'] * args.per_request:.0f} events/s; "
                f"server CPU per event {cpu_ms[-1]:.3f} ms; load average {_load()}",
                flush=True,
            )
        stored = _stored(base, headers)
    print(
        f"database: {args.database_url or 'sqlite'}; workers {args.workers}; mode stream "
        f"(/ee/v2/collect alone, target {rate:.0f} events/s, {args.per_request} per request); "
        f"{args.rounds} rounds of {args.duration}s"
    )
    print(
        f"server CPU per event: median {statistics.median(cpu_ms):.3f} ms (per round: "
        + ", ".join(f"{v:.3f}" for v in cpu_ms)
        + ")"
    )
    print(f"events sent {sent:.0f} (with the warm-up's); in the report: {stored}")


def run_interact(args: argparse.Namespace, database_url: str | None) -> None:
    """`--mode interact` (see the module docstring)."""
    print(f"machine: {machine()}; load average {_load()}", flush=True)
    rates: dict[bool, list[float]] = {False: [], True: []}
    cpu_ms: dict[bool, list[float]] = {False: [], True: []}
    carried = 0.0
    with edge_server(args, database_url, "offerbase-ingest-") as (
        base,
        headers,
        datastream,
        server,
    ):
        url = f"{base}/ee/v2/interact?dataStreamId={datastream}"

        def interact(carry: bool, run: str, duration: int) -> dict[str, float]:
            cpu = cpu_seconds(server)
            script = interact_script(carry, f"{run}-{random.getrandbits(32):08x}")
            figures = run_wrk(url, "POST", "", {}, args.connections, duration, script=script)
            assert figures["non_2xx"] == 0, figures
            figures["cpu_ms"] = (cpu_seconds(server) - cpu) * 1000 / figures["requests"]
            return figures

        carried += interact(True, "warm", 3)["requests"]  # warm-up
        for round_number in range(args.rounds):
            for carry in (False, True):
                figures = interact(carry, f"r{round_number}", args.duration)
                rates[carry].append(figures["rps"])
                cpu_ms[carry].append(figures["cpu_ms"])
                if carry:
                    carried += figures["requests"]
            print(
                f"round {round_number + 1}: interact alone {rates[False][-1]:.0f}/s, carrying a "
                f"display each {rates[True][-1]:.0f}/s; server CPU per request "
                f"{cpu_ms[False][-1]:.2f} / {cpu_ms[True][-1]:.2f} ms; load average {_load()}",
                flush=True,
            )
        stored = _stored(base, headers)
    ratios = [w / a for w, a in zip(rates[True], rates[False], strict=True)]
    ratio = statistics.median(ratios)
    alone_cpu, with_cpu = (statistics.median(cpu_ms[c]) for c in (False, True))
    print(
        f"database: {args.database_url or 'sqlite'}; workers {args.workers}; "
        f"{args.connections} connections; {args.rounds} rounds of {args.duration}s; "
        f"offers {args.offers}; caps {args.caps}; mode interact (/ee/v2/interact, one display "
        "carried per request)"
    )
    print(
        "interact/s alone: "
        + " ".join(f"{v:.0f}" for v in rates[False])
        + "; carrying a display: "
        + " ".join(f"{v:.0f}" for v in rates[True])
    )
    print(
        f"server CPU per request: median {alone_cpu:.2f} ms alone, {with_cpu:.2f} ms carrying a "
        f"display: {with_cpu - alone_cpu:.2f} ms per carried event"
    )
    print(f"displays carried {carried:.0f} (with the warm-up's); in the report: {stored}")
    verdict = "met" if 1 - ratio <= TARGET_DROP else "NOT met"
    print(
        f"with / without events: median {ratio:.2f} (per round: "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + f"); drop {1 - ratio:.1%} (target <= {TARGET_DROP:.0%}: {verdict})"
    )


def _stored(base: str, headers: dict[str, str]) -> str:
    """The displays and clicks the report counts once the writers have caught up (the counts
    stopped changing, at most a minute), and what the writers dropped (a full queue): the
    stream's events were stored and counted, not only answered."""
    seen: tuple[int, int] | None = None
    waited = 0
    while waited < 60:
        threading.Event().wait(2)
        waited += 2
        totals = httpx.get(
            f"{base}/data/core/ods/reports",
            params={"groupBy": "offer"},
            headers=headers,
            timeout=30,
        ).json()["totals"]
        counts = (int(totals["displays"]), int(totals["clicks"]))
        if counts == seen:
            break
        seen = counts
    metrics = httpx.get(f"{base}/metrics", timeout=30).text
    dropped = {
        kind: sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith(f"offerbase_{kind}_events_dropped_total")
        )
        for kind in ("interaction", "decision")
    }
    assert seen is not None
    return (
        f"displays {seen[0]}, clicks {seen[1]} (after {waited} s); dropped by the writers: "
        f"interaction events {dropped['interaction']:.0f}, "
        f"decision events {dropped['decision']:.0f}"
    )


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


if __name__ == "__main__":
    main()
