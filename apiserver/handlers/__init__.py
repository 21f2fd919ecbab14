"""HTTP handlers: they take the raw Request and answer Response objects (no models in the hot path)."""
