import pytest
import trustme

from gateway.channels import VENDORS
from gateway.clock import ManualClock

from .envs import vendor_env


@pytest.mark.parametrize("vendor", VENDORS)
async def test_accepted(vendor: str, wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env(vendor, wall, ca) as env:
        result = await env.send()
        assert result.code == 2, result
