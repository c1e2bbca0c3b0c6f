"""`rapport report`: loyalty and journey metrics (SPEC §10, docs/metrics.md), each an aggregate
the database computes over the store's tables; intervals and tests on the counts in `stats`.

The queries read the store's tables directly (`store.models`): a report is a few GROUP BYs over
millions of rows, which the store's record-at-a-time methods are not built for.
"""
