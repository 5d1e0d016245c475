"""``python -m tollway.simulators <kind> ...``: run a simulator from the command line."""

from __future__ import annotations

from tollway.simulators.runner import main

raise SystemExit(main())
