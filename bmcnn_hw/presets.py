"""Named device presets. Each cites where its numbers come from."""

from __future__ import annotations

from .config import DeviceParams
from .errors import ConfigError

PRESETS: dict[str, tuple[DeviceParams, str]] = {
    "ideal": (
        DeviceParams(r_on_ohm=10e3, r_off_ohm=100e3, v_read_v=0.2),
        "Round numbers (R_on 10 kOhm, R_off/R_on = 10, V_read 0.2 V) typical of HfOx/TaOx "
        "RRAM read conditions; no variation. Not fitted to a specific device.",
    ),
    "hfox-yu2016": (
        DeviceParams(r_on_ohm=10e3, r_off_ohm=100e3, sigma_on_rel=0.1, sigma_off_rel=0.2,
                     distribution="lognormal", v_read_v=0.1),
        "Order-of-magnitude HfOx RRAM figures (on/off ratio ~10, lognormal spread, HRS wider "
        "than LRS) as surveyed in S. Yu, 'Neuro-inspired computing with emerging nonvolatile "
        "memory', Proc. IEEE 106(2), 2018. Rounded, not fitted to one device.",
    ),
    "taox-high-ratio": (
        DeviceParams(r_on_ohm=20e3, r_off_ohm=2e6, sigma_on_rel=0.05, sigma_off_rel=0.3,
                     distribution="lognormal", v_read_v=0.2),
        "A high on/off ratio (~100) device class as used for binary weights in S. Yu et al., "
        "'Binary neural network with 16 Mb RRAM macro chip for classification and online "
        "training', IEDM 2016. Rounded, not fitted to one device.",
    ),
}


def get_preset(name: str) -> DeviceParams:
    """Return the DeviceParams of a named preset.

    Raises:
        ConfigError: for an unknown preset name (the message lists the known ones).
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown device preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
    return PRESETS[name][0]
