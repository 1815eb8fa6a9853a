"""Flow files: one command and its options in TOML, read straight into the command's options class.

A flow file names one command and its options::

    [flow]
    command = "compile"                 # one of FLOW_COMMANDS (compile, cosim, sweep, lifetime, ...)
    args = ["runs/demo/checkpoint"]     # positional arguments
    [options]                           # options by field name (chip_seed) or spelling (chip-seed)
    tile = "128x128"
    sigmas = [0.0, 0.1]                 # a list where the command line takes a comma-separated list

``bmcnn-hw flow run FILE`` checks every key and value against the command's options dataclass
(the same types, choices and ranges as its command line) and runs the command with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from ..io_utils import read_toml
from ..tables import check_table
from .commands import FLOW_COMMANDS, command_named
from .fields import from_table


def load_flow(path: Path) -> tuple[str, Any]:
    """The command a flow file names and its options (an instance of the command's options class).

    Raises:
        ConfigError: bad TOML, an unknown command, or an option the command does not have or with a
            value of the wrong type or range, each naming the file and the table.
    """
    data = check_table(read_toml(path), {"flow": dict, "options": dict}, str(path), required=("flow",))
    schema = {"command": Literal.__getitem__(FLOW_COMMANDS), "args": list[str | float]}
    flow = check_table(data["flow"], schema, f"{path}: [flow]", required=("command",))
    command = command_named(flow["command"])
    options: Any = from_table(command.options, flow.get("args", []), data.get("options", {}), f"{path}: [options]",
                         f"{path}: [flow] args")
    return command.name, options
