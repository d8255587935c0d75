"""Header de-identification: PS3.15 Annex E, Table E.1-1, as a pipeline stage.

Modules, one concept each: ``table`` (the standard's rows, from data/annex_e.json),
``options`` (option names and CID 7050 codes), ``profiles`` (profile -> tag/action dict),
``engine`` (the walk), ``dummies``, ``uids``, ``dates``, ``descriptors``, ``private``,
``iod_types`` (combined-action resolution), ``pseudonyms`` / ``mapping`` / ``models``
(pseudonym allocation and the encrypted identity table), ``secret``, ``canary`` (leak-test
datasets) and ``stage`` (HeaderStage, the pipeline interface).
"""
