"""Shared fixtures: every test starts with fresh auto-names and default settings."""

from __future__ import annotations

import pytest

import polykeras
from polykeras import config


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
