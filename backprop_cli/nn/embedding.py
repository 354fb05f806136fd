"""Embedding: a table of vectors looked up by integer index (PyTorch's ``nn.Embedding``)."""

from __future__ import annotations

import numpy as np

from .init import make_rng
from .module import DEFAULT_DTYPE, ArrayError, Module, ShapeError, shape_str


class Embedding(Module):
    """``y[n, ..., :] = W[x[n, ...], :]``: row ``x`` of the ``(num_embeddings, embedding_dim)`` table ``W``.

    The input holds indices in ``[0, num_embeddings)``: an integer array, or floats with integer values
    as data files give them. It has no gradient (``grad_input`` is zeros). ``padding_idx`` names a row
    that starts at zero and is never trained; ``scale_grad_by_freq`` divides each row's gradient by the
    number of times the batch uses it; ``_weight`` is a table to start from and ``_freeze=True`` keeps
    it fixed (a buffer, not a parameter). ``sparse`` is accepted and changes nothing (gradients are
    dense arrays); ``max_norm`` (rows renormalised in place by forward) is not supported. Weights
    start ~ N(0, 1), as in PyTorch.
    Shape: ``(N, *) -> (N, *, embedding_dim)``.
    Example: ``Sequential(Embedding(1000, 16), Flatten(), Linear(16 * 8, 2))`` on ``(N, 8)`` word indices.
    """

    differentiable_input = False

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight=None, _freeze: bool = False, *, rng=None,
                 dtype=DEFAULT_DTYPE) -> None:
        super().__init__()
        for what, value in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Embedding {what} must be a positive integer, got {value!r}")
        if max_norm is not None:
            raise ValueError("Embedding max_norm is not supported (PyTorch renormalises the looked-up rows in "
                             "place during forward); leave it None")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.padding_idx = self._padding_row(padding_idx)
        self.norm_type, self.scale_grad_by_freq, self.sparse = float(norm_type), bool(scale_grad_by_freq), bool(sparse)
        shape = (self.num_embeddings, self.embedding_dim)
        if _weight is None:
            weight = make_rng(rng).standard_normal(shape).astype(dtype)
            if self.padding_idx is not None:
                weight[self.padding_idx] = 0
        else:
            weight = np.array(_weight, dtype=dtype)
            if weight.shape != shape:
                raise ShapeError(f"Embedding _weight must be {shape_str(shape)}, got {shape_str(weight.shape)}")
        self.frozen = bool(_freeze)
        (self.add_buffer if self.frozen else self.add_parameter)("weight", weight)

    def _padding_row(self, padding_idx) -> int | None:
        """``padding_idx`` as a row in ``[0, num_embeddings)`` (a negative one counts from the end)."""
        if padding_idx is None:
            return None
        n = self.num_embeddings
        if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)) or not -n <= padding_idx < n:
            raise ValueError(f"Embedding padding_idx must be an integer in [-{n}, {n}), got {padding_idx!r}")
        return int(padding_idx) % n

    def _indices(self, input) -> np.ndarray:
        """The input as integer indices, checked to be whole numbers in ``[0, num_embeddings)``."""
        if not isinstance(input, np.ndarray) or input.ndim < 1 or input.dtype.kind not in "iuf":
            got = shape_str(input.shape) + f" of {input.dtype}" if isinstance(input, np.ndarray) else type(input).__name__
            raise TypeError(f"Embedding expected an array (N, ...) of indices, got {got}")
        index = input.astype(np.intp)
        if input.dtype.kind == "f" and not np.array_equal(index, input):
            raise ArrayError("Embedding expected whole-number indices, got fractional values")
        if index.size and (index.min() < 0 or index.max() >= self.num_embeddings):
            bad = int(index.min()) if index.min() < 0 else int(index.max())
            raise ArrayError(f"Embedding got index {bad}, outside [0, {self.num_embeddings}) "
                             f"for {self.num_embeddings} embeddings")
        return index

    def _table(self) -> np.ndarray:
        return (self._buffers if self.frozen else self._params)["weight"]

    def update_output(self, input):
        return self._table()[self._indices(input)]

    def update_grad_input(self, input, grad_output):
        """``grad_input = 0`` (indices have no gradient)."""
        return np.zeros(input.shape, dtype=grad_output.dtype)

    def acc_grad_parameters(self, input, grad_output, scale=1.0):
        """``grad_weight[x[i]] += scale * grad_output[i]`` for every position ``i`` (not into ``padding_idx``)."""
        if self.frozen:
            return
        index = self._indices(input).reshape(-1)
        expected = input.shape + (self.embedding_dim,)
        if grad_output.shape != expected:
            raise ShapeError(f"Embedding expected grad_output {shape_str(expected)}, got {shape_str(grad_output.shape)}")
        rows = grad_output.reshape(-1, self.embedding_dim) * grad_output.dtype.type(scale)
        if self.scale_grad_by_freq:
            rows /= np.bincount(index, minlength=self.num_embeddings)[index, None]
        if self.padding_idx is not None:
            rows[index == self.padding_idx] = 0
        np.add.at(self._grads["weight"], index, rows)

    def extra_repr(self):
        args = [str(self.num_embeddings), str(self.embedding_dim)]
        args += [] if self.padding_idx is None else [f"padding_idx={self.padding_idx}"]
        args += ["scale_grad_by_freq=True"] if self.scale_grad_by_freq else []
        args += ["_freeze=True"] if self.frozen else []
        return ", ".join(args)
