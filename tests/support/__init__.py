"""Helpers shared by the whole suite: fake Hub, CLI runner, oracles and damaged files.

Import them as ``from tests.support.X import ...``; the fixtures in ``hub_fixtures`` and
``diffscan_data`` are loaded for every test by ``tests/conftest.py`` (``pytest_plugins``).
"""
