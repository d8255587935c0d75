"""Each association gets its own list of the accepted contexts, without copying the contexts."""

import copy

from gateway.ingest.config import IngestConfig
from gateway.ingest.scp import SharedContexts, build_ae


def test_an_association_gets_a_list_of_its_own_over_the_same_contexts():
    shared = SharedContexts(build_ae(IngestConfig()).supported_contexts)

    own = copy.deepcopy(shared)  # what pynetdicom does for every association it accepts
    own.append("widened for this association only")

    assert own is not shared and len(shared) == len(own) - 1
    assert all(a is b for a, b in zip(own, shared))
