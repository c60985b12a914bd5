"""Fixtures of the end-to-end vendor flows: the CA the stand-ins' certificates chain to."""

from __future__ import annotations

import pytest
import trustme


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()
