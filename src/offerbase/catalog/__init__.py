"""The Offer Library domain: entity kinds, validation, the typed model and its loader,
references, ids and JSON Patch.

Pure: no I/O and no web or database framework. The HTTP layer and the store call exactly the
names exported here.
"""

from offerbase.catalog.domain import (
    NO_CONSTRAINT,
    Catalog,
    Collection,
    Criterion,
    Decision,
    FallbackOffer,
    FrequencyCap,
    Offer,
    Placement,
    ProfileConstraint,
    RankingFormula,
    RankingStrategy,
    Rule,
    Tag,
)
from offerbase.catalog.errors import (
    CatalogValidationError,
    FieldError,
    PatchError,
    PatchTestFailed,
    PatchTooLarge,
)
from offerbase.catalog.ids import new_id, snowflake_millis
from offerbase.catalog.kinds import KIND_BY_PATH, KINDS, OFFER_TYPES, Kind
from offerbase.catalog.load import load, load_catalog
from offerbase.catalog.patch import apply_patch, merge_patch
from offerbase.catalog.references import Reference, references
from offerbase.catalog.validate import METADATA_FIELDS, validate

__all__ = [
    "KINDS",
    "KIND_BY_PATH",
    "METADATA_FIELDS",
    "NO_CONSTRAINT",
    "OFFER_TYPES",
    "Catalog",
    "CatalogValidationError",
    "Collection",
    "Criterion",
    "Decision",
    "FallbackOffer",
    "FieldError",
    "FrequencyCap",
    "Kind",
    "Offer",
    "PatchError",
    "PatchTestFailed",
    "PatchTooLarge",
    "Placement",
    "ProfileConstraint",
    "RankingFormula",
    "RankingStrategy",
    "Reference",
    "Rule",
    "Tag",
    "apply_patch",
    "load",
    "load_catalog",
    "merge_patch",
    "new_id",
    "references",
    "snowflake_millis",
    "validate",
]
