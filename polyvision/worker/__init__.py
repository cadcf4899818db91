"""Worker bootstrap: detect capabilities, plan task queues, run one Temporal worker per queue.

Entry points: `polyvision.worker.run.serve` (what `polyvision worker` calls) and
``python -m polyvision.worker``. This module stays empty on purpose: activity modules import
`polyvision.worker.capabilities`, and importing the runner here would import them back.
"""
