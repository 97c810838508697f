"""Query API: ask the local store, OpenObserve or Phoenix the same questions (traces, metrics, logs)."""
