"""The HTTP fixtures of the API tests: the real app and its tenants."""

from tests.api.conftest import admin_auth, alice, bob, client

__all__ = ["admin_auth", "alice", "bob", "client"]
