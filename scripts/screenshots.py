"""Screenshots of the admin UI's main pages at 1280 and 390 px, into docs/screenshots/.

Run by hand after changing a page: `.venv/bin/python scripts/screenshots.py`. It starts a real
`offerbase serve` on a fresh data directory, stores a small demo catalog through the API (a
placement, four offers, one of them a draft and one with a rule, a collection, a live decision
and a fallback), makes a few decisions so that the reports have numbers, edits an offer so that
it has a history, adds two users and a credential, signs an admin in, and takes full-page PNGs
with Debian's Chromium (/usr/bin/chromium, driven by Playwright; no browser download; every
request to another host is refused, as the pages must work offline).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

# The benchmarks' token and headers for a credential (bench/serving.py), not a copy of them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from serving import credential_headers

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
EMAIL, PASSWORD = "marketer@example.com", "a screenshot passphrase"
WEB = "https://ns.adobe.com/xdm/channel-types/web"
DATES = {"startDate": "2025-01-01T00:00:00Z", "endDate": "2035-01-01T00:00:00Z"}
WIDTHS = (1280, 390)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def offerbase(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    command = [sys.executable, "-m", "offerbase", *args]
    subprocess.run(command, env=env, input=stdin, text=True, check=True, capture_output=True)


def demo_catalog(base: str, auth: dict[str, str]) -> None:
    api = f"{base}/data/core/dps"

    def send(method: str, path: str, body: dict[str, object], **extra: str) -> None:
        response = httpx.request(method, f"{api}/{path}", headers={**auth, **extra}, json=body)
        response.raise_for_status()

    send(
        "POST", "placements/home", {"name": "Home banner", "channel": WEB, "componentType": "html"}
    )
    send(
        "POST",
        "offer-rules/loyal",
        {
            "name": "Loyal customers",
            "condition": {
                "type": "PQL",
                "format": "pql/text",
                "value": 'profile.loyalty.tier.equals("gold", false)',
            },
        },
    )
    rep = {
        "channel": WEB,
        "placement": "home",
        "components": [{"type": "html", "format": "text/html", "content": "<p>Offer</p>"}],
    }
    offers = [
        ("spring", "Spring sale", "approved", 5, {"profileConstraintType": "none"}),
        ("winter", "Winter coats", "approved", 3, {"profileConstraintType": "none"}),
        (
            "gold",
            "Gold members' gift",
            "approved",
            9,
            {"profileConstraintType": "eligibilityRule", "eligibilityRule": "loyal"},
        ),
        ("bonus", "Loyalty bonus", "draft", 7, {"profileConstraintType": "none"}),
    ]
    for oid, name, status, priority, constraint in offers:
        send(
            "POST",
            f"offers/{oid}?offer-type=personalized",
            {
                "name": name,
                "status": status,
                "rank": {"priority": priority},
                "selectionConstraint": {**DATES, **constraint},
                "representations": [rep],
            },
        )
    send(
        "POST",
        "offers/fallback?offer-type=fallback",
        {"name": "House banner", "status": "approved", "representations": [rep]},
    )
    send(
        "POST",
        "offer-collections/all",
        {"name": "Everything", "filterType": "offers", "ids": [o[0] for o in offers]},
    )
    send(
        "POST",
        "offer-decisions/home-page",
        {
            "name": "Home page",
            "status": "live",
            **DATES,
            "fallback": "fallback",
            "criteria": [{"optionSelection": {"filter": "all"}}],
        },
    )
    # A history: the spring sale renamed, then its priority raised.
    for change in ("Spring sale, 20% off", None):
        current = httpx.get(f"{api}/offers/spring?offer-type=personalized", headers=auth).json()
        body = {
            k: v
            for k, v in current.items()
            if k
            not in ("id", "etag", "schemas", "created", "modified", "createdBy", "lastModifiedBy")
        }
        if change:
            body["name"] = change
        else:
            body["rank"] = {"priority": 6}
        send(
            "PUT",
            "offers/spring?offer-type=personalized",
            body,
            **{"If-Match": f'"{current["etag"]}"'},
        )
    # Decisions for the reports.
    for index in range(12):
        response = httpx.post(
            f"{base}/data/core/ods/decisions",
            headers=auth,
            json={
                "xdm:propositionRequests": [
                    {"xdm:activityId": "home-page", "xdm:placementId": "home"}
                ],
                "xdm:profiles": [
                    {
                        "xdm:identityMap": {
                            "Email": [{"xdm:id": f"person{index}@example.com", "primary": True}]
                        }
                    }
                ],
            },
        )
        response.raise_for_status()


def shoot(page: Page, base: str, name: str, path: str) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{base}{path}")
        page.screenshot(path=str(OUT / f"admin-{name}-{width}.png"), full_page=True)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="offerbase-screenshots-") as tmp:
        data_dir = Path(tmp) / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OFFERBASE_")}
        env["OFFERBASE_DATA_DIR"] = str(data_dir)
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "offerbase",
                "serve",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            offerbase(
                env,
                "users",
                "create",
                "--org",
                "default",
                "--email",
                EMAIL,
                "--role",
                "admin",
                "--password-stdin",
                stdin=PASSWORD + "\n",
            )
            # Two more people and a credential, for the Users and Credentials pages.
            for email, role in (("editor@example.com", "editor"), ("viewer@example.com", "viewer")):
                offerbase(
                    env,
                    *("users", "create", "--org", "default", "--email", email, "--role", role),
                    *("--sandbox", "prod", "--password-stdin"),
                    stdin=PASSWORD + "\n",
                )
            offerbase(env, "credentials", "create", "--org", "default", "--name", "Web shop")
            demo_catalog(
                base,
                credential_headers(base, json.loads((data_dir / "credentials.json").read_text())),
            )
            time.sleep(2)  # the decision events (and the reports' rollups) are written
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox"]
                )
                page = browser.new_page()
                page.route(
                    "**/*",
                    lambda route: (
                        route.continue_() if route.request.url.startswith(base) else route.abort()
                    ),
                )
                shoot(page, base, "sign-in", "/admin/sign-in")
                page.goto(f"{base}/admin/sign-in")
                page.get_by_label("Email").fill(EMAIL)
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url("**/offers")
                sandbox = "/admin/sandbox/prod"
                shoot(page, base, "offers", f"{sandbox}/offers")
                shoot(page, base, "offer-editor", f"{sandbox}/offers/edit/spring")
                shoot(page, base, "decision-builder", f"{sandbox}/decisions/edit/home-page")
                shoot(page, base, "rule-editor", f"{sandbox}/decision-rules/edit/loyal")
                shoot(page, base, "history", f"{sandbox}/history/personalized-offer/spring")
                shoot(page, base, "reports", f"{sandbox}/reports")
                shoot(page, base, "users", f"{sandbox}/users")
                shoot(page, base, "credentials", f"{sandbox}/credentials")
                for width in WIDTHS:
                    page.set_viewport_size({"width": width, "height": 900})
                    page.goto(f"{base}{sandbox}/simulation")
                    page.get_by_label("Identity of a stored profile").fill("ann@example.com")
                    page.get_by_label("Live decision").select_option("home-page")
                    page.get_by_role("button", name="Simulate").click()
                    page.wait_for_load_state()
                    page.screenshot(path=str(OUT / f"admin-simulation-{width}.png"), full_page=True)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    for png in sorted(OUT.glob("admin-*.png")):
        print(png.relative_to(ROOT))


if __name__ == "__main__":
    main()
