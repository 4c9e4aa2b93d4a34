"""Editor forms built from a catalog kind's body schema (catalog/specs.py), so the editor covers
every field the API accepts and a new field of a spec appears in its editor by itself.

Each form control is named by its field's JSON pointer (`/selectionConstraint/startDate`,
`/criteria/0/placements`): the API's problems name fields by pointer, so an error is shown next
to the control whose pointer is the longest prefix of the error's (`attach_errors`).

A form turns back into a raw body (`parse`) that goes through `Library.create`/`update`, the
API's own path: this module only shapes the request, it validates nothing the catalog checks.
An empty control leaves its field out; an object or a list row with nothing filled in is left
out too. Arrays of objects (representations, their components, caps, criteria, audiences)
are repeated groups with one blank row to add one, and each row has a Position (rows are saved
in that order: a decision's criteria are evaluated in it) and a Remove box; opaque JSON
(`definedOn`, `segmentModel`) is a JSON textarea.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from offerbase.catalog.schema import (
    AnyValue,
    Arr,
    Bool,
    DateTime,
    Enum,
    Int,
    Map,
    Node,
    Obj,
    Str,
    child,
)

MAX_ROWS = 30  # rows of one array of objects a form may send (the guardrails' largest is 30)
MAX_LINES = 500  # lines of a list field (a collection lists up to 500 offers)
# A row's own controls, not fields of the body: their names are the row's pointer with a suffix
# no pointer has (a pointer's tokens are separated by "/").
POSITION = "#position"
REMOVE = "#remove"
# References: a field (its pointer with `*` for each array index) -> the kinds it may name
# (catalog/references.py has the same list for the store's integrity check).
REFERENCES: dict[str, tuple[str, ...]] = {
    "/representations/*/placement": ("placement",),
    "/selectionConstraint/eligibilityRule": ("decision-rule",),
    "/tags": ("tag",),
    "/ids": ("personalized-offer", "tag"),
    "/fallback": ("fallback-offer",),
    "/criteria/*/placements": ("placement",),
    "/criteria/*/rank/order/function": ("ranking-formula",),
    "/criteria/*/profileConstraint/eligibilityRule": ("decision-rule",),
    "/criteria/*/optionSelection/filter": ("collection",),
    "/criteria/*/optionSelection/options": ("personalized-offer",),
}
# Text that is long or code: a textarea.
LONG_TEXT = {"description", "value", "content", "customQuery"}
LABELS = {
    "_id": "Audience id",
    "deliveryURL": "Image or asset URL (deliveryURL)",
    "linkURL": "Link URL (linkURL)",
    "eligibilityRule": "Decision rule",
    "segmentIdentities": "Audiences",
    "profileConstraintType": "Eligibility",
    "selectionConstraint": "Date window and eligibility",
    "profileConstraint": "Eligibility",
    "cappingConstraint": "Caps",
    "frequencyCappingConstraints": "Frequency caps",
    "characteristics": "Characteristics (one name=value a line)",
    "ids": "Offers or collection qualifiers (ids)",
    "tags": "Collection qualifiers (tags)",
    "criteria": "Criteria (evaluated in this order)",
    "optionSelection": "Offers to choose from",
    "filter": "Collection",
    "options": "Offers (a direct list)",
    "function": "Ranking formula",
    "rankingStrategy": "Ranking strategy (AI model id)",
    "orderEvaluationType": "Rank by",
    "fallback": "Fallback offer",
    "value": "PQL",
    "definedOn": "definedOn (JSON)",
    "segmentModel": "segmentModel (JSON)",
}


# What one row of a list of objects is called.
ROW_LABELS = {
    "criteria": "Criterion",
    "representations": "Representation",
    "components": "Component",
    "frequencyCappingConstraints": "Frequency cap",
    "segmentIdentities": "Audience",
}


@dataclass
class Control:
    """One form control: its pointer (also its name), label, widget and what it shows."""

    pointer: str
    label: str
    widget: str  # text, textarea, number, select, lines, pairs, json, ref, refs, check
    value: Any = ""
    choices: list[tuple[str, str]] = field(default_factory=list)
    required: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def dom_id(self) -> str:
        return "f" + re.sub(r"[^A-Za-z0-9_-]", lambda m: f"-{ord(m.group()):x}-", self.pointer)

    @property
    def selected(self) -> set[str]:
        return set(self.value) if isinstance(self.value, list) else {str(self.value)}


@dataclass
class Group:
    """An object of the body, or one row of an array of objects."""

    pointer: str
    label: str
    items: list[Control | Group] = field(default_factory=list)
    repeated: bool = False  # an array of objects: its items are the rows
    adds: str = ""  # a blank row to add one: the name of what it adds (shown folded)
    errors: list[str] = field(default_factory=list)


def label_of(key: str) -> str:
    if key in LABELS:
        return LABELS[key]
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).split()
    text = " ".join(words).lower()
    return text[:1].upper() + text[1:]


def _pattern(pointer: str) -> str:
    return re.sub(r"/\d+(?=/|$)", "/*", pointer)


def _choices(node: Enum, current: Any) -> list[tuple[str, str]]:
    allowed = node.allowed
    if isinstance(current, str) and current and current not in allowed:
        allowed = [current, *allowed]  # a spelling the API accepted: kept as stored
    return [("", "(not set)"), *((value, value) for value in allowed)]


Choices = Mapping[tuple[str, ...], list[tuple[str, str]]]


def _control(key: str, node: Node, pointer: str, value: Any, refs: Choices) -> Control:
    label = label_of(key)
    target = REFERENCES.get(_pattern(pointer))
    if target is not None and isinstance(node, Str | Arr):
        options = list(refs.get(target, []))
        known = {option for option, _ in options}
        wanted = value if isinstance(value, list) else [value] if value else []
        options += [(str(v), f"{v} (not found)") for v in wanted if str(v) not in known]
        if isinstance(node, Arr):
            return Control(pointer, label, "refs", [str(v) for v in wanted], options)
        return Control(pointer, label, "ref", value or "", [("", "(none)"), *options])
    if isinstance(node, Enum):
        return Control(pointer, label, "select", value or "", _choices(node, value))
    if isinstance(node, Bool):
        shown = "" if value is None or value == "" else ("true" if value is True else "false")
        if isinstance(value, str) and value not in ("", "true", "false"):
            shown = value
        return Control(
            pointer, label, "select", shown, [("", "(not set)"), ("true", "yes"), ("false", "no")]
        )
    if isinstance(node, Int):
        return Control(pointer, label, "number", "" if value is None else str(value))
    if isinstance(node, DateTime):
        return Control(pointer, f"{label} (e.g. 2026-01-31T00:00:00Z)", "text", value or "")
    if isinstance(node, Arr) and isinstance(node.items, Str | Enum):
        lines = value if isinstance(value, list) else []
        return Control(pointer, f"{label} (one a line)", "lines", "\n".join(map(str, lines)))
    if isinstance(node, Map) and isinstance(node.values, Str):
        pairs = value if isinstance(value, dict) else {}
        return Control(pointer, label, "pairs", "\n".join(f"{k}={v}" for k, v in pairs.items()))
    if isinstance(node, Str):
        widget = "textarea" if key in LONG_TEXT else "text"
        return Control(pointer, label, widget, value if isinstance(value, str) else "")
    if key == "content":  # the HTML or text itself, or JSON for a json component
        content = value if isinstance(value, str) else "" if value is None else json.dumps(value)
        return Control(pointer, "Content (HTML, text, or JSON)", "textarea", content)
    # Opaque JSON (AnyValue, Map of AnyValue) and whatever has no widget of its own.
    text = "" if value is None or value == "" else json.dumps(value, indent=2)
    return Control(pointer, label if key in LABELS else f"{label} (JSON)", "json", text)


def build(
    spec: Obj, body: Mapping[str, Any], refs: Choices, raw_text: Mapping[str, str] | None = None
) -> Group:
    """The form of `body` (a stored body, or what a refused form sent)."""
    group = _group(spec, body, "", "", refs)
    if raw_text:
        _override(group, raw_text)
    return group


def _group(node: Obj, body: Any, pointer: str, label: str, refs: Choices) -> Group:
    values = body if isinstance(body, Mapping) else {}
    group = Group(pointer, label)
    for key, sub in node.fields.items():
        ptr = child(pointer, key)
        value = values.get(key)
        if isinstance(sub, Obj):
            group.items.append(_group(sub, value, ptr, label_of(key), refs))
        elif isinstance(sub, Arr) and isinstance(sub.items, Obj):
            rows = value if isinstance(value, list) else []
            repeat = Group(ptr, label_of(key), repeated=True)
            limit = min(sub.max_items or MAX_ROWS, MAX_ROWS)
            shown = rows[:limit] + ([{}] if len(rows) < limit else [])
            for index, row in enumerate(shown):
                row_label = ROW_LABELS.get(key, label_of(key))
                title = f"{row_label} {index + 1}" + (" (new)" if index == len(rows) else "")
                row_group = _group(sub.items, row, child(ptr, index), title, refs)
                if index < len(rows):  # a row's place in the list, and a way to drop it
                    row_ptr = child(ptr, index)
                    row_group.items[0:0] = [
                        Control(row_ptr + POSITION, "Position", "number", str(index + 1)),
                        Control(row_ptr + REMOVE, f"Remove {title.lower()}", "check"),
                    ]
                else:
                    row_group.adds = row_label.lower()
                repeat.items.append(row_group)
            group.items.append(repeat)
        else:
            control = _control(key, sub, ptr, value, refs)
            control.required = key in node.required
            group.items.append(control)
    return group


def _override(group: Group, raw_text: Mapping[str, str]) -> None:
    for item in group.items:
        if isinstance(item, Group):
            _override(item, raw_text)
        elif item.pointer in raw_text:
            item.value = raw_text[item.pointer]


def controls(group: Group) -> list[Control]:
    found: list[Control] = []
    for item in group.items:
        found += controls(item) if isinstance(item, Group) else [item]
    return found


def attach_errors(group: Group, errors: list[tuple[str, str]]) -> list[str]:
    """Put each (pointer, message) on the control or group whose pointer is its longest
    prefix; what matches none (the body as a whole) is returned."""
    targets: dict[str, Control | Group] = {}

    def walk(node: Group) -> None:
        targets[node.pointer] = node
        for item in node.items:
            if isinstance(item, Group):
                walk(item)
            else:
                targets[item.pointer] = item

    walk(group)
    left: list[str] = []
    for pointer, message in errors:
        probe = pointer
        while probe and probe not in targets:
            probe = probe.rpartition("/")[0]
        target = targets.get(probe) if probe else None
        if target is None:
            left.append(message)
        else:
            target.errors.append(message)
    return left


# -- form -> body --------------------------------------------------------------------------------


@dataclass
class Parsed:
    body: dict[str, Any]
    errors: list[tuple[str, str]]  # what could not even be read (JSON that does not parse)
    raw_text: dict[str, str]  # the text of those controls, to show it back as typed


def parse(spec: Obj, form: Mapping[str, list[str]]) -> Parsed:
    parsed = Parsed({}, [], {})
    parsed.body = _parse_obj(spec, form, "", parsed)
    return parsed


def _has_under(form: Mapping[str, list[str]], pointer: str) -> bool:
    prefix = pointer + "/"
    return any(
        key.startswith(prefix) and any(v.strip() for v in values) for key, values in form.items()
    )


def _parse_obj(
    node: Obj, form: Mapping[str, list[str]], pointer: str, parsed: Parsed
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, sub in node.fields.items():
        ptr = child(pointer, key)
        if isinstance(sub, Obj):
            value: Any = _parse_obj(sub, form, ptr, parsed)
            if value:
                out[key] = value
        elif isinstance(sub, Arr) and isinstance(sub.items, Obj):
            placed: list[tuple[float, int, dict[str, Any]]] = []
            for index in range(MAX_ROWS):
                row_ptr = child(ptr, index)
                if not _has_under(form, row_ptr) or form.get(row_ptr + REMOVE):
                    continue  # a blank row (or none), or one to remove: left out
                row = _parse_obj(sub.items, form, row_ptr, parsed)
                if row:
                    placed.append((_position(form, row_ptr, index), index, row))
            if placed:
                out[key] = [row for _, _, row in sorted(placed, key=lambda item: item[:2])]
        else:
            values = form.get(ptr)
            if values is None:
                continue
            value = _parse_value(key, sub, ptr, values, parsed)
            if value is not None:
                out[key] = value
    if out.get("type") == "json" and isinstance(out.get("content"), str):
        try:  # a json component's content is JSON when it reads as JSON
            out["content"] = json.loads(out["content"])
        except ValueError:
            pass
    return out


def _position(form: Mapping[str, list[str]], row_ptr: str, index: int) -> float:
    """Where a row goes: its Position field if it is a number, else where it is."""
    text = (form.get(row_ptr + POSITION) or [""])[0].strip()
    return float(text) if re.fullmatch(r"-?\d{1,6}(\.\d{1,6})?", text) else index + 1


def _parse_value(key: str, node: Node, pointer: str, values: list[str], parsed: Parsed) -> Any:
    is_ref_list = REFERENCES.get(_pattern(pointer)) is not None and isinstance(node, Arr)
    if is_ref_list:
        chosen = [v for v in values if v][:MAX_LINES]
        return chosen or None
    text = values[0]
    if isinstance(node, Arr) and isinstance(node.items, Str | Enum):
        lines = [line.strip() for line in text.splitlines() if line.strip()][:MAX_LINES]
        return lines or None
    if isinstance(node, Map) and isinstance(node.values, Str):
        pairs: dict[str, str] = {}
        for line in text.splitlines()[:MAX_LINES]:
            if line.strip():
                name, _, value = line.partition("=")
                pairs[name.strip()] = value.strip()
        return pairs or None
    if isinstance(node, Str) or (key == "content" and isinstance(node, AnyValue)):
        return text if text.strip() else None
    text = text.strip()
    if not text:
        return None
    if isinstance(node, Bool):
        return {"true": True, "false": False}.get(text, text)
    if isinstance(node, Int):
        return int(text) if re.fullmatch(r"-?\d{1,19}", text) else text  # the schema says why
    if isinstance(node, Enum | DateTime):
        return text
    try:
        return json.loads(text)
    except ValueError as exc:
        parsed.errors.append((pointer, f"This is not valid JSON: {exc}."))
        parsed.raw_text[pointer] = text
        return None
