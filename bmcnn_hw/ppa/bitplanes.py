"""Several input bit planes in one read, priced against bit-serial reads from a measured PPA report.

A layer with B-bit inputs is read once per bit plane today: B reads, B conversions and B codes
per output position. Reading k planes at once (plane p of the group weighted 2^p, e.g. by pulse
width within one integration) divides reads, conversions and codes by k but widens what one
conversion must resolve: a column of p +1 and n -1 weights spans [-n (2^k - 1), p (2^k - 1)],
and a SAR conversion costs FoM x 2^bits, whatever weights the planes. Two ways to weight them:

- ``pulse``: plane p drives its rows for 2^p unit read times within one integration, so rows and
  TIAs are on for 2^k - 1 units per group instead of k: drive, TIA output and TIA bias energy
  grow by (2^k - 1) / k. Exact for any cell.
- ``amplitude``: plane p drives 2^p / (2^k - 1) of V_read (a DAC per row) for one unit read
  time: the analog energy of a read is at most a bit-serial read's, so it is taken as 1 / k of
  bit-serial (an upper bound; the row DACs are not counted). Exact only for linear cells: a sinh
  or 1T1R cell's current is not proportional to its voltage.

Digital energy per code is taken as measured at k = 1 (a lower bound: wider codes add wider sums).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..artefact import CompiledLayer
from ..compile.tile import signed_width, weight_code_range
from .cost_model import CostModel

SURVEY_MAX_ENOB = 10
"""Largest ENOB of the ADC survey designs the cost model's FoM comes from (cost_model.toml)."""


@dataclass(frozen=True)
class PlaneGroup:
    """One choice of planes per read for a layer, priced per inference (J)."""

    planes_per_read: int
    scheme: str
    """``pulse`` or ``amplitude`` weighting of the planes of one read."""
    reads: int
    adc_bits: int
    conversions: int
    adc_j: float
    analog_j: float
    """Row drivers, TIA output current and TIA bias."""
    digital_j: float

    @property
    def total_j(self) -> float:
        """Energy per inference of the layer."""
        return self.adc_j + self.analog_j + self.digital_j

    @property
    def beyond_survey(self) -> bool:
        """The ADC needs more bits than any survey design the FoM is a median of."""
        return self.adc_bits > SURVEY_MAX_ENOB


def plane_groups(layer: CompiledLayer, report_layer: dict[str, Any], cost: CostModel) -> list[PlaneGroup]:
    """Every k dividing the layer's input bits, priced from ``report_layer`` (one layer of a
    ``ppa.json``, measured bit-serially) and the cost model's ADC.

    Raises:
        ValueError: the layer has binary inputs or no tiling.
    """
    if layer.input_bits < 2 or layer.tiling is None:
        raise ValueError(f"layer {layer.name} has no multi-bit crossbar inputs")
    lo, hi = weight_code_range(layer.weight, layer.tiling.tile_rows, layer.bipolar)
    schedule, energy = report_layer["schedule"], report_layer["energy_j"]
    analog = energy["array_drivers"] + energy["tia_output"] + energy["tia_bias"]
    groups = []
    for k in (k for k in range(1, layer.input_bits + 1) if layer.input_bits % k == 0):
        scale = 2 ** k - 1
        bits = signed_width(lo * scale, hi * scale)
        conversions = schedule["conversions"] // k
        adc_j = conversions * cost.adc.energy_per_conversion_j(bits)
        for scheme, analog_j in (("pulse", analog * scale / k), ("amplitude", analog / k)):
            if k > 1 or scheme == "pulse":
                groups.append(PlaneGroup(k, scheme if k > 1 else "bit-serial", schedule["reads"] // k, bits,
                                         conversions, adc_j, analog_j, energy["digital"] / k))
    return groups


def plane_group_table(groups: list[PlaneGroup]) -> str:
    """Markdown table of ``groups``, with each total relative to bit-serial (k = 1)."""
    serial = groups[0].total_j
    lines = ["| planes per read | weighting | reads | ADC bits | conversions | ADC | drive + TIA | digital | total "
             "| vs bit-serial |", "|---|---|---|---|---|---|---|---|---|---|"]
    for g in groups:
        bits = f"{g.adc_bits}{' (beyond the survey)' if g.beyond_survey else ''}"
        lines.append(f"| {g.planes_per_read} | {g.scheme} | {g.reads:,} | {bits} | {g.conversions:,} | "
                     f"{_nj(g.adc_j)} | {_nj(g.analog_j)} | {_nj(g.digital_j)} | {_nj(g.total_j)} | "
                     f"{g.total_j / serial:.2f}x |")
    return "\n".join(lines)


def _nj(joules: float) -> str:
    return f"{joules * 1e9:,.0f} nJ"
