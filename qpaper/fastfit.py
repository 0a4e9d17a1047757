"""Training on a lent GPU, fast (issue 22): the training of Section 4.3 with the model, loss and
Adam of :mod:`qpaper.train`, only the loop differs -- a keras.io "training loop from scratch in
JAX":

- the whole training set stays as uint8 in the accelerator's memory (390,000 patches are 4.8 GB)
  and each batch is gathered there by index; no Python loader between the GPU and its data;
- ``steps`` optimizer steps per compiled call (``jax.lax.scan``), one batch shape for training,
  validation and prediction, so each program compiles once; the learning rate and the weight c of
  L^r (Eq. 5) are inputs of the program, so recipes that differ only in them share it;
- JAX's persistent compilation cache and XLA's GPU autotuning level set before JAX starts
  (:func:`configure`), and the seconds from model build to the first step logged.

JAX backend only (the device has no TensorFlow); the same code runs on this CPU in the tests.
"""

from __future__ import annotations

import os
import time

import numpy as np

from .jpeg import NC


def configure(cache_dir=None, autotune: int | None = None, precision: str = "highest") -> dict:
    """Before JAX's first computation: XLA's GPU autotuning level (``XLA_FLAGS``; 0 turns it off,
    4 is XLA's default), the persistent compilation cache in ``cache_dir`` (every program
    cached), float32 matmul and convolution precision (``highest``: no TF32 rounding of the
    pixels, whatever runs in float32). Returns what this machine is, for the run's log."""
    if autotune is not None and "xla_gpu_autotune_level" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_gpu_autotune_level={autotune}".strip()
    import jax
    if cache_dir:
        os.makedirs(cache_dir, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(cache_dir))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    jax.config.update("jax_default_matmul_precision", precision)
    dev = jax.devices()[0]
    import jaxlib
    return {"platform": dev.platform, "device_kind": dev.device_kind, "devices": jax.device_count(),
            "jax": jax.__version__, "jaxlib": jaxlib.__version__, "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "matmul_precision": precision}


class DeviceData:
    """Patches of built datasets in device memory: ``x`` uint8 [N, 64, 64, C], ``y`` the labels
    clipped to the head's classes (int32 [N, nc]), and on the host the true q1 and meta of each
    patch and the index range of each named part (e.g. train, train-aligned, test, test-aligned)."""

    def __init__(self, parts: dict, nc: int = NC, sizes=None):
        import jax
        from .dataset import open_dataset
        from .losses import clip_labels
        xs, q1, meta, self.ranges, self.manifests = [], [], [], {}, {}
        n = 0
        for name, folder in parts.items():
            d = open_dataset(folder, verify=False)
            x = np.concatenate(d["x"])
            xs.append(x)
            q1.append(np.concatenate(d["q1"])[:, :nc].astype(np.int64))
            meta.append(np.concatenate(d["meta"]))
            self.ranges[name] = (n, n + len(x))
            self.manifests[name] = d["manifest"]
            n += len(x)
        self.q1, self.meta = np.concatenate(q1), np.concatenate(meta)
        self.nc = nc
        self.x = jax.device_put(np.concatenate(xs))
        self.y = jax.device_put(clip_labels(self.q1, nc, sizes)[0].astype(np.int32))

    def index(self, name: str) -> np.ndarray:
        a, b = self.ranges[name]
        return np.arange(a, b, dtype=np.int64)

    @property
    def nbytes(self) -> int:
        return int(self.x.size)


class Loop:
    """The jitted training and prediction of one compiled Keras model (model + Adam + the class
    head's loss terms), its state held as arrays between calls; :meth:`sync` writes the state
    back into the Keras variables (for ``model.save``)."""

    def __init__(self, model, batch: int, steps: int, distance: str = "abs", log=print):
        import jax
        from .losses import block_terms
        from .model import decode_ops, head_of, head_sizes
        self.model, self.batch, self.steps, self.log = model, int(batch), int(steps), log
        opt = model.optimizer
        if not opt.built:
            opt.build(model.trainable_variables)
        self.lr_slot = next(i for i, v in enumerate(opt.variables) if v.path.endswith("learning_rate"))
        head = head_of(model)
        sizes = [int(s) for s in head_sizes(head)]
        self.state = self._read()
        cpu = jax.devices()[0].platform == "cpu"

        def loss_terms(tv, ntv, x, y):
            pred, ntv = model.stateless_call(tv, ntv, x, training=True)
            ce, dist = block_terms(y, pred, sizes, distance)
            return ce, dist, pred, ntv

        def train(state, data_x, data_y, idx, lr, c):
            def one(carry, inp):
                tv, ntv, ov = carry
                i, lr_, c_ = inp
                x, y = data_x[i].astype("float32"), data_y[i]

                def f(tv_):
                    ce, dist, pred, ntv_ = loss_terms(tv_, ntv, x, y)
                    return (c_ * ce + (1.0 - c_) * dist).mean(), (pred, ntv_, ce.mean(), dist.mean())

                (loss, (pred, ntv, ce, dist)), grads = jax.value_and_grad(f, has_aux=True)(tv)
                ov = list(ov)
                ov[self.lr_slot] = lr_.astype(ov[self.lr_slot].dtype)
                tv, ov = opt.stateless_apply(ov, grads, tv)
                acc = (decode_ops(pred, head) == y.astype("float32")).astype("float32").mean()
                return (tv, ntv, ov), jax.numpy.stack([loss, ce, dist, acc])

            if not cpu:
                return jax.lax.scan(one, state, (idx, lr, c))
            # XLA's CPU backend runs convolutions inside a loop body about 10x slower (measured, even
            # a loop of one step): there the steps are written out one after the other
            ms = []
            for k in range(idx.shape[0]):
                state, m = one(state, (idx[k], lr[k], c[k]))
                ms.append(m)
            return state, jax.numpy.stack(ms)

        def predict(state, x, idx):
            tv, ntv, _ = state
            pred, _ = model.stateless_call(tv, ntv, x[idx].astype("float32"), training=False)
            return decode_ops(pred, head).astype("int32")

        self._train = jax.jit(train, donate_argnums=(0,))
        self._predict = jax.jit(predict)

    def _read(self):
        m, opt = self.model, self.model.optimizer
        return ([v.value for v in m.trainable_variables], [v.value for v in m.non_trainable_variables],
                [v.value for v in opt.variables])

    def copy_state(self):
        """A copy of the state on the device (a call donates the state it is given)."""
        import jax
        return jax.tree_util.tree_map(lambda a: a.copy(), self.state)

    def load(self, model):
        """Start again from the weights of ``model`` (same network: same variables in the same
        order) with its fresh optimizer: a new recipe reuses this loop's compiled program."""
        opt = model.optimizer
        if not opt.built:
            opt.build(model.trainable_variables)
        new = ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
               [v.value for v in opt.variables])
        old = self.state
        if [len(p) for p in new] != [len(p) for p in old] or any(
                a.shape != b.shape for p, q in zip(new, old) for a, b in zip(p, q)):
            raise ValueError("load() needs the same network")
        self.state = new

    def sync(self):
        """The loop's state into the model's and the optimizer's variables."""
        tv, ntv, ov = self.state
        for v, a in zip(self.model.trainable_variables, tv):
            v.assign(a)
        for v, a in zip(self.model.non_trainable_variables, ntv):
            v.assign(a)
        for v, a in zip(self.model.optimizer.variables, ov):
            v.assign(a)

    def run(self, data: DeviceData, idx: np.ndarray, lr: np.ndarray, c: np.ndarray) -> np.ndarray:
        """``len(idx) // batch`` steps on the patches ``idx`` (their order is the batches'), with
        per-step learning rates and c; returns [steps, 4]: loss, L, expected distance, accuracy."""
        k = len(idx) // self.batch
        if k % self.steps:
            raise ValueError(f"{k} steps is not a multiple of {self.steps} steps per call")
        out = []
        for a in range(0, k, self.steps):
            s = slice(a, a + self.steps)
            i = idx[a * self.batch:(a + self.steps) * self.batch].reshape(self.steps, self.batch).astype(np.int32)
            self.state, m = self._train(self.state, data.x, data.y, i, np.asarray(lr[s], np.float32),
                                        np.asarray(c[s], np.float32))
            out.append(m)
        return np.concatenate([np.asarray(m) for m in out]) if out else np.zeros((0, 4))

    def predict(self, data: DeviceData, idx: np.ndarray) -> np.ndarray:
        """Decoded q1 estimates of the patches ``idx`` in batches of the training shape (the last
        one padded), int64 [len(idx), nc]."""
        out = []
        for a in range(0, len(idx), self.batch):
            i = idx[a:a + self.batch]
            pad = np.concatenate([i, np.full(self.batch - len(i), i[0])]).astype(np.int32)
            out.append(np.asarray(self._predict(self.state, data.x, pad))[:len(i)])
        return np.concatenate(out).astype(np.int64) if out else np.zeros((0, data.nc), np.int64)

    def time_first_call(self, data: DeviceData, idx, lr, c) -> tuple[float, np.ndarray]:
        """Seconds of the first call (compilation, or a cache hit, plus ``steps`` steps)."""
        t = time.time()
        m = self.run(data, idx, lr, c)
        return time.time() - t, m


def synthetic_rate(loop: Loop, data: DeviceData, seconds: float = 5.0) -> float:
    """Patches/s of the compiled training program on random bytes of the training set's shape in
    device memory (what the network alone can do; the same program, no recompilation), measured on
    a copy of the loop's state (the loop's own state is left as it was)."""
    import jax
    fake = DeviceData.__new__(DeviceData)
    fake.x = jax.random.bits(jax.random.PRNGKey(0), data.x.shape, dtype=data.x.dtype)
    fake.y = data.y
    saved = loop.copy_state()
    n = loop.batch * loop.steps
    idx = np.arange(n) % data.x.shape[0]
    lr, c = np.zeros(loop.steps), np.full(loop.steps, 0.8)
    np.asarray(loop.run(fake, idx, lr, c))  # warm
    t, k = time.time(), 0
    while time.time() - t < seconds or k == 0:
        m = loop.run(fake, idx, lr, c)
        k += 1
    np.asarray(m)
    rate = k * n / (time.time() - t)
    loop.state = saved
    del fake
    return rate
