"""Fixtures of the recipe tests: the runner tests' private crmbridge home, connection store
and state store."""

from tests.runner.conftest import home, state, store

__all__ = ["home", "state", "store"]
