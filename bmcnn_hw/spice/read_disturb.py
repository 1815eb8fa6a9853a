"""Read-disturb check with the dynamic VTEAM device model: does a read move the state?"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .netlist import spice_models_dir
from .ngspice import NgSpice


def read_disturb(v_read_v: float, duration_s: float, x0: float = 0.0, steps: int = 200) -> dict[str, float]:
    """Hold one VTEAM device (``spice_models/vteam.lib``) at ``v_read_v`` for ``duration_s``.

    Returns the initial and final state (0 = ON, 1 = OFF) and their difference; a read is
    non-disturbing when the difference is ~0, i.e. |V_read| stays inside the thresholds.
    """
    lib = (spice_models_dir() / "vteam.lib").resolve()
    with tempfile.TemporaryDirectory() as tmp:
        netlist = Path(tmp) / "read_disturb.cir"
        netlist.write_text("\n".join([
            "* bmcnn-hw read-disturb check: one VTEAM device held at the read voltage",
            f".include {lib}",
            f"Vr p 0 DC {float(v_read_v)!r}",
            f"X1 p 0 vteam x0={float(x0)!r}",
            ".end",
        ]) + "\n")
        ng = NgSpice.get()
        ng.load(netlist)
        ng.command("destroy all", str(netlist))
        ng.command(f"tran {duration_s / steps!r} {float(duration_s)!r} uic", str(netlist))
        final = ng.value("x1.x")
        ng.unload()
    return {"v_read_v": v_read_v, "duration_s": duration_s, "state_initial": x0, "state_final": final,
            "delta_state": final - x0}
