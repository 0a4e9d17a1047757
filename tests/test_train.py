"""Training and evaluation end to end on the smoke profile, resume, data parallelism, overfitting."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from qpaper import cli, dataset, losses, model, shards, train  # noqa: E402
from qpaper.djpeg import DatasetSpec  # noqa: E402
from qpaper.profiles import dataset_spec  # noqa: E402

QUIET = lambda *a: None  # noqa: E731


def qpaper(*args, env=None):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "qpaper.cli", *map(str, args)], capture_output=True, text=True, env=e)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    for split in ("train", "test"):
        shards.build(dataset_spec("smoke", split, 90), root / split, workers=1, progress=False, log=QUIET)
    return root


def test_a_tiny_model_overfits_64_fixed_patches(tmp_path):
    """The pipeline can learn: labels, head, loss and decoding fit together."""
    spec = DatasetSpec(source="skimage", split="all", qf2=90, qf1=(60, 95), patches_per_image=8,
                       patches_per_qf1=32, patch=32)
    shards.build(spec, tmp_path, workers=1, progress=False, log=QUIET)
    x, y = train.Patches(dataset.open_dataset(tmp_path), np.arange(64), 64).take(np.arange(64))
    keras.utils.set_random_seed(0)
    m = model.build_model("class", depth=7, growth=12, dropout=0.0, patch=32)
    m.compile(optimizer=keras.optimizers.Adam(3e-3), loss=losses.BlockLoss(None))
    before = float(np.mean(model.decode(m.predict(x, verbose=0), "class") == y))
    acc = before
    for _ in range(6):  # at most 6 x 160 = 960 steps
        m.fit(x, y, batch_size=16, epochs=40, verbose=0)
        acc = float(np.mean(model.decode(m.predict(x, verbose=0), "class") == y))
        if acc > 0.9:
            break
    assert before < 0.7 and acc > 0.9


def test_train_then_evaluate_from_the_command_line(smoke, tmp_path):
    run = tmp_path / "run"
    r = qpaper("train", "--profile", "smoke", "--data", smoke / "train", "--out", run, "--epochs", "1", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["head"] == "class" and cfg["loss"] == "Lr" and cfg["distance"] == "abs" and cfg["depth"] == 7
    assert (run / "model.keras").exists() and len((run / "log.csv").read_text().splitlines()) == 2
    out = tmp_path / "eval.csv"
    r = qpaper("evaluate", "--model", run / "model.keras", "--data", smoke / "test", "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "AvgAcc" in r.stdout and out.with_name("eval.csv.provenance.json").exists()
    import pandas as pd
    t = pd.read_csv(out)
    assert list(t.columns) == ["qf1", "qf2", "aligned", "coefficient", "patches", "accuracy", "mse"]
    assert set(t["qf1"]) == {60, 80, 95} and set(t["coefficient"]) == set(range(1, 16))
    assert t.groupby("qf1")["patches"].first().sum() <= 120
    bad = qpaper("evaluate", "--model", tmp_path / "missing.keras", "--data", smoke / "test", "--out", out)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_time_limit_then_resume(smoke, tmp_path):
    run = tmp_path / "run"
    st = train.train(smoke / "train", run, profile="smoke", epochs=3, max_minutes=0.001, verbose=0, log=QUIET)
    assert st["epochs_completed"] == 0 and st["last_epoch_partial"]
    assert (run / "checkpoint.keras").exists() and not (run / "model.keras").exists()
    with pytest.raises(ValueError, match="already holds"):
        train.train(smoke / "train", run, profile="smoke", epochs=3, verbose=0, log=QUIET)
    with pytest.raises(ValueError, match=r"other settings \(batch\)"):
        train.train(smoke / "train", run, profile="smoke", epochs=3, batch=32, resume=True, verbose=0, log=QUIET)
    with pytest.raises(ValueError, match=r"other settings \(epochs\)"):  # a plan may grow, never shrink
        train.train(smoke / "train", run, profile="smoke", epochs=2, resume=True, verbose=0, log=QUIET)
    st = train.train(smoke / "train", run, profile="smoke", epochs=3, resume=True, verbose=0, log=QUIET)
    assert st["epochs_completed"] == 3 and (run / "model.keras").exists()
    import pandas as pd
    log = pd.read_csv(run / "log.csv")
    # the cut first epoch is logged as partial and trained again after the resume; patches count on
    assert log["epoch"].tolist() == [1, 1, 2, 3] and log["partial"].tolist() == [1, 0, 0, 0]
    assert (log["seconds"] > 0).all() and log["patches"].is_monotonic_increasing
    assert log["patches"].iloc[-1] - log["patches"].iloc[0] == 3 * (log["patches"].iloc[2] - log["patches"].iloc[1])
    m = model.load_model(run / "model.keras")
    assert m.optimizer.iterations.numpy() > 0


def test_validation_uses_held_out_scenes(smoke):
    d = dataset.open_dataset(smoke / "train")
    meta = np.concatenate(d["meta"])
    held = train.holdout_scenes(meta, 0.2, 0)
    assert len(held) == 1 and held[0] in meta["scene"]
    assert np.array_equal(held, train.holdout_scenes(meta, 0.2, 0))
    assert len(train.holdout_scenes(meta[meta["scene"] < 2], 0.2, 0)) == 0  # fewer than 3 scenes: none


def test_data_parallel_on_two_logical_cpus(smoke, tmp_path):
    r = qpaper("train", "--profile", "smoke", "--data", smoke / "train", "--out", tmp_path / "dp", "--epochs", "1",
               "--devices", "2", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "data-parallel over 2 replicas" in r.stdout
    assert (tmp_path / "dp" / "model.keras").exists()


def test_model_and_loss_under_jax(tmp_path):
    pytest.importorskip("jax")
    code = ("import numpy as np, keras; from qpaper import model, losses;"
            "m = model.build_model('class', depth=7, growth=4, patch=16);"
            "y = np.array([[2] * 15], 'float32'); p = np.full((1, 226), 0.1, 'float32');"
            "print(keras.backend.backend(), float(losses.BlockLoss(0.8)(y, p)), m(np.zeros((1, 16, 16, 3))).shape)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, KERAS_BACKEND="jax"))
    assert r.returncode == 0, r.stderr[-2000:]
    ref = float(losses.BlockLoss(0.8)(np.array([[2] * 15], "float32"), np.full((1, 226), 0.1, "float32")))
    backend, value, _ = r.stdout.split(" ", 2)
    assert backend == "jax" and float(value) == pytest.approx(ref, rel=1e-5)


def test_learning_rate_schedules():
    cfg = {"schedule": "cosine", "lr": 2e-3, "warmup": 0.1}
    lr = train.learning_rate(cfg, 100)
    at = lambda step: float(keras.ops.convert_to_numpy(lr(step)))  # noqa: E731
    assert at(0) == pytest.approx(0.0) and at(5) == pytest.approx(1e-3, rel=1e-3)
    assert at(10) == pytest.approx(2e-3, rel=1e-3) and at(55) < at(20) < 2e-3
    assert at(100) == pytest.approx(2e-5, rel=1e-2)  # 1% of the peak at the last step
    assert train.learning_rate({"schedule": "constant", "lr": 1e-5}, 100) == 1e-5
    with pytest.raises(ValueError):
        train.learning_rate({"schedule": "step", "lr": 1e-3}, 10)


def test_the_dct_backbone_trains_and_logs_patches_seen(smoke, tmp_path):
    st = train.train(smoke / "train", tmp_path / "run", profile="smoke", arch="dct", epochs=2, epoch_patches=64,
                     verbose=0, log=QUIET)
    assert st["epochs_completed"] == 2
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["arch"] == "dct" and cfg["schedule"] == "cosine"
    import pandas as pd
    log = pd.read_csv(tmp_path / "run" / "log.csv")
    assert log["patches"].tolist() == [64, 128] and (log["patches_per_s"] > 0).all()
    m = model.load_model(tmp_path / "run" / "model.keras")
    assert any(op.name == "histograms" for op in m.layers) and m.optimizer.iterations.numpy() == 2 * 64 // 16


def test_a_run_in_this_process_after_another_equals_a_fresh_process(smoke, tmp_path):
    """``qpaper experiments models`` trains every model with ``train.train`` in one process (a
    ``clear_session`` between them): the second model of such a process has the same log and the
    same weights as the same run of ``qpaper train`` in a fresh process."""
    import keras
    import pandas as pd
    r = qpaper("train", "--profile", "smoke", "--data", smoke / "train", "--out", tmp_path / "fresh", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    train.train(smoke / "train", tmp_path / "first", profile="smoke", head="regression", verbose=0, log=QUIET)
    keras.utils.clear_session()
    train.train(smoke / "train", tmp_path / "second", profile="smoke", verbose=0, log=QUIET)
    logs = [pd.read_csv(tmp_path / n / "log.csv").drop(columns=["seconds", "patches_per_s"]) for n in ("fresh", "second")]
    pd.testing.assert_frame_equal(*logs)
    a, b = (model.load_model(tmp_path / n / "model.keras").get_weights() for n in ("fresh", "second"))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
