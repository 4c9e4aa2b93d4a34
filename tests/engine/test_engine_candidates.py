"""What a decision can propose before rules and caps: its placements and its candidate offers
(the legacy Decisioning API's activity-to-offers view)."""

from __future__ import annotations

from engine_helpers import catalog, collection, criterion, decision, offer, placement


def test_placements_are_those_the_criteria_name_in_catalog_order() -> None:
    snap = catalog(
        [offer("O1")],
        [decision("D1", [criterion(options=["O1"], placements=["P2"])])],
        placements=[placement("P1"), placement("P2"), placement("P3")],
    )
    assert [p.id for p in snap.placements_of(snap.decisions["D1"])] == ["P2"]


def test_a_criterion_without_placements_covers_every_placement() -> None:
    snap = catalog(
        [offer("O1")],
        [
            decision(
                "D1",
                [criterion(options=["O1"], placements=["P2"]), criterion(options=["O1"])],
            )
        ],
        placements=[placement("P1"), placement("P2")],
    )
    assert [p.id for p in snap.placements_of(snap.decisions["D1"])] == ["P1", "P2"]


def test_candidates_are_approved_offers_with_a_representation_each_once() -> None:
    snap = catalog(
        [
            offer("O1", 5, placements=("P1", "P2")),
            offer("O2", 9, placements=("P2",)),
            offer("DRAFT", status="draft"),
            offer("ELSEWHERE", placements=("P3",)),
            offer("OUTSIDE"),
        ],
        [
            decision(
                "D1",
                [
                    criterion("C1", placements=["P1"]),
                    criterion(options=["O2", "O1", "ELSEWHERE"], placements=["P2"]),
                ],
            )
        ],
        collections=[collection("C1", ["O1", "DRAFT"])],
        placements=[placement("P1"), placement("P2"), placement("P3")],
    )
    # P1 first (catalog order): O1; then P2 adds O2; nothing twice, nothing filtered out.
    assert [o.id for o in snap.candidate_offers(snap.decisions["D1"])] == ["O1", "O2"]
