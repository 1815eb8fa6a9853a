"""SPICE back end: netlist writer, ngspice runner (the only module that calls ngspice)."""
