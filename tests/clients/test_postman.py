"""Adobe's Decisioning Postman collection, run by newman (Postman's own runner, from
tests/clients/package.json) against a real `offerbase serve`: container discovery chains the
container id into the legacy /ode requests, as it does against Adobe (see
tests/fixtures/postman/README.md for what the collection holds).

Without Node and newman (`npm ci` in tests/clients) the test is skipped with a notice, except
with CI=true (`.ci/run` installs them), where it must run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from real_server import clean_environment, serving, token_headers

HERE = Path(__file__).parent
NEWMAN = HERE / "node_modules" / ".bin" / "newman"
COLLECTION = (
    HERE.parent / "fixtures" / "postman" / "ajo-decisioning-service.postman_collection.json"
)
SANDBOX = "aepenablementfy21"  # the sandbox the collection's container discovery asks for
PLACEMENT = "xcore:offer-placement:127075c49bb0df30"  # the id its 1.0 request names
ACTIVITY = "xcore:offer-activity:1"
WEB = "https://ns.adobe.com/xdm/channel-types/web"


def _catalog(base: str, credential: dict[str, str]) -> str:
    """A decision in the collection's sandbox, and a token; returns the token."""
    headers = token_headers(base, credential)
    assert headers["x-sandbox-name"] == SANDBOX
    rep = [
        {
            "channel": WEB,
            "placement": PLACEMENT,
            "components": [{"type": "html", "content": "hi", "format": "text/html"}],
        }
    ]
    for path, body in [
        (f"placements/{PLACEMENT}", {"name": "Web", "channel": WEB, "componentType": "html"}),
        (
            "offers/xcore:personalized-offer:1?offer-type=personalized",
            {"name": "Offer", "status": "approved", "representations": rep},
        ),
        (
            "offers/xcore:fallback-offer:1?offer-type=fallback",
            {"name": "Fallback", "status": "approved", "representations": rep},
        ),
        (
            "offer-collections/all",
            {"name": "All", "filterType": "offers", "ids": ["xcore:personalized-offer:1"]},
        ),
        (
            f"offer-decisions/{ACTIVITY}",
            {
                "name": "Activity",
                "status": "live",
                "fallback": "xcore:fallback-offer:1",
                "criteria": [{"placements": [PLACEMENT], "optionSelection": {"filter": "all"}}],
            },
        ),
    ]:
        response = httpx.post(f"{base}/data/core/dps/{path}", json=body, headers=headers)
        assert response.status_code == 201, response.text
    return headers["Authorization"].removeprefix("Bearer ")


def test_adobes_decisioning_collection_passes(tmp_path: Path) -> None:
    if not NEWMAN.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but newman is missing (npm ci in tests/clients)")
        pytest.skip("newman is not installed (npm ci in tests/clients)")
    env = clean_environment(tmp_path / "data")
    with serving(env=env) as base:
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "offerbase",
                "credentials",
                "create",
                "--org",
                "ENABLEMENT@AdobeOrg",
            ]
            + ["--sandbox", SANDBOX, "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        credential = json.loads(created.stdout)
        token = _catalog(base, credential)
        environment = tmp_path / "environment.json"
        environment.write_text(
            json.dumps(
                {
                    "values": [
                        {"key": "HOST", "value": base},
                        {"key": "access_token", "value": token},
                        {"key": "API_KEY", "value": credential["client_id"]},
                        {"key": "IMS_ORG", "value": credential["org"]},
                        {"key": "OFFER_ACTIVITY_ID", "value": ACTIVITY},
                    ]
                }
            )
        )
        report = tmp_path / "report.json"
        run = subprocess.run(
            [str(NEWMAN), "run", str(COLLECTION), "-e", str(environment)]
            + ["--reporters", "cli,json", "--reporter-json-export", str(report), "--color", "off"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run.returncode == 0, run.stdout[-4000:]
    stats = json.loads(report.read_text())["run"]["stats"]
    assert stats["requests"] == {"total": 4, "pending": 0, "failed": 0}
    assert stats["assertions"]["failed"] == 0
    assert stats["testScripts"]["failed"] == 0  # the container id was chained
