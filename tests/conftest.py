"""Shared fixtures: every test starts with fresh auto-names and default settings."""

from __future__ import annotations

import pytest

import polykeras
from polykeras import config


def pytest_collection_modifyitems(config, items):
    """Where the backend this run selects (POLYKERAS_BACKEND) cannot run here, e.g. the cupy
    env on a machine without a GPU, every test is skipped with the backend's reason."""
    selection = config_backend_name()
    name = selection.partition(":")[0]
    info = next((b for b in polykeras.backends() if b.name == name), None)
    reason = None
    if info is not None and not info.usable:  # its probe says it cannot run on this machine
        reason = f"backend {name!r} is not usable here: {info.reason}"
    elif info is not None and selection != name:
        # a device suffix ("torch:cuda"): the backend runs here, but that device may not
        try:
            polykeras.backend.load(selection)
        except polykeras.BackendError as exc:
            if "device" not in str(exc).lower() and "cuda" not in str(exc).lower():
                raise
            reason = f"backend {selection!r} is not usable here: {str(exc).splitlines()[0]}"
    if reason:
        skip = pytest.mark.skip(reason=reason)
        for item in items:
            item.add_marker(skip)
    # any other failure to load the backend is a real error and must show as one


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
