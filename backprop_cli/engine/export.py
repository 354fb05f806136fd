"""``backprop export CKPT model.onnx``: a checkpoint's model as an ONNX graph, usable outside backprop.

The graph takes *raw* inputs, as ``backprop predict`` does: the checkpoint's normalisation is its
first nodes (``Sub`` the shift, ``Div`` by the divisor, in float32 exactly as :class:`Normalizer` does;
none for ``normalize: none``), then a ``Cast`` for a float64 model. A model trained on a table takes
its numeric columns and one-hot categories in the order the ``inputs`` metadata names; NaN inputs
are filled with the training means first when it was trained with ``missing: mean``
(``Where(IsNaN(x), mean, x)``). It gives two outputs:

* ``output``: the model's output, what ``Sequential.forward`` returns (shape ``(N, ...)``);
* ``probabilities``: for classifiers and binary models, the probabilities ``predict`` writes
  (``Softmax`` over axis 1 of scores, ``Exp`` of log-probabilities, ``Sigmoid`` of logits).

Each layer becomes the ONNX operator with the same semantics (opset :data:`OPSET`):

=============================================  ==========================================
Linear                                         Gemm (transB=1)
ReLU, LeakyReLU, ELU, Tanh, Sigmoid, SoftPlus  Relu, LeakyRelu, Elu, Tanh, Sigmoid, Softplus
SoftMax, LogSoftMax                            Softmax, LogSoftmax (axis=1, or dim)
TemporalConvolution, SpatialConvolution        Conv (strides, pads, dilations, group; zeros padding only)
TemporalMaxPooling, SpatialMaxPooling          MaxPool (dilations, ceil_mode); MaxPool1d, MaxPool2d too
SpatialAveragePooling, AvgPool1d, AvgPool2d    AveragePool (count_include_pad; not ceil_mode, divisor_override)
BatchNormalization, SpatialBatchNormalization  BatchNormalization (running statistics)
Dropout, Identity                              nothing (evaluation mode: the identity)
Reshape, View, Flatten                         Reshape (batch axis kept), Flatten (axis=1)
Sequential, Residual                           their layers in order; Residual adds an Add
=============================================  ==========================================

A layer not in :data:`CONVERTERS` stops the export with one line naming it. The model is checked
with ``onnx.checker`` before it is written (atomically). Needs the ``onnx`` extra.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import ExportError, install_hint
from ..nn import activation as act
from ..nn import container, conv, linear, normalization, pooling
from ..nn.module import Module
from .checkpoint import atomic_write
from .experiment import Restored, restore

OPSET = 17
#: ONNX IR version 8 (opset 17's): read by every onnxruntime since 1.14.
IR_VERSION = 8
MISSING = f"backprop export needs onnx: {install_hint('onnx')}"
#: How ``probabilities`` is computed from the output, by the criterion's ``outputs``.
PROBABILITY_OPS = {"scores": ("Softmax", {"axis": 1}), "log_probabilities": ("Exp", {}),
                   "logits": ("Sigmoid", {}), "probabilities": ("Identity", {})}


@dataclass
class Exported:
    """What was written: the file, its operators in order, and the graph's inputs and outputs."""

    path: str
    ops: list[str]
    opset: int
    input: tuple[str, tuple]
    outputs: list[tuple[str, tuple]]
    normalization: str


class Graph:
    """Nodes and initializers (weights) being built; :meth:`op` adds a node and names its output."""

    def __init__(self, dtype: np.dtype) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper, self.dtype = helper, numpy_helper, np.dtype(dtype)
        self.nodes: list = []
        self.initializers: list = []
        self.names: set[str] = set()

    def _fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        return name

    def const(self, name: str, value, dtype=None) -> str:
        """An initializer holding ``value`` (in the model's dtype unless ``dtype`` is given)."""
        name = self._fresh(name)
        array = np.asarray(value, dtype=dtype or self.dtype)
        self.initializers.append(self.numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, **attrs) -> str:
        out = self._fresh(name)
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


# ---------------------------------------------------------------------------- one converter per layer
def _linear(g: Graph, m: linear.Linear, x: str, name: str) -> str:
    inputs = [x, g.const(f"{name}.weight", m.weight)] + ([g.const(f"{name}.bias", m.bias)] if m.has_bias else [])
    return g.op("Gemm", inputs, name, transB=1)


def _refuse(m: Module, name: str, what: str) -> ExportError:
    return ExportError(f"layer {name} ({m.one_line()}): {what} has no ONNX equivalent here")


def _conv(g: Graph, m, x: str, name: str) -> str:
    if m.padding_mode != "zeros":
        raise _refuse(m, name, f"padding_mode={m.padding_mode!r}")
    inputs = [x, g.const(f"{name}.weight", m.weight)] + ([g.const(f"{name}.bias", m.bias)] if m.has_bias else [])
    return g.op("Conv", inputs, name, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                pads=[a for a, _ in m.pads] + [b for _, b in m.pads], dilations=list(m.dilation), group=m.groups)


def _max_pool(g: Graph, m, x: str, name: str) -> str:
    extra = {"dilations": list(m.dilation)} if any(d != 1 for d in m.dilation) else {}
    return g.op("MaxPool", [x], name, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                pads=list(m.padding) * 2, ceil_mode=int(m.ceil_mode), **extra)


def _average_pool(g: Graph, m, x: str, name: str) -> str:
    """AveragePool; ceil_mode's last windows and divisor_override divide differently there."""
    if m.ceil_mode or m.divisor_override is not None:
        raise _refuse(m, name, "ceil_mode" if m.ceil_mode else "divisor_override")
    return g.op("AveragePool", [x], name, kernel_shape=list(m.kernel_size), strides=list(m.stride),
                pads=list(m.padding) * 2, count_include_pad=int(m.count_include_pad))


def _softmax(op_type: str):
    def convert(g: Graph, m, x: str, name: str) -> str:
        return g.op(op_type, [x], name, axis=1 if m.dim is None else m.dim)
    return convert


def _flatten(g: Graph, m: linear.Flatten, x: str, name: str) -> str:
    if (m.start_dim, m.end_dim) != (1, -1):
        raise _refuse(m, name, f"start_dim={m.start_dim}, end_dim={m.end_dim}")
    return g.op("Flatten", [x], name, axis=1)


def _batch_norm(g: Graph, m: normalization.BatchNormalization, x: str, name: str) -> str:
    if not m.track_running_stats:
        raise _refuse(m, name, "track_running_stats=False (batch statistics in evaluation)")
    ones, zeros = np.ones(m.num_features), np.zeros(m.num_features)
    gamma, beta = (m.weight, m.bias if m.has_bias else zeros) if m.affine else (ones, zeros)
    stats = [g.const(f"{name}.{k}", v) for k, v in (("weight", gamma), ("bias", beta),
                                                     ("running_mean", m.running_mean), ("running_var", m.running_var))]
    return g.op("BatchNormalization", [x, *stats], name, epsilon=m.eps)


def _softplus(g: Graph, m: act.SoftPlus, x: str, name: str) -> str:
    """``log(1 + exp(beta x)) / beta``; past the threshold backprop gives ``x``, which differs by
    less than ``exp(-threshold) / beta``."""
    if m.beta == 1:
        return g.op("Softplus", [x], name)
    beta = g.const(f"{name}.beta", m.beta)
    return g.op("Div", [g.op("Softplus", [g.op("Mul", [x, beta], f"{name}.scaled")], f"{name}.softplus"), beta], name)


def _reshape(g: Graph, m: linear.Reshape, x: str, name: str) -> str:
    return g.op("Reshape", [x, g.const(f"{name}.shape", [0, *m.shape], np.int64)], name)


def _simple(op_type: str, **fixed):
    def convert(g: Graph, m, x: str, name: str) -> str:
        attrs = {k: (getattr(m, v) if isinstance(v, str) else v) for k, v in fixed.items()}
        return g.op(op_type, [x], name, **attrs)
    return convert


def _identity(g: Graph, m, x: str, name: str) -> str:
    return x


def _sequential(g: Graph, m: container.Sequential, x: str, name: str) -> str:
    for i, layer in enumerate(m.layers):
        x = convert_layer(g, layer, x, f"{name}.{i}" if name else str(i))
    return x


def _residual(g: Graph, m: container.Residual, x: str, name: str) -> str:
    return g.op("Add", [x, convert_layer(g, m.block, x, f"{name}.0")], name)


#: Layer class -> converter ``(graph, layer, input name, layer name) -> output name``. Exact classes:
#: a subclass may compute something else, so it must be added here to be exported.
CONVERTERS = {
    linear.Linear: _linear, linear.Identity: _identity, linear.Reshape: _reshape, linear.View: _reshape,
    linear.Flatten: _flatten,
    act.ReLU: _simple("Relu"), act.LeakyReLU: _simple("LeakyRelu", alpha="negative_slope"),
    act.ELU: _simple("Elu", alpha="alpha"), act.Tanh: _simple("Tanh"), act.Sigmoid: _simple("Sigmoid"),
    act.SoftPlus: _softplus, act.SoftMax: _softmax("Softmax"), act.LogSoftMax: _softmax("LogSoftmax"),
    normalization.Dropout: _identity, normalization.BatchNormalization: _batch_norm,
    normalization.SpatialBatchNormalization: _batch_norm,
    conv.TemporalConvolution: _conv, conv.SpatialConvolution: _conv, conv.Conv1d: _conv, conv.Conv2d: _conv,
    pooling.TemporalMaxPooling: _max_pool, pooling.SpatialMaxPooling: _max_pool,
    pooling.MaxPool1d: _max_pool, pooling.MaxPool2d: _max_pool,
    pooling.SpatialAveragePooling: _average_pool, pooling.AvgPool2d: _average_pool,
    pooling.AvgPool1d: _average_pool,
    container.Sequential: _sequential, container.Residual: _residual,
}


def convert_layer(g: Graph, layer: Module, x: str, name: str) -> str:
    """Add ``layer``'s nodes reading tensor ``x``; returns the name of its output."""
    converter = CONVERTERS.get(type(layer))
    if converter is None:
        known = sorted({cls.__name__ for cls in CONVERTERS})
        raise ExportError(f"layer {name} ({layer.one_line()}) has no ONNX equivalent; backprop exports "
                          f"{', '.join(known)}")
    return converter(g, layer, x, name)


# ---------------------------------------------------------------------------- the model
def to_onnx(restored: Restored):
    """The ONNX ModelProto of a restored checkpoint (see the module docstring)."""
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        raise ExportError(MISSING) from None
    model, norm = restored.model.evaluate(), restored.normalizer
    dtype = np.dtype(restored.config.training.dtype)
    g = Graph(dtype)
    x = "input"
    g.names.add(x)
    columns = restored.columns                    # a table's inputs: one-hot columns as predict encodes them
    if columns is not None and columns.means is not None:           # missing: mean fills NaN as predict does
        x = g.op("Where", [g.op("IsNaN", [x], "impute.isnan"), g.const("columns.mean", columns.means, np.float32), x],
                 "impute.where")
    if norm.method != "none":
        if norm.method != "scale":
            x = g.op("Sub", [x, g.const("norm.shift", norm.shift, np.float32)], "normalize.sub")
        x = g.op("Div", [x, g.const("norm.divisor", norm.divisor, np.float32)], "normalize.div")
    if dtype != np.float32:
        x = g.op("Cast", [x], "to_float64", to=TensorProto.DOUBLE)
    x = _sequential(g, model, x, "")
    x = _name_output(g, x, "output")
    out_shape = model.output_shape(restored.input_shape)
    outputs = [("output", out_shape)]
    kind = restored.criterion.outputs
    if restored.task in ("classification", "binary") and kind in PROBABILITY_OPS:
        op_type, attrs = PROBABILITY_OPS[kind]
        g.nodes.append(helper.make_node(op_type, [x], ["probabilities"], name="probabilities", **attrs))
        outputs.append(("probabilities", out_shape))
    elem = helper.np_dtype_to_tensor_dtype(dtype)
    graph = helper.make_graph(
        g.nodes, restored.config.name or "backprop",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *restored.input_shape])],
        [helper.make_tensor_value_info(name, elem, ["N", *shape]) for name, shape in outputs],
        initializer=g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="backprop",
                              producer_version=__version__,
                              doc_string=f"{restored.config.name}: raw inputs (normalisation '{norm.method}' inside)")
    proto.ir_version = IR_VERSION
    meta = {"task": restored.task, "classes": json.dumps(restored.classes), "normalization": norm.method,
            "epoch": str(restored.checkpoint.meta.get("epoch"))}
    if columns is not None:
        meta["inputs"] = json.dumps(columns.feature_names)
    helper.set_model_props(proto, meta)
    onnx.checker.check_model(proto, full_check=True)
    return proto, outputs


def _name_output(g: Graph, x: str, name: str) -> str:
    """Rename the last node's output to ``name`` (an Identity when ``x`` is the input or a weight)."""
    producer = next((node for node in reversed(g.nodes) if x in node.output), None)
    if producer is None:
        g.nodes.append(g.helper.make_node("Identity", [x], [name], name=name))
        return name
    producer.output[list(producer.output).index(x)] = name
    for node in g.nodes:
        for i, inp in enumerate(node.input):
            if inp == x:
                node.input[i] = name
    return name


def export_checkpoint(checkpoint: str | Path, out: str | Path) -> Exported:
    """Write the checkpoint's model to ``out`` as ONNX; see the module docstring."""
    restored = restore(checkpoint)
    proto, outputs = to_onnx(restored)
    data = proto.SerializeToString()
    atomic_write(out, lambda f: f.write(data))
    return Exported(str(out), [n.op_type for n in proto.graph.node], OPSET, ("input", restored.input_shape),
                    outputs, restored.normalizer.method)
