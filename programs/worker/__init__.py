"""Worker bootstrap: detect capabilities, plan task queues, run one Temporal worker per queue.

Entry points: `programs.worker.run.serve` (what `polyvision worker` calls) and
``python -m programs.worker``. This module stays empty on purpose: activity modules import
`polyvision.capabilities`, and importing the runner here would import them back.
"""
