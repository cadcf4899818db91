"""Ingest: upload sessions for a recording pair (the edge agent's upload protocol).

`parts` and `session` are pure (part arithmetic, keys, titles, the session body); `verify` hashes
assembled objects; `principal` resolves the device or user behind a request; `service` runs the
protocol against the metadata store, the object store and Temporal for `api.routes.uploads`.
"""
