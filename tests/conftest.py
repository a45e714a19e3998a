"""Shared fixtures: every test starts with fresh auto-names and default settings."""

from __future__ import annotations

import pytest

import polykeras
from polykeras import config


def pytest_collection_modifyitems(config, items):
    """Where the backend this run selects (POLYKERAS_BACKEND) cannot run here, e.g. the cupy
    env on a machine without a GPU, every test is skipped with the backend's reason."""
    try:
        polykeras.backend.current()
    except (polykeras.BackendError, polykeras.ConfigError) as exc:
        name = config_backend_name()
        reason = next((b.reason for b in polykeras.backends() if b.name == name), str(exc))
        skip = pytest.mark.skip(reason=f"backend {name!r} is not usable here: {reason}")
        for item in items:
            item.add_marker(skip)


def config_backend_name() -> str:
    try:
        return config.requested_backend()[0]
    except polykeras.ConfigError:
        return "?"


@pytest.fixture(autouse=True)
def _fresh_session():
    polykeras.backend.clear_session()
    saved = dict(config._api)
    yield
    config._api.clear()
    config._api.update(saved)


@pytest.fixture
def channels_first():
    config.set_image_data_format("channels_first")
    yield
    config.set_image_data_format("channels_last")


def backend_name() -> str:
    return polykeras.backend.current().name
