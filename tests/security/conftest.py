"""The API tests' app, client and tenant factory, shared with the security tests."""

from tests.api.conftest import api_settings, app, client, factory

__all__ = ["api_settings", "app", "client", "factory"]
