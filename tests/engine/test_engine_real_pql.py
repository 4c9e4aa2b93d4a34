"""The engine with the real PQL compiler: documented rule and formula shapes end to end."""

from __future__ import annotations

from engine_helpers import (
    catalog,
    collection,
    criterion,
    decision,
    eligible,
    example_3_6,
    formula,
    ids,
    offer,
    rule,
    run,
)

CTX = "_xdm.context.additionalParameters;version=1"


def test_profile_and_context_rules() -> None:
    snap = catalog(
        [
            offer("joe", 9, constraint=eligible("R1")),
            offer("mobile", 5, constraint=eligible("R2")),
            offer("seg", 3, constraint=eligible("R3")),
            offer("base", 0),
        ],
        [decision("D1", [criterion("C1")])],
        collections=[collection("C1", ["joe", "mobile", "seg", "base"])],
        rules=[
            rule("R1", 'person.name.firstName.equals("Joe", false) and loyalty.tier = "gold"'),
            rule(
                "R2",
                f"select contextData from @{{{CTX}}} where !contextData.channel.isNull() "
                'AND contextData.channel!="" AND contextData.channel="mobile"',
            ),
            rule("R3", 'inSegment("s1")'),
        ],
    )
    joe = {"person": {"name": {"firstName": "JOE"}}, "loyalty": {"tier": "gold"}}
    assert ids(run(snap, profile=joe)) == ["joe"]
    assert ids(run(snap, context={CTX: {"channel": "mobile"}})) == ["mobile"]
    assert ids(run(snap, context={CTX: {"channel": "web"}})) == ["base"]
    member = {"segmentMembership": {"ups": {"s1": {"status": "existing"}}}}
    assert ids(run(snap, profile=member)) == ["seg"]


def test_formula_score_and_boosted_parameter() -> None:
    snap = catalog(
        [
            offer("paris", 3, characteristics={"city": "Paris"}),
            offer("rome", 5, characteristics={"city": "Rome"}),
            offer("tagged", 4, tags=("t1",)),
        ],
        [
            decision("D1", [criterion("C1", formula="F1")]),
            decision("D2", [criterion("C1", formula="F2")]),
        ],
        collections=[collection("C1", ["paris", "rome", "tagged"])],
        formulas=[
            formula(
                "F1",
                'if( offer.characteristics.get("city") = homeAddress.city, '
                "offer.rank.priority * 2, offer.rank.priority)",
            ),
            formula(
                "F2",
                "if(offer.rank.priority.isNotNull(), offer.rank.priority, 0) * "
                "if(offer.tags.intersects(boosted.tags), 2, 1)",
                definedOn={
                    "offer": {
                        "schema": {"altId": "_experience.offer-management.personalized-offer"}
                    },
                    "boosted": {"schema": {"altId": "_xdm.context.foo", "version": "0"}},
                },
            ),
        ],
    )
    result = run(snap, [("D1", "P1", 3)], profile={"homeAddress": {"city": "Paris"}})
    assert [(o.id, o.score) for o in result.scopes[0].options] == [
        ("paris", 6),
        ("rome", 5),
        ("tagged", 4),
    ]
    boosted = run(snap, [("D2", "P1")], context={"_xdm.context.foo;version=0": {"tags": ["t1"]}})
    assert [(o.id, o.score) for o in boosted.scopes[0].options] == [("tagged", 8)]


def test_worked_example_section_3_6_with_real_formulas() -> None:
    def by_id(scores: dict[str, int]) -> str:
        expr = "0"
        for oid, score in scores.items():
            expr = f'if(offer._id = "{oid}", {score}, {expr})'
        return expr

    snap = example_3_6(by_id)
    result = run(snap, [("D1", "P1", 6)])
    assert ids(result) == ["O5", "O3", "O4", "O2", "O1", "O6"]
    assert [o.score for o in result.scopes[0].options] == [50, 45, 40, 20, 10, 60]
    # with fewer slots, the second group is not needed
    assert ids(run(snap, [("D1", "P1", 2)])) == ["O5", "O3"]
