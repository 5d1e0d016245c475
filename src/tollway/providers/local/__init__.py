"""The offline provider's engines: models shipped inside installed packages, run on the CPU.

Importing this package (or any engine module) is cheap and needs none of the model packages;
engines import them in ``load()``. ``catalog`` lists the models, ``pool`` runs engines off the event
loop. ``provider.py`` adapts them to Tollway's provider protocol.
"""

from __future__ import annotations

from tollway.providers.local.errors import (
    LocalMediaUnsupported,
    LocalModelUnavailable,
    LocalModelUnsupported,
)

__all__ = ["LocalMediaUnsupported", "LocalModelUnavailable", "LocalModelUnsupported"]
