"""The native surface (`/infra/ai/*`, with `/v1/ai/*` aliases): the `{status, data, meta}` envelope."""
