"""What a chunk of imported profiles does to the stored ones, worked out in memory.

The NDJSON import (store/profiles.py) writes a chunk of lines with a few bulk statements instead
of one upsert per line. It reads which profile owns each identity the chunk names (and every
identity of those profiles), then `plan_chunk` replays the lines in order against that map with
exactly the rules of a single PUT: the line is addressed by its first identity; an identity that
belongs to another profile makes the line fail alone; a replace unlinks the identities the new
body drops; the profile keeps its key while that identity stays. Later lines see what earlier
lines of the chunk did, so two lines naming the same person end as they would line by line (the
later one wins). The result is the difference to write: profiles to create, profiles to
replace, identity links to drop and to add. No database here, so the rules are tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Identity = tuple[str, str]  # (normalized namespace, id)


@dataclass(frozen=True)
class ValidLine:
    """A line that passed validation: its body to store and its identities, addressed first."""

    number: int
    body: dict[str, Any]
    identities: list[Identity]


@dataclass
class ChunkPlan:
    # New profiles by placeholder (-1, -2, ... in creation order): (profile_key, body).
    created: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    # Stored profiles by pk: (profile_key, body).
    replaced: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    unlinked: list[Identity] = field(default_factory=list)
    # (identity, owner): an owner below 0 is a placeholder of `created`.
    linked: list[tuple[Identity, int]] = field(default_factory=list)
    imported: int = 0
    conflicts: list[tuple[int, Identity]] = field(default_factory=list)  # (line, identity)


def plan_chunk(
    lines: list[ValidLine], owners: dict[Identity, int], keys: dict[int, str]
) -> ChunkPlan:
    """Replay `lines` in order. `owners` maps every stored identity the lines name, and every
    identity of the profiles that own them, to its profile's pk; `keys` gives those profiles'
    profile_key."""
    plan = ChunkPlan()
    owner_of = dict(owners)
    links: dict[int, set[Identity]] = {}
    for identity, pk in owners.items():
        links.setdefault(pk, set()).add(identity)
    key_of = dict(keys)
    bodies: dict[int, dict[str, Any]] = {}
    placeholder = 0
    for line in lines:
        addressed = line.identities[0]
        own = owner_of.get(addressed)
        clash = next((i for i in line.identities if owner_of.get(i, own) != own), None)
        if clash is not None:
            plan.conflicts.append((line.number, clash))
            continue
        wanted = set(line.identities)
        path_key = f"{addressed[0]}:{addressed[1]}"
        if own is None:
            placeholder -= 1
            own = placeholder
            key_of[own] = path_key
        else:
            key_ns, _, key_id = key_of[own].partition(":")
            if (key_ns, key_id) not in wanted:
                key_of[own] = path_key
        for gone in links.get(own, set()) - wanted:
            del owner_of[gone]
        for identity in line.identities:
            owner_of[identity] = own
        links[own] = wanted
        bodies[own] = line.body
        plan.imported += 1
    for pk, body in bodies.items():
        (plan.created if pk < 0 else plan.replaced)[pk] = (key_of[pk], body)
    for identity, before in owners.items():
        if owner_of.get(identity) != before:
            plan.unlinked.append(identity)
    for identity, after in owner_of.items():
        if owners.get(identity) != after:
            plan.linked.append((identity, after))
    return plan
