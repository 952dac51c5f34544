"""Shared fixtures: the CybORG reference, required in CI and skipped (with the reason) elsewhere."""

from __future__ import annotations

import os

import pytest

from jaxcage.reference.cyborg_env import ReferenceNotInstalled, load_backend


@pytest.fixture(scope="session")
def cyborg() -> None:
    """Skip (or, with JAXCAGE_REQUIRE_CYBORG=1, fail) when the reference is not installed."""
    try:
        load_backend("auto")
    except ReferenceNotInstalled as err:
        if os.environ.get("JAXCAGE_REQUIRE_CYBORG") == "1":
            pytest.fail(str(err))
        pytest.skip(f"CybORG reference not installed: {err}")
