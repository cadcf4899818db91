"""Pure pieces of the analytics endpoints: SQL and parameters, grids, PNG rendering, shaping.

Nothing here touches a store or a request: the router (`api/routes/analytics.py`) runs the
queries these modules build and hands the rows back to them, so each piece is tested alone.
"""
