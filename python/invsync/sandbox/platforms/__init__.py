"""One emulated marketplace per module, each a `SandboxPlatform` (see `base`)."""
