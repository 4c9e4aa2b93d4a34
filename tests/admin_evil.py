"""A catalog with markup in every free-text field of every kind, for the admin UI's escaping
tests (tests/api/test_admin_editors.py over HTTP, tests/browser/test_admin_ui_browser.py in
Chromium). Each value would run a script or raise a dialog if a page rendered it unescaped.

Fields with a pattern (media types) or an enum cannot hold markup, and references hold ids;
every other string does, keys of maps included. `evil_body(kind, ids)` takes the ids of the
kinds before it in ORDER.
"""

from __future__ import annotations

from typing import Any

EVIL = '<script>window.owned="script"</script><img src=x onerror="window.owned=\'img\'">'
# Where a value is PQL or a URI: markup without spaces or double quotes.
EVIL_WORD = "<script>window.owned=1</script>"
WEB = "https://ns.adobe.com/xdm/channel-types/web"
ORDER = (
    "placement",
    "tag",
    "decision-rule",
    "ranking-formula",
    "personalized-offer",
    "fallback-offer",
    "collection",
    "decision",
)


def _common() -> dict[str, Any]:
    return {"name": f"Evil {EVIL}", "description": EVIL, "labels": [EVIL]}


def _offer(ids: dict[str, str], personalized: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        **_common(),
        "status": "draft",
        "characteristics": {"note": EVIL, EVIL[:40]: EVIL},
        "representations": [
            {
                "channel": f"https://x.example/{EVIL_WORD}",
                "placement": ids["placement"],
                "components": [
                    {
                        "type": "html",
                        "format": "text/html",
                        "language": [EVIL],
                        "content": EVIL,
                        "linkURL": f"javascript:{EVIL_WORD}",
                        "name": EVIL,
                    },
                    {
                        "type": "imagelink",
                        "format": "image/png",
                        "deliveryURL": f"javascript:{EVIL_WORD}",
                        "linkURL": EVIL,
                    },
                    {"type": "component-text", "format": "text/plain", "content": EVIL},
                    {"type": "json", "format": "application/json", "content": {"x": EVIL}},
                ],
            }
        ],
        "selectionConstraint": {
            "description": EVIL,
            "profileConstraintType": "anySegments",
            "segmentIdentities": [{"_id": EVIL, "namespace": {"code": EVIL}, "xid": EVIL}],
        },
        "rank": {"priority": 1},
    }
    if personalized:
        body["tags"] = [ids["tag"]]
        body["frequencyCappingConstraints"] = [
            {
                "limit": 1,
                "scope": "profile",
                "entity": "offer",
                "events": ["custom"],
                "customQuery": f'xEvent.eventType = "{EVIL_WORD}"',
                "placement": EVIL,
            }
        ]
    return body


def evil_body(kind: str, ids: dict[str, str]) -> dict[str, Any]:
    if kind == "placement":
        return {
            **_common(),
            "channel": f"https://x.example/{EVIL_WORD}",
            "componentType": "html",
        }
    if kind == "tag":
        return {"name": f"Evil {EVIL}", "description": EVIL}
    if kind == "decision-rule":
        return {
            **_common(),
            "condition": {"value": f'profile.person.note = "{EVIL_WORD}"'},
            "segmentModel": {"note": EVIL},
        }
    if kind == "ranking-formula":
        return {**_common(), "expression": {"value": "offer.rank.priority + 1"}}
    if kind in ("personalized-offer", "fallback-offer"):
        return _offer(ids, kind == "personalized-offer")
    if kind == "collection":
        return {**_common(), "filterType": "any-tags", "ids": [ids["tag"]]}
    if kind == "decision":
        return {
            **_common(),
            "status": "draft",
            "fallback": ids["fallback-offer"],
            "criteria": [
                {
                    "placements": [ids["placement"]],
                    "optionSelection": {"filter": ids["collection"]},
                    "profileConstraint": {"description": EVIL},
                }
            ],
        }
    raise ValueError(kind)
