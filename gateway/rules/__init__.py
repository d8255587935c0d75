"""Routing and filter rules: which instances leave, with which profile, to which destinations."""
