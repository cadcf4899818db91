"""Temporal plumbing: namespace config, its idempotent application, the dev server, the client.

Kept import-light on purpose: workflow code imports `polyvision.temporal.search_attributes`, and
the workflow sandbox re-imports whatever this package pulls in.
"""
