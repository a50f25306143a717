"""The built-in Midjourney-proxy simulator: an aiohttp server speaking the Plus/trueai wire format.

It backs ``mjbot demo``, the tests, the benchmarks and ``mjbot sim``. See reference/mj-api.md §16.

    sim = Simulator(SimConfig(time_scale=0.02))
    base_url = await sim.start()          # http://127.0.0.1:<port>
    ...                                   # point an MjClient at base_url
    sim.faults.fail_next("imagine", 500)  # fault injection
    Simulator(SimConfig(flavour="trueai"))  # one provider's differences (mjsim/flavours.py)
    await sim.stop()
"""

from .app import RecordedRequest, Simulator, serve
from .config import SimConfig
from .faults import RESET, Faults
from .flavours import FLAVOURS, Flavour
from .hooks import HookDelivery
from .state import SimTask

__all__ = [
    "FLAVOURS",
    "RESET",
    "Faults",
    "Flavour",
    "HookDelivery",
    "RecordedRequest",
    "SimConfig",
    "SimTask",
    "Simulator",
    "serve",
]
