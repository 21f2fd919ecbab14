"""Per-resource behaviour over storage: strategies, graceful deletion, namespace lifecycle."""
