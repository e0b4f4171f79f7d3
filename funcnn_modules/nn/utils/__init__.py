"""``funcnn_modules.nn.utils``: gradient clipping (written in ``clip_grad.py``)."""

from funcnn_modules.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_

__all__ = ["clip_grad_norm_", "clip_grad_value_"]
