"""The model catalog: ids, aliases, capabilities, limits and pricing; token counting."""

from tollway.catalog.catalog import Catalog, CatalogModel

__all__ = ["Catalog", "CatalogModel"]
