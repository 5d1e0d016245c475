"""The OpenAI-compatible surface (`/v1/*`): thin routes that validate what the gateway must know and
hand the rest through untouched."""
