"""Statistics tests lodge declarations with the customs fixtures."""

from tests.customs.conftest import customs_world  # noqa: F401
