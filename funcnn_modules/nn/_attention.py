"""``MultiheadAttention``: PyTorch's parameters and masks over ``funcnn.nn.multi_head_attention``."""

from __future__ import annotations

from typing import Any

from funcnn_modules import _fnn, _random
from funcnn_modules.nn._common import float_dtype, set_params
from funcnn_modules.nn._linear import NonDynamicallyQuantizableLinear
from funcnn_modules.nn._module import Module
from funcnn_modules.tensor import Tensor, as_array, unwrap, wrap

__all__ = ["MultiheadAttention"]


def _mask(mask: Any, like: Tensor) -> Any:
    """A mask's data; float masks cast to the query's dtype, as PyTorch does."""
    if mask is None:
        return None
    if isinstance(mask, Tensor) and mask.is_floating_point():
        if mask.dtype != like.dtype:
            mask = mask.to(like.dtype)
        return unwrap(mask)
    return as_array(mask)


class MultiheadAttention(Module):
    """Multi-head attention (``torch.nn.MultiheadAttention``): parameters ``in_proj_weight``
    (3E, E) (or ``q/k/v_proj_weight`` when ``kdim``/``vdim`` differ), ``in_proj_bias`` (3E,),
    ``out_proj`` (a Linear), optional ``bias_k``/``bias_v`` (1, 1, E).

    See also: ``funcnn.nn.multi_head_attention``.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                "embed_dim and num_heads must be greater than 0, "
                f"got embed_dim={embed_dim} and num_heads={num_heads} instead"
            )
        if embed_dim % num_heads:
            raise AssertionError("embed_dim must be divisible by num_heads")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        self.add_zero_attn = add_zero_attn
        self._factory = (device, float_dtype(dtype))
        self._bias = bias
        self._add_bias_kv = add_bias_kv
        params = self._init_params()
        names = (
            ["in_proj_weight"]
            if self._qkv_same_embed_dim
            else ["q_proj_weight", "k_proj_weight", "v_proj_weight"]
        )
        for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_weight"):
            if name not in names:
                self.register_parameter(name, None)
        set_params(self, {k: params[k] for k in names}, device)
        if bias:
            set_params(self, {"in_proj_bias": params["in_proj_bias"]}, device)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(
            embed_dim, embed_dim, bias=bias, device=device, dtype=dtype
        )
        set_params(self.out_proj, params["out_proj"], device)
        if add_bias_kv:
            set_params(self, {"bias_k": params["bias_k"], "bias_v": params["bias_v"]}, device)
        else:
            self.bias_k = self.bias_v = None

    def _init_params(self) -> dict:
        _, dtype = self._factory
        return _fnn.init_multi_head_attention(
            _random.next_key(),
            self.embed_dim,
            self.num_heads,
            bias=self._bias,
            dtype=dtype,
            kdim=self.kdim,
            vdim=self.vdim,
            add_bias_kv=self._add_bias_kv,
        )

    def _reset_parameters(self) -> None:
        params = self._init_params()
        out_proj = params.pop("out_proj")
        set_params(self, params, self._factory[0])
        set_params(self.out_proj, out_proj, self._factory[0])

    def _params(self) -> dict:
        params = {k: unwrap(v) for k, v in self._parameters.items() if v is not None}
        params["out_proj"] = {
            k: unwrap(v) for k, v in self.out_proj._parameters.items() if v is not None
        }
        return params

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``query`` (L, N, E) to ``key``/``value`` (S, N, kdim/vdim).

        Returns:
            ``(attn_output, attn_weights)``: (L, N, E) (batch first: (N, L, E)) and the weights
            (N, L, S) (per head with ``average_attn_weights=False``), or None unless
            ``need_weights``.
        """
        if is_causal and attn_mask is None:
            raise RuntimeError("Need attn_mask if specifying the is_causal hint")
        training = self.training and self.dropout > 0.0
        out, weights = _fnn.multi_head_attention(
            self._params(),
            unwrap(query),
            unwrap(key),
            unwrap(value),
            num_heads=self.num_heads,
            key_padding_mask=_mask(key_padding_mask, query),
            attn_mask=_mask(attn_mask, query),
            need_weights=need_weights,
            average_attn_weights=average_attn_weights,
            batch_first=self.batch_first,
            is_causal=is_causal,
            add_zero_attn=self.add_zero_attn,
            dropout_p=self.dropout if training else 0.0,
            dropout_key=_random.next_key() if training else None,
            training=training,
        )
        return wrap(out), (None if weights is None else wrap(weights))
