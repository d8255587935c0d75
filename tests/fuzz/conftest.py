"""The real gateway process of the integration tests, for the network-path fuzzing."""

from tests.integration.conftest import gateway_factory  # noqa: F401 - a fixture, used by name
