"""Adobe's documented Edge Network Server API requests, replayed with curl against a real
`offerbase serve`: the bodies in tests/fixtures/edge/ are Adobe's as published (see the
README there for the pages), sent with the documented headers, and the answers are checked
against the documented response shape.

The catalog uses the ids of Adobe's example (its activity, placement and offer), so the
documented decision scope is sent unchanged. Adobe's authentication headers (a token for
`server.adobedc.net`) are sent as documented with placeholder values: Offerbase ignores them,
the datastream authorises (docs/edge.md).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from offerbase.api import edge_identity
from real_server import clean_environment, serving, token_headers

pytestmark = pytest.mark.xdist_group("edge-server-api")  # one real server at a time

FIXTURES = Path(__file__).parents[1] / "fixtures" / "edge"
ORG = "53A16ACB5CC1D3760A495C99@AdobeOrg"  # the org of Adobe's example answer
SANDBOX = "prod"
# The ids inside the documented decision scope and answer.
ACTIVITY = "xcore:offer-activity:14efca8941895181"
PLACEMENT = "xcore:offer-placement:12d544ae54e7e7db"
OFFER = "xcore:personalized-offer:14efc848a3577d92"
FALLBACK = "xcore:fallback-offer:14efc848a3577d93"
DOCUMENTED_SCOPE = (
    "eyJ4ZG06YWN0aXZpdHlJZCI6Inhjb3JlOm9mZmVyLWFjdGl2aXR5OjE0ZWZjYTg5NDE4OTUxODEiLCJ4ZG06"
    "cGxhY2VtZW50SWQiOiJ4Y29yZTpvZmZlci1wbGFjZW1lbnQ6MTJkNTQ0YWU1NGU3ZTdkYiJ9"
)
DOCUMENTED_ECID = "05907638112924484241029082405297151763"
# The state:store value of Adobe's example answer: the identity cookie of that ECID.
DOCUMENTED_COOKIE = (
    "CiYwNTkwNzYzODExMjkyNDQ4NDI0MTAyOTA4MjQwNTI5NzE1MTc2M1IOCLr6xb39LxgBKgNPUjLwAbr6xb39Lw=="
)
JSON_COMPONENT = "https://ns.adobe.com/experience/offer-management/content-component-json"
WEB = "https://ns.adobe.com/xdm/channel-types/web"
# The offer of Adobe's example answer, as its `data` shows it.
CONTENT = '{\n\t"ODEFirstTest" : "Personalizaton Content"\n}'
# Adobe's documented headers; the values are placeholders, as on Adobe's pages.
ADOBE_HEADERS = {
    "Authorization": "Bearer {TOKEN}",
    "x-gw-ims-org-id": ORG,
    "x-api-key": "{API_KEY}",
    "Content-Type": "application/json",
}


@dataclass(frozen=True)
class Server:
    base: str
    datastream: str
    headers: dict[str, str]  # an Offerbase credential's, to read decision events


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def cli(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "offerbase", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def build_catalog(base: str, headers: dict[str, str]) -> None:
    """Adobe's example offer (JSON content, en-us, one characteristic) in a live decision."""
    component = {
        "type": "json",
        "format": "application/json",
        "language": ["en-us"],
        "content": CONTENT,
    }
    rep = [{"channel": WEB, "placement": PLACEMENT, "components": [component]}]
    offer = {"status": "approved", "representations": rep}
    for path, body in [
        (f"placements/{PLACEMENT}", {"name": "Home", "channel": WEB, "componentType": "json"}),
        (
            f"offers/{OFFER}?offer-type=personalized",
            {**offer, "name": "ODE first test", "characteristics": {"reporting": "testRequest"}},
        ),
        (f"offers/{FALLBACK}?offer-type=fallback", {**offer, "name": "Fallback"}),
        ("offer-collections/all", {"name": "All", "filterType": "offers", "ids": [OFFER]}),
        (
            f"offer-decisions/{ACTIVITY}",
            {
                "name": "Home page",
                "status": "live",
                "fallback": FALLBACK,
                "criteria": [{"placements": [PLACEMENT], "optionSelection": {"filter": "all"}}],
            },
        ),
    ]:
        response = httpx.post(f"{base}/data/core/dps/{path}", json=body, headers=headers)
        assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if shutil.which("curl") is None:
        pytest.fail("curl is missing (the replays send Adobe's curl commands as documented)")
    env = clean_environment(tmp_path_factory.mktemp("edge-server-api"))
    env["OFFERBASE_EVENTS_DURABLE"] = "true"  # decision events written before the answer
    with serving(env=env) as base:
        credential = cli(env, "credentials", "create", "--org", ORG, "--sandbox", SANDBOX)
        headers = token_headers(base, credential)
        build_catalog(base, headers)
        datastream = cli(env, "datastreams", "create", "--org", ORG, "--sandbox", SANDBOX)["id"]
        yield Server(base, datastream, headers)


def curl(url: str, headers: dict[str, str], fixture: str) -> Answer:
    """`curl -X POST URL -H ... --data-raw BODY`, the documented command; the body is the
    fixture's text, byte for byte."""
    body = (FIXTURES / fixture).read_text()
    command = ["curl", "-sS", "-X", "POST", url]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command += ["--data-raw", body, "-w", "\n%{http_code} %{content_type}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
    text, _, status_line = done.stdout.rpartition("\n")
    status, _, content_type = status_line.partition(" ")
    return Answer(int(status), content_type, text)


def handles(answer: Answer, kind: str) -> list[dict[str, Any]]:
    return [h for h in answer.json()["handle"] if h["type"] == kind]


def test_offer_decisioning_request_gets_the_documented_answer(server: Server) -> None:
    """experience-platform edge-network-server-api/personalization/personalization-offer-
    decisioning: "A full request that includes a complete XDM object, data object and an
    Offer Decisioning query"."""
    url = f"{server.base}/ee/v2/interact?dataStreamId={server.datastream}"
    answer = curl(url, ADOBE_HEADERS, "server-api-offer-decisioning.json")
    assert answer.status == 200, answer.text
    assert answer.content_type.startswith("application/json")
    body = answer.json()
    assert isinstance(body["requestId"], str)
    assert body["requestId"]
    assert {h["type"] for h in body["handle"]} >= {"personalization:decisions", "state:store"}
    (decisions,) = handles(answer, "personalization:decisions")
    assert decisions["eventIndex"] == 0
    (proposition,) = decisions["payload"]
    assert isinstance(proposition["id"], str)
    assert proposition["scope"] == DOCUMENTED_SCOPE  # the string as sent
    assert proposition["activity"]["id"] == ACTIVITY
    assert proposition["placement"]["id"] == PLACEMENT
    assert isinstance(proposition["activity"]["etag"], str)
    assert isinstance(proposition["placement"]["etag"], str)
    (item,) = proposition["items"]
    assert isinstance(item.pop("etag"), str)
    # Adobe's documented item, member for member (its etag aside).
    assert item == {
        "id": OFFER,
        "schema": JSON_COMPONENT,
        "data": {
            "id": OFFER,
            "format": "application/json",
            "language": ["en-us"],
            "content": CONTENT,
            "characteristics": {"reporting": "testRequest"},
        },
    }
    # The ECID of the event's identityMap is the visitor's: the identity cookie Offerbase
    # stores names the same ECID as the one in Adobe's documented answer.
    (state,) = handles(answer, "state:store")
    (cookie,) = state["payload"]
    assert cookie["key"] == "kndctr_53A16ACB5CC1D3760A495C99_AdobeOrg_identity"
    assert cookie["maxAge"] == 34128000
    assert edge_identity.decode_cookie(cookie["value"]) == DOCUMENTED_ECID
    assert edge_identity.decode_cookie(DOCUMENTED_COOKIE) == DOCUMENTED_ECID
    # The decision was recorded like a Decisioning API decision, under the proposition's id.
    events = httpx.get(f"{server.base}/data/core/ods/decision-events", headers=server.headers)
    assert events.status_code == 200, events.text
    assert proposition["id"] in events.text


def test_adobe_authentication_headers_change_nothing(server: Server) -> None:
    """The same request without Adobe's token headers gets the same offer: the datastream
    authorises, a `server.adobedc.net` token is neither needed nor checked."""
    url = f"{server.base}/ee/v2/interact?dataStreamId={server.datastream}"
    bare = curl(url, {"Content-Type": "application/json"}, "server-api-offer-decisioning.json")
    assert bare.status == 200, bare.text
    (proposition,) = handles(bare, "personalization:decisions")[0]["payload"]
    assert [item["id"] for item in proposition["items"]] == [OFFER]
    unknown = curl(
        f"{server.base}/ee/v2/interact?dataStreamId=not-a-datastream",
        ADOBE_HEADERS,
        "server-api-offer-decisioning.json",
    )
    assert unknown.status == 400
    assert unknown.content_type.startswith("application/problem+json")
    assert unknown.json()["type"] == "https://ns.adobe.com/aep/errors/EXEG-0003-400"


def test_interactive_data_collection_request(server: Server) -> None:
    """edge-network-server-api/interactive-data-collection: a page view with a hashed e-mail
    identity and no personalization query: 200 with handles, no decisions; the documented
    optional requestId is echoed."""
    url = f"{server.base}/ee/v2/interact?dataStreamId={server.datastream}"
    answer = curl(url, ADOBE_HEADERS, "server-api-interact.json")
    assert answer.status == 200, answer.text
    body = answer.json()
    assert isinstance(body["requestId"], str)
    assert isinstance(body["handle"], list)
    assert handles(answer, "personalization:decisions") == []
    traced = curl(f"{url}&requestId=trace-42", ADOBE_HEADERS, "server-api-interact.json")
    assert traced.json()["requestId"] == "trace-42"


@pytest.mark.parametrize("query", ["", "&silent=true"])
def test_non_interactive_data_collection_request(server: Server, query: str) -> None:
    """edge-network-server-api/non-interactive-data-collection: two events of two visitors
    on /ee/v2/collect. Adobe answers 202 with a requestId (204 with silent=true); Offerbase
    answers every collect 204 without a body (docs/edge.md)."""
    url = f"{server.base}/ee/v2/collect?dataStreamId={server.datastream}{query}"
    answer = curl(url, ADOBE_HEADERS, "server-api-collect.json")
    assert answer.status == 204, answer.text
    assert answer.text == ""
