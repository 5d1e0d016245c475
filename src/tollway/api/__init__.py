"""Wire surfaces: each parses its callers' format into canonical requests and renders answers back."""
