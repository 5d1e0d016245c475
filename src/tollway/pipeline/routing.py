"""Model name -> the catalog model that serves it, after checking the key may use it."""

from __future__ import annotations

from tollway.catalog import Catalog, CatalogModel
from tollway.pipeline.auth import require_model
from tollway.pipeline.call import Call


def route(catalog: Catalog, call: Call, model_name: str) -> CatalogModel:
    call.model_requested = model_name
    model = catalog.resolve(model_name, call.operation)
    require_model(call.principal, model.id, model_name)
    call.served_by(model.target())
    return model
