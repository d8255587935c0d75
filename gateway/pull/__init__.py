"""Pull mode: query a PACS for a coordinator's list (C-FIND, study root) and have it send the
studies to the gateway (C-MOVE to the gateway's own AE, or C-GET), resumably."""
