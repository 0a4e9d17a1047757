"""The estimators: a backbone with the classification-like head (Section 3.1) or the regression
head of reference [10]. Two backbones (``arch``):

- ``densenet``: the paper's DenseNet on pixels (Section 4.1), the ``paper`` profile's model;
- ``dct``: ours, for two CPU cores: the fixed block-DCT front end of :mod:`qpaper.dctfeatures`
  (comb strengths at all 64 grid phases), two dense layers shared by every phase, the maximum
  over phases beside phase 0, the phase-0 histograms, one hidden layer.
- ``coef``: ours, for the JPEGs people have (issue 21): the same front end read one coefficient
  at a time, given Q2 as a second input; one pathway with weights shared by all coefficients
  reads each coefficient's own evidence, and a context layer over all of them and Q2 adds a
  prior where a coefficient's evidence is weak. It ends in the ``wide`` head.

All take pixels 0..255 and end in the same kind of heads. Only ``keras.ops`` and Keras layers, so
the same code runs on TensorFlow, JAX or PyTorch."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from .dctfeatures import MAX_STEP, CombStrength, GridHistogram, PhaseHistograms, PhasePool, candidates
from .jpeg import NC, blocks, q_max
from .tables import wide_sizes

# class: one softmax over 1..q_max[i] per coefficient (Section 3.1); regression: [10]; wide: one
# softmax over 1..R_i and a last class "at least R_i + 1" (:func:`qpaper.tables.head_range`)
HEADS = ("class", "regression", "wide")
ARCHS = ("densenet", "dct", "coef")


def head_sizes(head: str, nc: int = NC) -> np.ndarray | None:
    """Class counts of each coefficient's softmax block: q_max for ``class``, R + 1 for ``wide``
    (the last class meaning "at least R + 1"), None for ``regression``."""
    if head == "class":
        return q_max(nc)
    if head == "wide":
        return wide_sizes(nc)
    if head == "regression":
        return None
    raise ValueError(f"head must be one of {HEADS}")


@keras.saving.register_keras_serializable(package="qpaper")
class BlockSoftmax(layers.Layer):
    """Softmax on each block of ``q_max[i]`` logits, blocks concatenated (Section 3.1, Fig. 1).
    ``temperature``: the logits are divided by it first (1: the paper; the any-QF2 model's is
    fitted on held-out scenes after training, :func:`qpaper.train.calibrate`)."""

    def __init__(self, sizes, temperature: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.sizes = [int(s) for s in sizes]
        self.temperature = float(temperature)

    def call(self, logits):
        if self.temperature != 1.0:
            logits = logits / self.temperature
        return ops.concatenate([ops.softmax(logits[:, a:b], axis=-1) for a, b in blocks(self.sizes)], axis=-1)

    def get_config(self):
        extra = {"temperature": self.temperature} if self.temperature != 1.0 else {}
        return {**super().get_config(), "sizes": self.sizes, **extra}


STEMS = ("he", "highpass")


@keras.saving.register_keras_serializable(package="qpaper")
class ZeroMeanHeNormal(keras.initializers.Initializer):
    """He normal kernels [h, w, in, out] minus their mean over (h, w): zero-sum filters."""

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        w = keras.initializers.HeNormal(self.seed)(shape, dtype)
        return w - ops.mean(w, axis=(0, 1), keepdims=True)

    def get_config(self):
        return {"seed": self.seed}


def _bn_relu(x, dtype=None):
    return layers.Activation("relu", dtype=dtype)(layers.BatchNormalization(epsilon=1.001e-5, dtype=dtype)(x))


def densenet_features(x, depth: int = 40, growth: int = 12, dropout: float = 0.2, float32_stages: int = 0,
                      stem: str = "he"):
    """DenseNet (Huang et al.) as in Section 4.1: an initial 3x3 conv with 2k filters; 3 dense
    blocks of (depth-4)/3 BN-ReLU-Conv3x3(k)-Dropout layers, each concatenated to its input;
    BN-ReLU-Conv1x1-AvgPool2x2 transitions without compression; BN-ReLU; global average pooling.
    ``float32_stages`` (under mixed precision): the first stages computed in float32 whatever the
    policy -- 1: the initial conv; 2: and the first dense block with its transition; ... (issue
    22: in bfloat16 the rounding traces, a fraction of a grey level, fall below the format's 8
    significant bits where the image is bright). ``stem``: the initial conv's initialization,
    ``he`` (He normal, as every conv) or ``highpass`` (He normal minus each kernel's mean: at first
    it passes no local mean, only the detail where the traces are)."""
    if stem not in STEMS:
        raise ValueError(f"stem must be one of {STEMS}")
    if (depth - 4) % 3 or depth < 7:
        raise ValueError(f"depth must be 3n+4 with n >= 1 (40, 22, ...), got {depth}")
    n = (depth - 4) // 3
    f32 = lambda stage: "float32" if stage < float32_stages else None  # noqa: E731
    init = ZeroMeanHeNormal() if stem == "highpass" else "he_normal"
    x = layers.Conv2D(2 * growth, 3, padding="same", use_bias=False, kernel_initializer=init, dtype=f32(0),
                      name="stem")(x)
    for block in range(3):
        dt = f32(block + 1)
        for _ in range(n):
            y = layers.Conv2D(growth, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                              dtype=dt)(_bn_relu(x, dt))
            if dropout:
                y = layers.Dropout(dropout, dtype=dt)(y)
            x = layers.Concatenate(dtype=dt)([x, y])
        if block < 2:
            y = layers.Conv2D(x.shape[-1], 1, use_bias=False, kernel_initializer="he_normal", dtype=dt)(_bn_relu(x, dt))
            x = layers.AveragePooling2D(2, dtype=dt)(y)
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


@keras.saving.register_keras_serializable(package="qpaper")
class CoefficientView(layers.Layer):
    """Per-phase features of :class:`~qpaper.dctfeatures.CombStrength` (``wide``) [B, P, F] ->
    [B, P, nc, MAX_STEP + 2]: for each coefficient its comb strengths at the candidate steps
    1..MAX_STEP (the DC's 1..16, then zeros), its share of zeros and of overflowing values."""

    def __init__(self, nc: int = NC, **kwargs):
        super().__init__(**kwargs)
        self.nc = int(nc)
        cand = candidates(self.nc, wide=True)
        start = np.concatenate([[0], np.cumsum(cand)])
        n = int(cand.sum())
        pad = n + 2 * (self.nc - 1) + 1  # the index of an appended zero column
        idx = np.full((self.nc, MAX_STEP + 2), pad, dtype="int32")
        for k in range(self.nc):
            idx[k, :cand[k]] = start[k] + np.arange(cand[k])
            if k:
                idx[k, MAX_STEP], idx[k, MAX_STEP + 1] = n + k - 1, n + self.nc - 1 + k - 1
        self._idx = idx.reshape(-1)

    def call(self, h):
        h = ops.concatenate([h, ops.zeros_like(h[..., :1])], axis=-1)
        t = ops.take(h, self._idx, axis=-1)
        return ops.reshape(t, (-1, h.shape[1], self.nc, MAX_STEP + 2))

    def compute_output_shape(self, shape):
        return (shape[0], shape[1], self.nc, MAX_STEP + 2)

    def get_config(self):
        return {**super().get_config(), "nc": self.nc}


@keras.saving.register_keras_serializable(package="qpaper")
class PhaseBroadcast(layers.Layer):
    """(per-coefficient features [B, P, nc, F], per-phase features [B, P, G]) -> [B, P, nc, F + G]:
    each coefficient's features at a phase beside what all coefficients show there (the first
    grid is one grid for every coefficient)."""

    def call(self, inputs):
        t, g = inputs
        return ops.concatenate([t, ops.zeros_like(t[..., :1]) + g[:, :, None, :]], axis=-1)

    def compute_output_shape(self, shapes):
        t, g = shapes
        return (*t[:3], t[3] + g[2])


@keras.saving.register_keras_serializable(package="qpaper")
class CoefficientPhasePool(layers.Layer):
    """[B, P, nc, W] -> [B, nc, 2W]: per coefficient the maximum over the phases (its first grid,
    wherever it is) and its features at phase 0 (the grid of the last compression)."""

    def call(self, u):
        return ops.concatenate([ops.max(u, axis=1), u[:, 0]], axis=-1)

    def compute_output_shape(self, shape):
        return (shape[0], shape[2], 2 * shape[3])


@keras.saving.register_keras_serializable(package="qpaper")
class PriorDrop(layers.Layer):
    """Drop-path on the prior across coefficients: in training, the prior logits of a random
    ``rate`` of the patches are zeroed, so that each coefficient's own evidence must answer
    alone (a prior that always speaks becomes a quality classifier); at inference the prior is
    kept whole."""

    def __init__(self, rate: float = 0.5, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or not self.rate:
            return x
        keep = ops.cast(keras.random.uniform((ops.shape(x)[0], 1, 1), seed=self.seed_generator) >= self.rate, x.dtype)
        return x * keep

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


@keras.saving.register_keras_serializable(package="qpaper")
class CoefficientHistograms(layers.Layer):
    """AC histograms [B, P, nc-1, NB] -> [B, nc, NB]: those of phase 0 (the double-quantization
    pattern of the aligned case lives in the bins), a zero row for the DC."""

    def call(self, hac):
        h0 = hac[:, 0]
        return ops.concatenate([ops.zeros_like(h0[:, :1]), h0], axis=1)

    def compute_output_shape(self, shape):
        return (shape[0], shape[2] + 1, shape[3])


@keras.saving.register_keras_serializable(package="qpaper")
class StepEncoding(layers.Layer):
    """Q2 [B, nc] (steps) -> [B, nc, MAX_STEP + 2 + nc]: per coefficient a one-hot of its last
    step (1..MAX_STEP, then "larger"), its logarithm, and a one-hot of the coefficient's index
    (the shared pathway knows which coefficient it reads)."""

    def __init__(self, nc: int = NC, **kwargs):
        super().__init__(**kwargs)
        self.nc = int(nc)

    def call(self, q2):
        q = ops.clip(ops.cast(ops.round(q2), "int32"), 1, MAX_STEP + 1) - 1
        onehot = ops.one_hot(q, MAX_STEP + 1, dtype="float32")
        log = ops.log(ops.maximum(ops.cast(q2, "float32"), 1.0))[..., None] / 4.0
        index = ops.zeros_like(log) + np.eye(self.nc, dtype="float32")[None]
        return ops.concatenate([onehot, log, index], axis=-1)

    def compute_output_shape(self, shape):
        return (shape[0], self.nc, MAX_STEP + 2 + self.nc)

    def get_config(self):
        return {**super().get_config(), "nc": self.nc}


@keras.saving.register_keras_serializable(package="qpaper")
class BlockSelect(layers.Layer):
    """Logits [B, nc, C] -> [B, sum(sizes)]: the first sizes[k] logits of coefficient k, blocks
    concatenated (the input of :class:`BlockSoftmax`)."""

    def __init__(self, sizes, **kwargs):
        super().__init__(**kwargs)
        self.sizes = [int(s) for s in sizes]
        self._c = max(self.sizes)
        self._idx = np.concatenate([k * self._c + np.arange(s) for k, s in enumerate(self.sizes)]).astype("int32")

    def call(self, logits):
        return ops.take(ops.reshape(logits, (-1, len(self.sizes) * self._c)), self._idx, axis=-1)

    def compute_output_shape(self, shape):
        return (shape[0], sum(self.sizes))

    def get_config(self):
        return {**super().get_config(), "sizes": self.sizes}


def coef_network(patch, q2, nc: int = NC, width: int = 128, hidden: int = 256, dropout: float = 0.1,
                 phase_width: int = 48, prior_drop: float = 0.5):
    """The ``coef`` estimator's logits [B, sum(wide sizes)]. Evidence: at every phase, each
    coefficient's comb strengths (its candidates 1..24, zero and overflow shares) beside a summary
    of all coefficients at that phase, through two layers of ``phase_width`` shared by every
    (phase, coefficient); the maximum over phases and phase 0; with the coefficient's phase-0
    histogram and its Q2 step, two layers of ``width`` shared by all coefficients, then its
    logits. Prior: a context layer over every coefficient's hidden state and Q2 adds logits to
    each coefficient, dropped for ``prior_drop`` of the training patches (:class:`PriorDrop`)."""
    sizes = wide_sizes(nc)
    classes = int(max(sizes))
    hdc, hac = PhaseHistograms(nc, "all", name="histograms")(patch)
    h = CombStrength(nc, wide=True, name="comb")((hdc, hac))
    t = CoefficientView(nc, name="coefficients")(h)
    g = layers.Dense(16, activation="relu", name="phase_summary")(h)
    u = PhaseBroadcast(name="phase_context")((t, g))
    u = layers.Dense(phase_width, activation="relu", name="coef_phase_1")(u)
    u = layers.Dense(phase_width, activation="relu", name="coef_phase_2")(u)
    f = layers.Concatenate(name="evidence")([CoefficientPhasePool(name="phase_pool")(u),
                                             CoefficientHistograms(name="grid_histograms")(hac),
                                             StepEncoding(nc, name="q2_steps")(q2)])
    e = layers.Dense(width, activation="relu", name="coef_dense_1")(f)
    e = layers.Dense(width, activation="relu", name="coef_dense_2")(e)
    evidence = layers.Dense(classes, name="coef_logits")(e)
    ctx = layers.Concatenate(name="context_in")([layers.Flatten(name="all_coefficients")(e),
                                                 layers.Rescaling(1 / 16.0, name="q2_scaled")(q2)])
    ctx = layers.Dense(hidden, activation="relu", name="context")(layers.Dropout(dropout, name="context_drop")(ctx))
    prior = layers.Reshape((nc, classes), name="prior")(layers.Dense(nc * classes, name="prior_logits")(ctx))
    prior = PriorDrop(prior_drop, name="prior_drop")(prior)
    return BlockSelect(sizes, name="logits", dtype="float32")(layers.Add(name="coef_sum")([evidence, prior]))


def build_model(head: str = "class", depth: int = 40, growth: int = 12, dropout: float = 0.2,
                channels: int = 3, patch: int = 64, nc: int = NC, name: str | None = None, arch: str = "densenet",
                width: int = 128, hidden: int = 512, phases: str = "all", nf: int = NC,
                float32_stages: int = 0, stem: str = "he") -> keras.Model:
    """The estimator: backbone ``arch`` (``densenet``: DenseNet-``depth``, growth, dropout;
    ``dct``: :func:`dct_features` with ``width``, ``phases`` and ``nf``, then Dense(``hidden``, ReLU)),
    with the classification-like head (Dense(sum q_max) + a softmax per block, Section 3.1) or
    the regression head of [10] (Dense(nc), linear). The model takes pixel values 0..255 (RGB,
    or Y with ``channels=1``)."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}")
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}")
    if (arch == "coef") != (head == "wide"):
        raise ValueError("the coef backbone goes with the wide head, and only it")
    inp = keras.Input((patch, patch, channels), name="patch")  # pixel values 0..255
    if arch == "coef":
        if patch != 64:
            raise ValueError("the coef backbone reads 64x64 windows")
        q2 = keras.Input((nc,), name="q2")  # the last table's first nc zig-zag steps, read from the file
        logits = coef_network(inp, q2, nc, width, hidden, dropout)
        out = BlockSoftmax(head_sizes(head, nc), name="block_softmax", dtype="float32")(logits)
        return keras.Model({"patch": inp, "q2": q2}, out, name=name or "coef_wide")
    if arch == "densenet":
        scale = layers.Rescaling(1 / 255.0, name="scale", dtype="float32" if float32_stages else None)(inp)
        f = densenet_features(scale, depth, growth, dropout, float32_stages, stem)
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
    """``class``, ``wide`` or ``regression``, read from the width of a model's output."""
    width = model.output_shape[-1]
    return "regression" if width == NC else "wide" if width == int(wide_sizes().sum()) else "class"


def takes_q2(model) -> bool:
    """Whether a model is given the last table as a second input (the ``coef`` estimator)."""
    return len(model.inputs) > 1


def inputs(model, x, q2):
    """The input of ``model`` for patches x [B, 64, 64, C] of files whose last table has the
    zig-zag steps q2 ([64] for all, or [B, 64]): the patches alone, or with Q2's first nc steps."""
    if not takes_q2(model):
        return x
    n = max(t.shape[-1] for t in model.inputs if len(t.shape) == 2)
    q2 = np.asarray(q2, dtype="float32")[..., :n]
    return {"patch": x, "q2": np.ascontiguousarray(np.broadcast_to(q2, (len(x), n)))}


def decode_ops(y_pred, head: str, nc: int = NC):
    """The estimated q1 (float32, nc columns) from a head's output, with ``keras.ops``: for the
    class head q1_i = argmax_j f_ij + 1, block by block (Section 3.1; for the wide head the last
    class R_i + 1 means "at least R_i + 1"); for the regression head of [10] each output rounded
    and clipped to [1, q_max[i]]. The one rule: the training metrics use it on tensors,
    :func:`decode` on arrays."""
    qm = q_max(nc)
    if head in ("class", "wide"):
        cols = [ops.argmax(y_pred[:, a:b], axis=-1) + 1 for a, b in blocks(head_sizes(head, nc))]
        return ops.cast(ops.stack(cols, axis=1), "float32")
    return ops.clip(ops.round(ops.cast(y_pred, "float32")), 1.0, ops.convert_to_tensor(qm.astype("float32")))


def decode(pred, head: str, nc: int = NC) -> np.ndarray:
    """:func:`decode_ops` on a batch of predictions: int64 [N, nc]."""
    return np.asarray(ops.convert_to_numpy(decode_ops(ops.convert_to_tensor(np.asarray(pred)), head, nc)),
                      dtype=np.int64)


def confidence(pred, nc: int = NC, head: str = "class") -> np.ndarray:
    """The class (or wide) head's largest probability in each coefficient's softmax block: [N, nc]."""
    pred = np.asarray(pred)
    return np.stack([pred[:, a:b].max(axis=1) for a, b in blocks(head_sizes(head, nc))], axis=1)


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


MAX_CONFIG = 16 * 2 ** 20  # the largest config a .keras file may inflate to (ours: under 100 KiB)


def check_estimator(model, path="") -> None:
    """Refuse a loaded network that cannot be a qpaper estimator: input not [64, 64, 3] pixels
    (a second input only for Q2), an output width no head gives, non-finite weights; one line."""
    widths = {int(q_max(NC).sum()): "class", NC: "regression", int(wide_sizes(NC).sum()): "wide"}
    shape = tuple(model.inputs[0].shape[1:])
    if shape != (64, 64, 3):
        raise ValueError(f"model {path} takes inputs of shape {shape}; a qpaper estimator reads 64x64 RGB windows")
    width = model.output_shape[-1]
    if width not in widths:
        raise ValueError(f"model {path} gives {width} outputs; a qpaper estimator gives "
                         + ", ".join(f"{w} ({h})" for w, h in widths.items()))
    if not all(np.isfinite(np.asarray(w, dtype="float64")).all() for w in model.get_weights()):
        raise ValueError(f"model {path} has weights that are not finite (NaN or infinity)")
    # a probe batch: a class or wide head gives one probability distribution per coefficient (issue 32, item 4)
    from .jpeg import standard_table, zigzag
    x = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3)).astype("float32")
    pred = np.asarray(model.predict_on_batch(inputs(model, x, zigzag(standard_table(90)))), dtype="float64")
    if pred.shape != (2, width) or not np.isfinite(pred).all():
        raise ValueError(f"model {path} gives outputs that are not finite numbers on a probe patch")
    if widths[width] != "regression":
        for a, b in blocks(head_sizes(widths[width], NC)):
            block = pred[:, a:b]
            if block.min() < -1e-6 or np.abs(block.sum(1) - 1).max() > 1e-3:
                raise ValueError(f"model {path} gives {width} outputs that are not probabilities (a block sums to "
                                 f"{block.sum(1).max():.3g} on a probe patch): a qpaper estimator's head is one softmax "
                                 "per coefficient")


def load_model(path) -> keras.Model:
    """Load a ``.keras`` model with ``safe_mode=True`` (no arbitrary code)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model {p} not found")
    from . import losses  # noqa: F401 (registers the losses a checkpoint's compile config names)
    import zipfile
    try:  # sizes first: a small archive may inflate to gigabytes of config (issue 25, item 7)
        with zipfile.ZipFile(p) as z:
            big = [i.filename for i in z.infolist() if i.filename.endswith(".json") and i.file_size > MAX_CONFIG]
    except (zipfile.BadZipFile, OSError):
        raise ValueError(f"cannot load model {p}: not a readable .keras model file") from None
    if big:
        raise ValueError(f"cannot load model {p}: {big[0]} inflates beyond {MAX_CONFIG // 2 ** 20} MiB")
    try:
        return keras.saving.load_model(p, safe_mode=True)
    except Exception:  # a corrupt or foreign file: one line for the user
        raise ValueError(f"cannot load model {p}: not a readable .keras model file") from None
