"""Run Triton kernels in Triton's CPU interpreter where there is no GPU, so CI checks the
GPU kernels' logic. Must run before anything imports triton: the flag is read at import."""

from __future__ import annotations

import os


def enable() -> None:
    os.environ.setdefault("TRITON_INTERPRET", "1")
    try:
        import triton.runtime.interpreter as interp
    except ImportError:
        return
    # The interpreter turns a loaded scalar (a 1-element array) into a loop bound with
    # int(array), which numpy >= 2.4 refuses for arrays of one dimension: take the element.
    patch_tensor = interp._patch_lang_tensor
    if getattr(patch_tensor, "_scalar_index_fix", False):
        return

    def _patch_lang_tensor(tensor, scope):
        patch_tensor(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    _patch_lang_tensor._scalar_index_fix = True
    interp._patch_lang_tensor = _patch_lang_tensor
