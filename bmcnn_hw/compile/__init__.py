"""The compiler: named passes ``pass(model, cfg) -> model`` over one CompiledModel."""

from .pipeline import PASSES, compile_checkpoint

__all__ = ["PASSES", "compile_checkpoint"]
