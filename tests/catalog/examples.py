"""Request bodies copied from Adobe's DPS pages (Adobe's Offer Library API), used as fixtures."""

from __future__ import annotations

import copy
from typing import Any

PERSONALIZED_OFFER: dict[str, Any] = {
    "name": "Test personalized offer with frequency constraint",
    "status": "draft",
    "representations": [
        {
            "channel": "https://ns.adobe.com/xdm/channel-types/web",
            "placement": "offerPlacement1234",
            "components": [
                {
                    "type": "html",
                    "format": "text/html",
                    "language": ["en-us"],
                    "content": "Hello You qualify for our Discount of 60%",
                }
            ],
        }
    ],
    "selectionConstraint": {
        "startDate": "2022-07-27T05:00:00.000+00:00",
        "endDate": "2023-07-29T05:00:00.000+00:00",
        "profileConstraintType": "none",
    },
    "rank": {"priority": 0},
    "cappingConstraint": {},
    "frequencyCappingConstraints": [
        {
            "enabled": False,
            "limit": 1,
            "startDate": "2023-05-15T14:25:49.622+00:00",
            "endDate": "2023-05-25T14:25:49.622+00:00",
            "scope": "global",
            "entity": "offer",
            "repeat": {"enabled": False, "unit": "month", "unitCount": 1},
        }
    ],
}

FALLBACK_OFFER: dict[str, Any] = {
    "name": "Test Fallback Offer DPS",
    "description": "Fallback Offer description",
    "status": "approved",
    "selectionConstraint": {
        "startDate": "2022-06-10T00:30:00.000+00:00",
        "endDate": "2032-06-06T23:29:21.402+00:00",
        "profileConstraintType": "none",
    },
    "representations": [
        {
            "components": [
                {"deliveryURL": "https://mysite.com", "type": "imagelink", "format": "image/png"}
            ],
            "channel": "https://ns.adobe.com/xdm/channel-types/web",
            "placement": "offerPlacement1234",
        }
    ],
    "rank": {"priority": 1},
}

FALLBACK_OFFER_EMAIL: dict[str, Any] = {
    "name": "Email fallback",
    "status": "approved",
    "representations": [
        {
            "channel": "https://ns.adobe.com/xdm/channel-types/email",
            "placement": "offerPlacement5678",
            "components": [
                {
                    "type": "component-text",
                    "format": "text/template",
                    "content": "Get free shipping!",
                }
            ],
        }
    ],
    "labels": ["core/C1"],
}

PLACEMENT: dict[str, Any] = {
    "name": "New placement",
    "description": "Placement description",
    "componentType": "html",
    "channel": "https://ns.adobe.com/xdm/channel-types/email",
    "itemCount": 1,
    "allowDuplicatePlacements": False,
    "returnContent": True,
    "returnMetaData": {
        "decisionName": False,
        "offerName": False,
        "offerAttributes": False,
        "offerPriority": False,
        "placementName": False,
        "channelType": False,
        "contentType": False,
    },
}

COLLECTION_TAGS: dict[str, Any] = {
    "name": "Test Collection with tags",
    "filterType": "any-tags",
    "ids": ["tag1234"],
    "labels": ["core/C5", "custom/myLabel"],
}

COLLECTION_OFFERS: dict[str, Any] = {
    "name": "Static collection",
    "filterType": "offers",
    "ids": ["personalizedOffer1234", "personalizedOffer5678"],
}

TAG: dict[str, Any] = {"name": "Black Friday", "description": "Tag for black friday"}

DECISION_RULE: dict[str, Any] = {
    "name": "Sales rule",
    "description": "Decisioning rule for sales",
    "condition": {
        "type": "PQL",
        "format": "pql/text",
        "value": 'profile.person.name.firstName.equals("Joe", false)',
    },
    "definedOn": {
        "profile": {
            "schema": {"ref": "https://ns.adobe.com/xdm/context/profile_union", "version": "1"},
            "referencePaths": ["person.name.firstName"],
        }
    },
}

RANKING_FORMULA: dict[str, Any] = {
    "name": "Test Ranking Function DPS",
    "description": "Ranking  function description",
    "exdFunction": True,
    "returnType": {"type": "integer"},
    "expression": {
        "type": "PQL",
        "format": "pql/text",
        "value": "if(offer.rank.priority.isNotNull(), offer.rank.priority, 0)"
        " * if(offer.tags.intersects(boosted.tags), 2, 1)",
    },
    "definedOn": {
        "offer": {
            "schema": {"altId": "_experience.offer-management.personalized-offer", "version": "0"}
        },
        "boosted": {"schema": {"altId": "_xdm.context.foo", "version": "0"}},
    },
}

DECISION: dict[str, Any] = {
    "name": "Test Offer Decision",
    "description": "Offer Decision description",
    "status": "live",
    "startDate": "2021-08-23T07:00:00.000+00:00",
    "endDate": "2021-08-25T07:00:00.000+00:00",
    "fallback": "fallbackOffer1234",
    "criteria": [
        {
            "placements": ["offerPlacement1234", "offerPlacement5678"],
            "rank": {
                "priority": 0,
                "order": {
                    "orderEvaluationType": "ranking-strategy",
                    "rankingStrategy": "123456789123",
                },
            },
            "profileConstraint": {"profileConstraintType": "none"},
            "optionSelection": {"filter": "offerCollection1234"},
        }
    ],
}


def fresh(body: dict[str, Any]) -> dict[str, Any]:
    """A deep copy, so a test can modify an example freely."""
    return copy.deepcopy(body)


# Offerbase's own collection (Adobe keeps AI models in its UI): every field set.
RANKING_STRATEGY: dict[str, Any] = {
    "name": "Homepage hero by audience",
    "description": "Clicks per display, per loyalty audience and device",
    "type": "personalized-optimization",
    "optimizationGoal": {"eventType": "interact"},
    "holdoutPercentage": 10,
    "features": {
        "audiences": ["gold-members"],
        "profilePaths": ["/person/gender"],
        "contextPaths": ["/_xdm.context.device;version=1/type"],
    },
    "labels": ["core/C1"],
}
