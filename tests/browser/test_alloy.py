"""Adobe's Web SDK (`@adobe/alloy`, pinned in tests/clients/package.json) gets its offers from a
real `offerbase serve` over HTTPS, in Debian's Chromium driven by Playwright.

The page is docs/examples/alloy-page.html as a user copies it: only its datastream id is filled
in. Alloy speaks HTTPS to port 443 of a bare host name, so Chromium's host resolver maps the
page's host names to local servers (`--host-resolver-rules`, which takes a port in the
replacement): `edge.shop.example` to Offerbase (TLS, a fresh self-signed certificate), and the
page and Adobe's CDN address of alloy.js to a small TLS server in this test that answers with
the page and with the npm package's own `dist/alloy.min.js`. Every other host fails to resolve,
so nothing comes from the network.

Two page origins, the two ways alloy carries the identity back to Edge: a page of the same site
(`www.shop.example`, alloy sees a first-party Edge host and the browser sends the identity
cookie as a `Cookie` header) and a page of another site (`www.shop.test`, alloy copies the
cookie into `meta.state.entries` of the body).

Without /usr/bin/chromium or `npm ci` in tests/clients the tests are skipped with a notice,
except with CI=true (.ci/run installs both), where they must run.
"""

from __future__ import annotations

import base64
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CLIENTS = ROOT / "tests" / "clients"
ALLOY_DIST = CLIENTS / "node_modules" / "@adobe" / "alloy" / "dist"
PAGE = ROOT / "docs" / "examples" / "alloy-page.html"
PLACEHOLDER = "YOUR-DATASTREAM-ID"

ORG = "SHOP@AdobeOrg"
EDGE = "edge.shop.example"
CDN = "cdn1.adoberesources.net"
FIRST_PARTY = "www.shop.example"
THIRD_PARTY = "www.shop.test"
WEB = "https://ns.adobe.com/xdm/channel-types/web"

for missing, why in [
    (not CHROMIUM.exists(), "no /usr/bin/chromium (apt-get install chromium)"),
    (not (ALLOY_DIST / "alloy.min.js").exists(), "no @adobe/alloy (npm ci in tests/clients)"),
]:
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {why}", pytrace=False)
        pytest.skip(f"{why}: the alloy browser tests are skipped", allow_module_level=True)

from playwright.sync_api import Browser, Page, Request, sync_playwright  # noqa: E402

from real_server import (  # noqa: E402
    clean_environment,
    self_signed_certificate,
    serving,
    token_headers,
)

# The pinned version, and the CDN address the page loads it from (Adobe's, for that version).
ALLOY_VERSION = json.loads((CLIENTS / "package.json").read_text())["devDependencies"][
    "@adobe/alloy"
]
ALLOY_PATH = f"/alloy/{ALLOY_VERSION}/alloy.min.js"

pytestmark = pytest.mark.xdist_group("browser")


class _Site(BaseHTTPRequestHandler):
    """The static files: (host, path) -> (content type, body); anything else is a 404."""

    files: dict[tuple[str, str], tuple[str, bytes]] = {}

    def do_GET(self) -> None:
        found = self.files.get((self.headers.get("Host", ""), self.path))
        if found is None:
            self.send_error(404)
            return
        content_type, body = found
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def static_site(files: dict[tuple[str, str], tuple[str, bytes]], cert: Path, key: Path) -> Any:
    """A TLS server on a free port for `files`; the caller shuts it down."""
    handler = type("Site", (_Site,), {"files": files})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Shop:
    """A running Offerbase with the shop's catalog, its datastream, and the static site."""

    base: str
    env: dict[str, str]
    headers: dict[str, str]
    trusted: ssl.SSLContext  # trusts the test's certificate
    datastream: str
    rules: str
    seen: list[Request] = field(default_factory=list)


def offerbase(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "offerbase", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def build_catalog(base: str, headers: dict[str, str], trusted: ssl.SSLContext) -> None:
    """Two placements of the decision `home`: a gold offer and the newsletter in the banner, a
    gold offer in the sidebar, the fallback `welcome` in both. The gold offers have a rule."""

    def html(placement: str, content: str) -> dict[str, Any]:
        return {
            "channel": WEB,
            "placement": placement,
            "components": [{"type": "html", "format": "text/html", "content": content}],
        }

    gold = {"profileConstraintType": "eligibilityRule", "eligibilityRule": "gold-members"}
    for path, body in [
        ("placements/web-banner", {"name": "Banner", "channel": WEB, "componentType": "html"}),
        ("placements/web-sidebar", {"name": "Sidebar", "channel": WEB, "componentType": "html"}),
        (
            "offer-rules/gold-members",
            {
                "name": "Gold members",
                "condition": {
                    "type": "PQL",
                    "format": "pql/text",
                    "value": 'loyalty.tier = "gold"',
                },
            },
        ),
        (
            "offers/gold-banner?offer-type=personalized",
            {
                "name": "Gold banner",
                "status": "approved",
                "rank": {"priority": 50},
                "selectionConstraint": gold,
                "representations": [html("web-banner", "<p>Gold: 20% off</p>")],
            },
        ),
        (
            "offers/newsletter?offer-type=personalized",
            {
                "name": "Newsletter",
                "status": "approved",
                "rank": {"priority": 10},
                "representations": [html("web-banner", "<p>Get the newsletter</p>")],
            },
        ),
        (
            "offers/gold-lounge?offer-type=personalized",
            {
                "name": "Gold lounge",
                "status": "approved",
                "rank": {"priority": 50},
                "selectionConstraint": gold,
                "representations": [html("web-sidebar", "<p>The gold lounge</p>")],
            },
        ),
        (
            "offers/welcome?offer-type=fallback",
            {
                "name": "Welcome",
                "status": "approved",
                "representations": [
                    html("web-banner", "<p>Welcome!</p>"),
                    html("web-sidebar", "<p>Welcome!</p>"),
                ],
            },
        ),
        (
            "offer-collections/home-offers",
            {
                "name": "Home",
                "filterType": "offers",
                "ids": ["gold-banner", "newsletter", "gold-lounge"],
            },
        ),
        (
            "offer-decisions/home",
            {
                "name": "Home page",
                "status": "live",
                "fallback": "welcome",
                "criteria": [
                    {
                        "placements": ["web-banner", "web-sidebar"],
                        "optionSelection": {"filter": "home-offers"},
                    }
                ],
            },
        ),
    ]:
        response = httpx.post(
            f"{base}/data/core/dps/{path}", json=body, headers=headers, verify=trusted
        )
        assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    work = tmp_path_factory.mktemp("alloy")
    cert, key = self_signed_certificate(work, EDGE, FIRST_PARTY, THIRD_PARTY, CDN, "127.0.0.1")
    trusted = ssl.create_default_context(cafile=str(cert))
    env = clean_environment(work / "data")
    tls = ("--ssl-certfile", str(cert), "--ssl-keyfile", str(key), "--log-level", "warning")
    with serving(*tls, env=env, scheme="https") as base:
        credential = json.loads(
            offerbase("credentials", "create", "--org", ORG, "--sandbox", "prod", "--json", env=env)
        )
        headers = token_headers(base, credential, trusted)
        build_catalog(base, headers, trusted)
        created = json.loads(
            offerbase(
                "datastreams",
                "create",
                "--org",
                ORG,
                "--name",
                "Shop web site",
                "--origin",
                f"https://{FIRST_PARTY}",
                "--origin",
                f"https://{THIRD_PARTY}",
                "--json",
                env=env,
            )
        )
        page = PAGE.read_text()
        assert page.count(PLACEHOLDER) == 1
        assert f'src="https://{CDN}{ALLOY_PATH}"' in page, "the page loads the pinned alloy"
        filled = page.replace(PLACEHOLDER, created["id"]).encode()
        files = {
            (FIRST_PARTY, "/"): ("text/html; charset=utf-8", filled),
            (THIRD_PARTY, "/"): ("text/html; charset=utf-8", filled),
            (CDN, ALLOY_PATH): ("text/javascript", (ALLOY_DIST / "alloy.min.js").read_bytes()),
        }
        site = static_site(files, cert, key)
        try:
            edge_port = base.rsplit(":", 1)[1]
            site_port = site.server_address[1]
            rules = ", ".join(
                [f"MAP {EDGE}:443 127.0.0.1:{edge_port}"]
                + [f"MAP {host}:443 127.0.0.1:{site_port}" for host in (FIRST_PARTY, THIRD_PARTY)]
                + [f"MAP {CDN}:443 127.0.0.1:{site_port}", "MAP * ~NOTFOUND"]
            )
            yield Shop(base, env, headers, trusted, created["id"], rules)
        finally:
            site.shutdown()
            site.server_close()


@dataclass(frozen=True)
class Shown:
    """What the page shows after its offers and their display notification went out."""

    offers: dict[str, str]  # slot -> offer id
    texts: dict[str, str]  # slot -> rendered text
    propositions: dict[str, str]  # slot -> proposition id
    ecid: str


def load(page: Page, url: str | None = None) -> Shown:
    if url is None:
        page.reload()
    else:
        page.goto(url)
    page.wait_for_selector("body[data-display-sent], body[data-error]", timeout=30_000)
    assert page.evaluate("document.body.dataset.error || null") is None
    slots = ("hero", "sidebar")
    data = {slot: page.locator(f"#{slot}") for slot in slots}
    ecid = page.evaluate("alloy('getIdentity').then(function (r) { return r.identity.ECID; })")
    assert re.fullmatch(r"\d{38}", ecid), ecid
    return Shown(
        offers={slot: str(data[slot].get_attribute("data-offer-id")) for slot in slots},
        texts={slot: data[slot].inner_text() for slot in slots},
        propositions={slot: str(data[slot].get_attribute("data-proposition-id")) for slot in slots},
        ecid=ecid,
    )


def click_hero(page: Page) -> None:
    page.click("#hero")
    page.wait_for_selector("#hero[data-click-sent], body[data-error]", timeout=30_000)
    assert page.evaluate("document.body.dataset.error || null") is None


def exported(shop: Shop, kind: str, wanted: Callable[[list[dict[str, Any]]], bool]) -> list[Any]:
    """`offerbase events export --type kind`, once `wanted` holds of it (events are written
    behind the response)."""
    rows: list[dict[str, Any]] = []
    for _ in range(100):
        out = offerbase("events", "export", "--type", kind, "--org", ORG, env=shop.env)
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        if wanted(rows):
            return rows
        time.sleep(0.1)
    raise AssertionError(f"{kind} events never as expected: {rows}")


def decisioning_api(shop: Shop, ecid: str) -> dict[str, str]:
    """The offers the Decisioning API gives the same visitor (its ECID) in both placements."""
    response = httpx.post(
        f"{shop.base}/data/core/ods/decisions",
        headers=shop.headers,
        verify=shop.trusted,
        json={
            "xdm:propositionRequests": [
                {"xdm:activityId": "home", "xdm:placementId": placement}
                for placement in ("web-banner", "web-sidebar")
            ],
            "xdm:profiles": [{"xdm:identityMap": {"ECID": [{"xdm:id": ecid}]}}],
        },
    )
    assert response.status_code == 200, response.text
    chosen = {}
    for proposition in response.json()["xdm:propositions"]:
        options = proposition.get("xdm:options") or [proposition["xdm:fallback"]]
        chosen[proposition["xdm:placement"]["xdm:id"]] = options[0]["xdm:id"]
    return {"hero": chosen["web-banner"], "sidebar": chosen["web-sidebar"]}


def launch(playwright: Any, rules: str) -> Browser:
    return playwright.chromium.launch(  # type: ignore[no-any-return]
        executable_path=str(CHROMIUM), args=["--no-sandbox", f"--host-resolver-rules={rules}"]
    )


def identity_cookie_in_body(requests: list[Request]) -> list[bool]:
    """For each Edge request: does its body carry the identity cookie in meta.state.entries?"""
    name = "kndctr_" + ORG.replace("@", "_") + "_identity"
    carried = []
    for request in requests:
        body = json.loads(request.post_data or "{}")
        entries = body.get("meta", {}).get("state", {}).get("entries", [])
        carried.append(any(entry.get("key") == name for entry in entries))
    return carried


@pytest.mark.parametrize("host", [FIRST_PARTY, THIRD_PARTY])
def test_alloy_gets_renders_and_reports_offers(shop: Shop, host: str) -> None:
    edge_requests: list[Request] = []
    edge_answers: list[tuple[int, str | None, str | None]] = []
    with sync_playwright() as playwright:
        browser = launch(playwright, shop.rules)
        try:
            page = browser.new_context(ignore_https_errors=True).new_page()
            page.on(
                "request",
                lambda r: edge_requests.append(r) if r.url.startswith(f"https://{EDGE}/") else None,
            )
            page.on(
                "response",
                lambda r: (
                    edge_answers.append(
                        (
                            r.status,
                            r.headers.get("access-control-allow-origin"),
                            r.headers.get("access-control-allow-credentials"),
                        )
                    )
                    if r.url.startswith(f"https://{EDGE}/")
                    else None
                ),
            )
            # A new visitor: no profile, so no gold offer; the sidebar has only the fallback.
            first = load(page, f"https://{host}/")
            assert first.offers == {"hero": "newsletter", "sidebar": "welcome"}
            assert first.texts == {"hero": "Get the newsletter", "sidebar": "Welcome!"}
            click_hero(page)

            # The visitor becomes a gold member (a profile under their ECID); on the next page
            # load alloy sends the same identity, and the rules now give the gold offers.
            response = httpx.put(
                f"{shop.base}/data/core/ups/profiles/ECID/{first.ecid}",
                headers=shop.headers,
                json={"loyalty": {"tier": "gold"}},
                verify=shop.trusted,
            )
            assert response.status_code == 201, response.text
            second = load(page)
            assert second.ecid == first.ecid
            assert second.offers == {"hero": "gold-banner", "sidebar": "gold-lounge"}
            assert second.texts == {"hero": "Gold: 20% off", "sidebar": "The gold lounge"}
            click_hero(page)
        finally:
            browser.close()

    # Every request went to Offerbase's Edge routes, answered 200 with CORS for the page.
    assert edge_requests
    for request in edge_requests:
        assert re.match(rf"https://{EDGE}/ee/(\w+/)?v1/", request.url), request.url
        assert f"configId={shop.datastream}" in request.url
    assert edge_answers == [(200, f"https://{host}", "true")] * len(edge_requests)
    # The identity came back the way this page origin makes alloy send it.
    carried = identity_cookie_in_body(edge_requests[1:])
    assert carried == [host == THIRD_PARTY] * len(carried)

    # The same offers as the Decisioning API gives that profile.
    assert decisioning_api(shop, first.ecid) == second.offers

    # Two page loads: each a display of both offers (one row per proposition) and a click on
    # the hero, stored under the visitor's ECID and linked to the decision by proposition id.
    def visitor(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [row for row in rows if (row.get("identity") or {}).get("id") == first.ecid]

    rows = visitor(exported(shop, "interaction", lambda rows: len(visitor(rows)) >= 6))
    assert len(rows) == 6
    got = sorted(
        (row["propositionId"], row["type"], row["placementId"], tuple(row["itemIds"]))
        for row in rows
    )
    expected = []
    for shown in (first, second):
        for slot, placement in (("hero", "web-banner"), ("sidebar", "web-sidebar")):
            expected.append((shown.propositions[slot], "display", placement, (shown.offers[slot],)))
        expected.append(
            (shown.propositions["hero"], "interact", "web-banner", (shown.offers["hero"],))
        )
    assert got == sorted(expected)
    for row in rows:
        assert row["identity"] == {"namespace": "ECID", "id": first.ecid}
        assert row["datastreamId"] == shop.datastream
        assert row["activityId"] == "home"
        scope = json.loads(base64.b64decode(row["scope"]))
        assert row["placementId"] in scope.values()
    decided = {row["propositionId"] for row in rows}
    assert len(decided) == 2  # one decision per page load
    exported(shop, "decision", lambda events: decided <= {e["xdm:propositionId"] for e in events})
