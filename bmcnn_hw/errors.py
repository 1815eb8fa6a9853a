"""Errors that reach the user as one clear line (the CLI prints them without a traceback)."""


class BmcnnError(Exception):
    """Base class of every user-facing error of bmcnn-hw."""


class ConfigError(BmcnnError):
    """A configuration value or file is invalid (names the field and what is expected)."""


class DataError(BmcnnError):
    """A data file is missing, truncated, malformed or fails its checksum."""


class ArtefactError(BmcnnError):
    """A checkpoint or CompiledModel on disk is missing, corrupt or of another schema."""


class NetlistError(BmcnnError):
    """A netlist cannot be written or is malformed."""


class SimulationError(BmcnnError):
    """A simulator (ngspice, Icarus, Verilator) failed or did not converge."""


class ToolNotFound(BmcnnError):
    """An external tool is not installed; the message gives the install command."""


class MismatchError(BmcnnError):
    """Two back ends disagree; the message names image, layer, tile, column and both values."""
