"""Every feature, defined once: the vocabulary (terms.py), the list in column order (groups.py), their
columns for one catalog and settings (resolve.py) and docs/features.md's tables (docs.py)."""

from engine.features.definitions.groups import GROUPS
from engine.features.definitions.resolve import Catalog, Resolved, UnknownFeatures, resolve

__all__ = ["GROUPS", "Catalog", "Resolved", "UnknownFeatures", "resolve"]
