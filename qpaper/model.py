"""The estimators: a backbone with the classification-like head (Section 3.1) or the regression
head of reference [10]. Two backbones (``arch``):

- ``densenet``: the paper's DenseNet on pixels (Section 4.1), the ``paper`` profile's model;
- ``dct``: ours, for two CPU cores: the fixed block-DCT front end of :mod:`qpaper.dctfeatures`
  (comb strengths at all 64 grid phases), two dense layers shared by every phase, the maximum
  over phases beside phase 0, the phase-0 histograms, one hidden layer.

Both take pixels 0..255 and end in the same heads. Only ``keras.ops`` and Keras layers, so the
same code runs on TensorFlow, JAX or PyTorch."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from .dctfeatures import CombStrength, GridHistogram, PhaseHistograms, PhasePool
from .jpeg import NC, blocks, q_max

HEADS = ("class", "regression")
ARCHS = ("densenet", "dct")


@keras.saving.register_keras_serializable(package="qpaper")
class BlockSoftmax(layers.Layer):
    """Softmax on each block of ``q_max[i]`` logits, blocks concatenated (Section 3.1, Fig. 1)."""

    def __init__(self, sizes, **kwargs):
        super().__init__(**kwargs)
        self.sizes = [int(s) for s in sizes]

    def call(self, logits):
        return ops.concatenate([ops.softmax(logits[:, a:b], axis=-1) for a, b in blocks(self.sizes)], axis=-1)

    def get_config(self):
        return {**super().get_config(), "sizes": self.sizes}


def _bn_relu(x):
    return layers.Activation("relu")(layers.BatchNormalization(epsilon=1.001e-5)(x))


def densenet_features(x, depth: int = 40, growth: int = 12, dropout: float = 0.2):
    """DenseNet (Huang et al.) as in Section 4.1: an initial 3x3 conv with 2k filters; 3 dense
    blocks of (depth-4)/3 BN-ReLU-Conv3x3(k)-Dropout layers, each concatenated to its input;
    BN-ReLU-Conv1x1-AvgPool2x2 transitions without compression; BN-ReLU; global average pooling."""
    if (depth - 4) % 3 or depth < 7:
        raise ValueError(f"depth must be 3n+4 with n >= 1 (40, 22, ...), got {depth}")
    n = (depth - 4) // 3
    x = layers.Conv2D(2 * growth, 3, padding="same", use_bias=False, kernel_initializer="he_normal")(x)
    for block in range(3):
        for _ in range(n):
            y = layers.Conv2D(growth, 3, padding="same", use_bias=False, kernel_initializer="he_normal")(_bn_relu(x))
            if dropout:
                y = layers.Dropout(dropout)(y)
            x = layers.Concatenate()([x, y])
        if block < 2:
            y = layers.Conv2D(x.shape[-1], 1, use_bias=False, kernel_initializer="he_normal")(_bn_relu(x))
            x = layers.AveragePooling2D(2)(y)
    return layers.GlobalAveragePooling2D()(_bn_relu(x))


def dct_features(x, nc: int = NC, width: int = 128, phases: str = "all", nf: int = NC):
    """The ``dct`` backbone on pixels x [B, 64, 64, C]: per-phase comb strengths of the first
    ``nf`` zig-zag coefficients (:class:`~qpaper.dctfeatures.CombStrength`; nf >= nc: higher
    frequencies tell the first quality apart where the first nc are blurred) through two ReLU
    layers of ``width`` shared by all phases, pooled as [max over phases, phase 0]; beside them
    the phase-0 histograms of the nc-1 first AC coefficients through one ReLU layer.
    ``phases="grid"`` looks at the grid of the last compression only."""
    hdc, hac = PhaseHistograms(nf, phases, name="histograms")(x)
    h = CombStrength(nf, name="comb")((hdc, hac))
    h = layers.Dense(width, activation="relu", name="phase_dense_1")(h)
    h = layers.Dense(width, activation="relu", name="phase_dense_2")(h)
    g = layers.Dense(width, activation="relu", name="grid_dense")(GridHistogram(nc - 1, name="grid_histogram")(hac))
    return layers.Concatenate(name="pooled")([PhasePool(name="phase_pool")(h), g])


def build_model(head: str = "class", depth: int = 40, growth: int = 12, dropout: float = 0.2,
                channels: int = 3, patch: int = 64, nc: int = NC, name: str | None = None, arch: str = "densenet",
                width: int = 128, hidden: int = 512, phases: str = "all", nf: int = NC) -> keras.Model:
    """The estimator: backbone ``arch`` (``densenet``: DenseNet-``depth``, growth, dropout;
    ``dct``: :func:`dct_features` with ``width``, ``phases`` and ``nf``, then Dense(``hidden``, ReLU)),
    with the classification-like head (Dense(sum q_max) + a softmax per block, Section 3.1) or
    the regression head of [10] (Dense(nc), linear). The model takes pixel values 0..255 (RGB,
    or Y with ``channels=1``)."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}")
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}")
    inp = keras.Input((patch, patch, channels), name="patch")  # pixel values 0..255
    if arch == "densenet":
        f = densenet_features(layers.Rescaling(1 / 255.0, name="scale")(inp), depth, growth, dropout)
    else:
        if patch != 64:
            raise ValueError("the dct backbone reads 64x64 windows")
        if nf < nc:
            raise ValueError(f"nf ({nf}) must be at least nc ({nc})")
        f = layers.Dense(hidden, activation="relu", name="hidden")(dct_features(inp, nc, width, phases, nf))
    if head == "class":
        sizes = q_max(nc)
        # the heads stay float32 under mixed precision: softmax and loss need the range
        logits = layers.Dense(int(sizes.sum()), name="logits", dtype="float32")(f)
        out = BlockSoftmax(sizes, name="block_softmax", dtype="float32")(logits)
    else:
        out = layers.Dense(nc, name="q1", dtype="float32")(f)
    return keras.Model(inp, out, name=name or (f"densenet{depth}_{head}" if arch == "densenet" else f"dct_{head}"))


def head_of(model) -> str:
    """``class`` or ``regression``, read from the width of a model's output (nc for regression)."""
    return "class" if model.output_shape[-1] != NC else "regression"


def decode_ops(y_pred, head: str, nc: int = NC):
    """The estimated q1 (float32, nc columns) from a head's output, with ``keras.ops``: for the
    class head q1_i = argmax_j f_ij + 1, block by block (Section 3.1); for the regression head of
    [10] each output rounded and clipped to [1, q_max[i]]. The one rule: the training metrics use
    it on tensors, :func:`decode` on arrays."""
    qm = q_max(nc)
    if head == "class":
        cols = [ops.argmax(y_pred[:, a:b], axis=-1) + 1 for a, b in blocks(qm)]
        return ops.cast(ops.stack(cols, axis=1), "float32")
    return ops.clip(ops.round(ops.cast(y_pred, "float32")), 1.0, ops.convert_to_tensor(qm.astype("float32")))


def decode(pred, head: str, nc: int = NC) -> np.ndarray:
    """:func:`decode_ops` on a batch of predictions: int64 [N, nc]."""
    return np.asarray(ops.convert_to_numpy(decode_ops(ops.convert_to_tensor(np.asarray(pred)), head, nc)),
                      dtype=np.int64)


def confidence(pred, nc: int = NC) -> np.ndarray:
    """The class head's largest probability in each coefficient's softmax block: [N, nc]."""
    pred = np.asarray(pred)
    return np.stack([pred[:, a:b].max(axis=1) for a, b in blocks(q_max(nc))], axis=1)


# ---------------------------------------------------------------------------------------------
# Training metrics with keras.ops (Section 5): accuracy = share of exact coefficients, MSE of the estimate.

def _metric(head: str, kind: str):
    """``accuracy`` (share of exact coefficients) or ``mse`` of the decoded estimate, per patch; a
    named, registered function (``qpaper>class_accuracy``, ...) so that saved models load with
    ``safe_mode=True``."""
    def metric(y_true, y_pred):
        q, t = decode_ops(y_pred, head), ops.cast(y_true, "float32")
        err = ops.cast(ops.equal(q, t), "float32") if kind == "accuracy" else ops.square(q - t)
        return ops.mean(err, axis=-1)
    metric.__name__ = metric.__qualname__ = f"{head}_{kind}"
    return keras.saving.register_keras_serializable(package="qpaper", name=metric.__name__)(metric)


METRICS = {(head, kind): _metric(head, kind) for head in HEADS for kind in ("accuracy", "mse")}


def metrics_for(head: str) -> list:
    return [keras.metrics.MeanMetricWrapper(METRICS[head, kind], name=kind) for kind in ("accuracy", "mse")]


def load_model(path) -> keras.Model:
    """Load a ``.keras`` model with ``safe_mode=True`` (no arbitrary code)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model {p} not found")
    from . import losses  # noqa: F401 (registers the losses a checkpoint's compile config names)
    try:
        return keras.saving.load_model(p, safe_mode=True)
    except Exception:  # a corrupt or foreign file: one line for the user
        raise ValueError(f"cannot load model {p}: not a readable .keras model file") from None
