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


def test_gpu_sessions_rehearsed_on_cpu_resume_evaluate_and_register(tmp_path, monkeypatch):
    """scripts/gpu_train.sh twice with tiny settings and the JAX backend, as on the GPU machine:
    the first session starts a run, is registered into models/gpu, the second resumes it from
    there (weights, optimizer, patches counted on), each writes its evaluation beside the prior."""
    pytest.importorskip("jax")
    from qpaper.sources import SourceError, wallpapers_source
    try:
        wallpapers_source()
    except SourceError:
        pytest.skip("wallpapers not prepared: run `make data`")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    models = tmp_path / "models"
    monkeypatch.setenv("QPAPER_MODELS", str(models))
    tiny = "--patches-per-qf1 4 --test-per-qf1 2 --depth 7 --growth 4 --epoch-patches 48 --batch 16 --reserve 0.2"

    def session(k, epochs):
        env = dict(os.environ, OUT=str(tmp_path / f"out{k}"), GPU_DATA=str(tmp_path / "data"), GPU_MINUTES="6",
                   GPU_WHEELS=str(tmp_path / "no-wheels"), GPU_ARGS=f"{tiny} --epochs {epochs}", PYTHON=sys.executable,
                   KERAS_BACKEND="jax", QPAPER_MODELS=str(models))
        r = subprocess.run(["bash", "scripts/gpu_train.sh"], capture_output=True, text=True, env=env, cwd=root)
        assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
        run = tmp_path / f"out{k}" / "run"
        assert (run / "console.log").exists() and "gpu: training for at most" in (run / "console.log").read_text()
        return run, json.loads((run / "eval.json").read_text()), json.loads((run / "config.json").read_text())

    run, ev, cfg = session(1, 1)
    assert cfg["backend"] == "jax" and cfg["profile"] == "gpu" and cfg["precision"] == "mixed_bfloat16"
    assert cfg["schedule"] == "cosine" and cfg["lr"] == 2e-3 and cfg["arch"] == "densenet" and cfg["depth"] == 7
    assert cfg["dataset_spec"]["source"] == "wallpapers" and len(cfg["dataset_spec"]["qf1"]) == 39
    assert ev["epochs_completed"] == 1 and ev["patches_seen"] == 48
    for test in ("random shift", "aligned"):
        assert set(ev[test]) == {"model", "prior"} and 0 <= ev[test]["prior"]["AvgAcc"] <= 1
    assert cli.main(["gpu", "register", str(run)]) == 0
    reg = models / "gpu" / "qf2-90-class-Lr"
    entry = json.loads((models / "gpu" / "manifest.json").read_text())["models"][0]
    assert entry["profile"] == "gpu" and entry["metrics"]["gpu"]["patches_seen"] == 48
    assert "constant prior" in (reg / "model-card.md").read_text()
    from qpaper.report import gpu_rows
    rows = gpu_rows(tmp_path)
    assert len(rows) == 4 and "DenseNet-7), GPU, 48 patches seen" in rows[0] and "constant prior" in rows[1]
    plain = model.load_model(reg / "model.keras")  # float32, loads on this CPU's TensorFlow
    assert all(w.dtype == "float32" for w in plain.weights) and plain.output_shape == (None, 226)

    run2, ev2, cfg2 = session(2, 2)  # resumes the registered run
    assert ev2["epochs_completed"] == 2 and ev2["session_epochs"] == 1 and ev2["patches_seen"] == 96
    assert "resuming" in (run2 / "console.log").read_text()
    assert len((run2 / "log.csv").read_text().splitlines()) == 3


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
