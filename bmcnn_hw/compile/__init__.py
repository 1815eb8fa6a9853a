"""The compiler: named passes ``model = run(model, ctx)`` over one CompiledModel (:mod:`.pipeline`)."""

from .pipeline import IMPORTED_PASSES, PASSES, CompilerPass, compile_checkpoint, run_passes
from .to_crossbar import PassContext, empty_model

__all__ = ["IMPORTED_PASSES", "PASSES", "CompilerPass", "PassContext", "compile_checkpoint", "empty_model",
           "run_passes"]
