"""DICOM de-identification gateway.

Data flows through the sub-packages in this order: ``ingest`` (C-STORE SCP, durable spool),
``queue`` (state, stability, jobs), ``pipeline`` (the stage interface and the worker),
``pixels`` and ``deid`` (the stages), ``egress`` (C-STORE SCU with retries) and ``audit``.
"""

__version__ = "0.1.0"
