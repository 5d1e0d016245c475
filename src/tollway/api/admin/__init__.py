"""The control plane over HTTP (`/admin/*`), guarded by TOLLWAY_ADMIN_KEY or a key with the admin scope."""
