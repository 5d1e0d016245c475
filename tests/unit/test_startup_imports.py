"""An embedded gateway starts without loading redis-py (its import is ~0.1-0.2 s of start-up)."""

from __future__ import annotations

import subprocess
import sys

SERVER_MODULES = "tollway.cli, tollway.server, tollway.app, tollway.services, tollway.api.routes"


def test_embedded_start_up_does_not_import_redis() -> None:
    listing = "print(sorted(m for m in sys.modules if m.split('.')[0] == 'redis'))"
    code = f"import sys, {SERVER_MODULES}; {listing}"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
