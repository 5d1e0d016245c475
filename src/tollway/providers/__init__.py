"""Providers: one module per upstream behind the small `Provider` base class in `base.py`."""
