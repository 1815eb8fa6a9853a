"""Typed options of every ``bmcnn-hw`` command (one dataclass per command), the one declaration the
command line, flow files and Python callers share."""

from .commands import (
    COMMANDS,
    FLOW_COMMANDS,
    Command,
    CompileOptions,
    CosimOptions,
    DataFetchOptions,
    DemoOptions,
    EvaluateOptions,
    ExploreOptions,
    ExportOptions,
    FlowRunOptions,
    ImportOptions,
    LifetimeOptions,
    ModelsOptions,
    PdkFetchOptions,
    PpaCommandOptions,
    RegressOptions,
    RtlOptions,
    RtlRegressOptions,
    SpiceOptions,
    SweepOptions,
    TrainOptions,
    TuneOptions,
    command_named,
)

__all__ = ["COMMANDS", "FLOW_COMMANDS", "Command", "CompileOptions", "CosimOptions", "DataFetchOptions", "DemoOptions",
           "EvaluateOptions", "ExploreOptions", "ExportOptions", "FlowRunOptions", "ImportOptions", "LifetimeOptions",
           "ModelsOptions", "PdkFetchOptions", "PpaCommandOptions", "RegressOptions", "RtlOptions",
           "RtlRegressOptions", "SpiceOptions", "SweepOptions", "TrainOptions", "TuneOptions", "command_named"]
