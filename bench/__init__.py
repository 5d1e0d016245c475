"""Tollway's performance harness: `python -m bench --help`. See docs/performance.md."""
