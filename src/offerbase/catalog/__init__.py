"""The Offer Library domain: entity kinds, validation, references, ids and JSON Patch.

Pure: no I/O and no web or database framework. The HTTP layer and the store call exactly the
names exported here.
"""

from offerbase.catalog.defaults import DEFAULTS, with_defaults
from offerbase.catalog.errors import (
    CatalogValidationError,
    FieldError,
    PatchError,
    PatchTestFailed,
)
from offerbase.catalog.ids import new_id, snowflake_millis
from offerbase.catalog.kinds import KIND_BY_PATH, KINDS, OFFER_TYPES, Kind
from offerbase.catalog.patch import apply_patch, merge_patch
from offerbase.catalog.references import Reference, references
from offerbase.catalog.validate import METADATA_FIELDS, validate

__all__ = [
    "DEFAULTS",
    "KINDS",
    "KIND_BY_PATH",
    "METADATA_FIELDS",
    "OFFER_TYPES",
    "CatalogValidationError",
    "FieldError",
    "Kind",
    "PatchError",
    "PatchTestFailed",
    "Reference",
    "apply_patch",
    "merge_patch",
    "new_id",
    "references",
    "snowflake_millis",
    "validate",
    "with_defaults",
]
