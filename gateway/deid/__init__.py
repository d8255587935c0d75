"""Header de-identification: PS3.15 Annex E, Table E.1-1, as a pipeline stage.

Modules, one concept each: ``table`` (the standard's rows, from data/annex_e.json),
``options`` (option names and CID 7050 codes), ``profiles`` (profile -> tag/action dict),
``engine`` (the walk), ``dummies``, ``uids``, ``dates``, ``descriptors``, ``private``,
``iod_types`` (combined-action resolution), ``method`` (what the output declares of its
de-identification), ``hashes`` / ``pseudonyms`` / ``mapping`` / ``tables``
(pseudonym allocation and the encrypted identity table) and ``stage`` (HeaderStage, the
pipeline interface). The key behind every keyed hash is :mod:`gateway.keys`.
"""
