"""Recurrent modules: RNN, LSTM, GRU (stacked, bidirectional) and their cells.

Each layer and direction is one call into ``funcnn.nn.rnn / lstm / gru`` (a fused sequence
primitive); the modules only stack layers, concatenate directions and apply dropout between
layers, with PyTorch's parameter names (``weight_ih_l0``, ``bias_hh_l1_reverse`` ...).
"""

from __future__ import annotations

from typing import Any

from funcnn_modules import _fnn, _random
from funcnn_modules._functions import cat, stack
from funcnn_modules.nn import functional as F
from funcnn_modules.nn._common import float_dtype, set_params
from funcnn_modules.nn._module import Module
from funcnn_modules.tensor import Tensor, unwrap, wrap

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
_INIT = {
    "RNN_TANH": "init_rnn_cell",
    "RNN_RELU": "init_rnn_cell",
    "LSTM": "init_lstm_cell",
    "GRU": "init_gru_cell",
}


class RNNBase(Module):
    """Shared machinery of RNN, LSTM and GRU."""

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of an element being zeroed"
            )
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size != 0:
            raise NotImplementedError(f"{type(self).__name__}: proj_size is not supported")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self._factory = (device, float_dtype(dtype))
        self.reset_parameters()

    @property
    def _directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _names(self, layer: int, direction: int) -> dict:
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        return {k: k + suffix for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}

    def reset_parameters(self) -> None:
        """Draw every weight and bias from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        device, dtype = self._factory
        init = getattr(_fnn, _INIT[self.mode])
        for layer in range(self.num_layers):
            layer_in = self.input_size if layer == 0 else self.hidden_size * self._directions
            for direction in range(self._directions):
                params = init(
                    _random.next_key(), layer_in, self.hidden_size, bias=self.bias, dtype=dtype
                )
                set_params(self, params, device, self._names(layer, direction))

    def _layer_params(self, layer: int, direction: int) -> dict:
        return {
            k: unwrap(self._parameters[v])
            for k, v in self._names(layer, direction).items()
            if v in self._parameters
        }

    def _run(self, params: dict, xs: Any, state: Any, reverse: bool) -> tuple:
        raise NotImplementedError

    def forward(self, input: Tensor, hx: Any = None) -> tuple:  # noqa: A002
        """Run every layer and direction over ``input``.

        Args:
            input: (seq, batch, input_size) ((batch, seq, input_size) with batch_first), or
                unbatched (seq, input_size).
            hx: initial state (num_layers * num_directions, batch, hidden_size) (a pair
                ``(h0, c0)`` for LSTM); zeros when None.
        Returns:
            ``(output, h_n)`` (``(output, (h_n, c_n))`` for LSTM); output is
            (seq, batch, num_directions * hidden_size).
        """
        if input.ndim not in (2, 3):
            raise ValueError(
                f"{type(self).__name__}: Expected input to be 2D or 3D, got {input.ndim}D instead "
                f"(shape {tuple(input.shape)})"
            )
        batched = input.ndim == 3
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        states = self._split_state(hx, batched)
        finals: list = []
        D = self._directions
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                idx = layer * D + d
                init = None if states is None else self._state_at(states, idx)
                out, final = self._run(
                    self._layer_params(layer, d), unwrap(x), init, reverse=d == 1
                )
                outs.append(wrap(out))
                finals.append(final)
            x = outs[0] if D == 1 else cat(outs, dim=-1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        if not batched:
            x = x.squeeze(1)
        return x, self._final_state(finals, batched)

    def _split_state(self, hx: Any, batched: bool) -> Any:
        if hx is None:
            return None
        return hx if batched else hx.unsqueeze(1)

    def _state_at(self, states: Any, idx: int) -> Any:
        return unwrap(states[idx])

    def _final_state(self, finals: list, batched: bool) -> Any:
        h = stack([wrap(f) for f in finals], 0)
        return h if batched else h.squeeze(1)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNN(RNNBase):
    """Elman RNN layers with ``tanh`` or ``relu``. See also: ``funcnn.nn.rnn``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'."
            )
        self.nonlinearity = nonlinearity
        super().__init__(
            "RNN_" + nonlinearity.upper(),
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            device,
            dtype,
        )

    def _run(self, params: dict, xs: Any, state: Any, reverse: bool) -> tuple:
        return _fnn.rnn(params, xs, state, reverse=reverse, nonlinearity=self.nonlinearity)


class GRU(RNNBase):
    """Gated recurrent unit layers (gates r, z, n). See also: ``funcnn.nn.gru``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            "GRU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            device,
            dtype,
        )

    def _run(self, params: dict, xs: Any, state: Any, reverse: bool) -> tuple:
        return _fnn.gru(params, xs, state, reverse=reverse)


class LSTM(RNNBase):
    """Long short-term memory layers (gates i, f, g, o). See also: ``funcnn.nn.lstm``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            "LSTM",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device,
            dtype,
        )

    def _run(self, params: dict, xs: Any, state: Any, reverse: bool) -> tuple:
        return _fnn.lstm(params, xs, state, reverse=reverse)

    def _split_state(self, hx: Any, batched: bool) -> Any:
        if hx is None:
            return None
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError("LSTM: hx must be a pair (h_0, c_0)")
        h, c = hx
        return (h, c) if batched else (h.unsqueeze(1), c.unsqueeze(1))

    def _state_at(self, states: Any, idx: int) -> Any:
        return unwrap(states[0][idx]), unwrap(states[1][idx])

    def _final_state(self, finals: list, batched: bool) -> Any:
        h = stack([wrap(f[0]) for f in finals], 0)
        c = stack([wrap(f[1]) for f in finals], 0)
        return (h, c) if batched else (h.squeeze(1), c.squeeze(1))


class RNNCellBase(Module):
    """Shared machinery of the cells: ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``."""

    _gates = 1
    _init = "init_rnn_cell"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self._factory = (device, float_dtype(dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every weight and bias from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        device, dtype = self._factory
        init = getattr(_fnn, self._init)
        set_params(
            self,
            init(
                _random.next_key(), self.input_size, self.hidden_size, bias=self.bias, dtype=dtype
            ),
            device,
        )

    def _params(self) -> dict:
        return {k: unwrap(v) for k, v in self._parameters.items() if v is not None}

    def _zeros(self, input: Tensor) -> Tensor:  # noqa: A002
        shape = (self.hidden_size,) if input.ndim == 1 else (input.shape[0], self.hidden_size)
        return input.new_zeros(shape)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        nonlinearity = self.__dict__.get("nonlinearity", "tanh")
        if nonlinearity != "tanh":
            s += f", nonlinearity={nonlinearity}"
        return s


class RNNCell(RNNCellBase):
    """One Elman RNN step: ``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)``. See also: ``funcnn.nn.rnn_step``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:  # noqa: A002
        h = self._zeros(input) if hx is None else hx
        return wrap(
            _fnn.rnn_step(self._params(), unwrap(h), unwrap(input), nonlinearity=self.nonlinearity)
        )


class LSTMCell(RNNCellBase):
    """One LSTM step: returns ``(h', c')``. See also: ``funcnn.nn.lstm_step``."""

    _gates = 4
    _init = "init_lstm_cell"

    def forward(self, input: Tensor, hx: Any = None) -> tuple:  # noqa: A002
        if hx is None:
            z = self._zeros(input)
            hx = (z, z)
        h, c = _fnn.lstm_step(self._params(), (unwrap(hx[0]), unwrap(hx[1])), unwrap(input))
        return wrap(h), wrap(c)


class GRUCell(RNNCellBase):
    """One GRU step. See also: ``funcnn.nn.gru_step``."""

    _gates = 3
    _init = "init_gru_cell"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:  # noqa: A002
        h = self._zeros(input) if hx is None else hx
        return wrap(_fnn.gru_step(self._params(), unwrap(h), unwrap(input)))
