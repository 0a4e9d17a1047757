"""Issue 22 on the CPU: the fast loop of a lent GPU session (qpaper.fastfit), its recipes, the
sweep-pick-continue-resume session of scripts/gpu_train.sh, registration of a run that learned and
of one that did not, the compilation cache, and the precision probe."""
import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from qpaper import gpurun, losses, model, shards  # noqa: E402
from qpaper.profiles import dataset_spec  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JAX = dict(KERAS_BACKEND="jax")


def run_py(code: str, **env):
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, **JAX, **env))
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    shards.build(dataset_spec("smoke", "train", 90), root / "train", workers=1, progress=False, log=lambda *a: None)
    return root / "train"


def test_fast_loop_is_the_loss_adam_and_state_of_keras(tiny):
    """One compiled call of the loop: its first loss is L^r of the model on that batch (training
    mode), a rate of 0 leaves every weight as it was, a rate > 0 moves them, two loops from the same
    seed give the same bytes, and sync() + save + load gives back the trained network and Adam."""
    pytest.importorskip("jax")
    out = run_py(f"""
import json, numpy as np, keras
from qpaper import fastfit, losses
from qpaper.model import build_model, load_model
fastfit.configure(None)
data = fastfit.DeviceData({{"t": "{tiny}"}})
def fresh():
    keras.utils.set_random_seed(3)
    m = build_model("class", 7, 4, 0.0)
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss=losses.get_loss("class", "Lr"))
    return m
idx = np.arange(16)
m = fresh()
x = np.asarray(data.x)[idx].astype("float32")
ref = float(losses.get_loss("class", "Lr")(np.asarray(data.y)[idx], m(x, training=True)))
loop = fastfit.Loop(m, 8, 2)
w0 = [np.asarray(w) for w in loop.state[0]]
met = loop.run(data, idx, np.zeros(2), np.full(2, 0.8))
same = all(np.array_equal(a, np.asarray(b)) for a, b in zip(w0, loop.state[0]))
met2 = loop.run(data, idx, np.full(2, 1e-2), np.full(2, 0.8))
moved = any(not np.array_equal(a, np.asarray(b)) for a, b in zip(w0, loop.state[0]))
other = fastfit.Loop(fresh(), 8, 2)
other.run(data, idx, np.zeros(2), np.full(2, 0.8)); other.run(data, idx, np.full(2, 1e-2), np.full(2, 0.8))
twin = all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(loop.state[0], other.state[0]))
loop.sync(); m.save("{tiny}/../m.keras")
back = load_model("{tiny}/../m.keras")
pred_same = np.array_equal(fastfit.Loop(back, 8, 2).predict(data, idx), loop.predict(data, idx))
before = loop.predict(data, idx)
rate = fastfit.synthetic_rate(loop, data, 0.5)
kept = np.array_equal(before, loop.predict(data, idx))
new = fresh()
loop.load(new)  # the same compiled program, the weights and a fresh Adam of another model
reloaded = np.array_equal(loop.predict(data, idx), fastfit.Loop(new, 8, 2).predict(data, idx))
fresh_adam = int(np.asarray(loop.state[2][0])) == 0
print(json.dumps({{"ref": ref, "first": float(met[0, 0]), "same": same, "moved": moved, "twin": twin,
                  "iterations": int(back.optimizer.iterations.numpy()), "pred_same": bool(pred_same),
                  "rate": rate, "kept": bool(kept), "reloaded": bool(reloaded), "fresh_adam": fresh_adam}}))
""")
    r = json.loads(out.strip().splitlines()[-1])
    assert r["first"] == pytest.approx(r["ref"], rel=1e-4)
    assert r["same"] and r["moved"] and r["twin"] and r["pred_same"] and r["iterations"] == 4
    assert r["rate"] > 0 and r["kept"] and r["reloaded"] and r["fresh_adam"]


def test_recipes_are_complete_and_the_sweep_names_real_ones():
    assert set(gpurun.SWEEP) <= set(gpurun.RECIPES) and 2 <= len(gpurun.SWEEP) <= 4
    for name in gpurun.RECIPES:
        r = gpurun.recipe(name)
        assert set(r) == set(gpurun.RECIPE_DEFAULTS) and r["stem"] in model.STEMS
        assert 0 < r["c"] <= 1 and 0 <= r["ce_first"] <= 1 and 0 <= r["aligned_first"] <= 1
    assert gpurun.recipe("first-session") == gpurun.RECIPE_DEFAULTS
    with pytest.raises(ValueError, match="unknown recipe"):
        gpurun.recipe("nope")


def test_schedule_warms_up_then_holds_or_decays():
    sweep = gpurun._schedule(1e-3, 10)
    assert sweep([0])[0] == pytest.approx(1e-4) and sweep([9, 50])[1] == pytest.approx(1e-3)
    cos = gpurun._schedule(1e-3, 0, 100)
    assert cos([0])[0] == pytest.approx(1e-3) and cos([100])[0] == pytest.approx(1e-5) and cos([50])[0] < 1e-3


def test_float32_stages_and_highpass_stem():
    """Under mixed bfloat16 the first stages compute in float32 when asked; the highpass stem
    starts as zero-sum filters and round-trips through save/load."""
    from qpaper.train import dtype_policy
    with dtype_policy("mixed_bfloat16"):
        m = model.build_model("class", 7, 4, 0.0, float32_stages=2, stem="highpass")
        plain = model.build_model("class", 7, 4, 0.0)
    policy = {l.name: l.dtype_policy.name for l in m.layers}
    assert policy["scale"] == "float32" and policy["stem"] == "float32"
    convs = [l for l in m.layers if isinstance(l, keras.layers.Conv2D)]
    assert convs[1].dtype_policy.name == "float32"  # first dense block
    assert convs[-1].dtype_policy.name == "mixed_bfloat16"  # third block
    assert all(l.dtype_policy.name == "mixed_bfloat16" for l in plain.layers if isinstance(l, keras.layers.Conv2D))
    k = np.asarray(m.get_layer("stem").kernel)
    assert np.abs(k.sum(axis=(0, 1))).max() < 1e-5 and np.abs(k).max() > 0.01
    k0 = np.asarray(plain.get_layer("stem").kernel)
    assert np.abs(k0.sum(axis=(0, 1))).max() > 0.01
    with pytest.raises(ValueError, match="stem"):
        model.build_model("class", 7, 4, stem="srm")


def test_round_significant_is_the_formats_rounding():
    x = np.array([1.0, 254 / 255, 100 / 255, 3.0])
    assert np.array_equal(gpurun.round_significant(x, 24), x.astype(np.float32).astype(np.float64))
    import ml_dtypes  # ships with jax and tensorflow: the real bfloat16
    assert np.array_equal(gpurun.round_significant(x, 8), x.astype(ml_dtypes.bfloat16).astype(np.float64))
    assert np.array_equal(gpurun.round_significant(x, 11), x.astype(np.float16).astype(np.float64))


def _session(tmp_path, k, minutes, models, extra=""):
    tiny = ("--patches-per-qf1 4 --test-per-qf1 2 --depth 7 --growth 4 --dropout 0 --batch 8 --steps-per-call 2 "
            "--reserve 0.1 --eval-every 5 --warmup-steps 2 " + extra)
    env = dict(os.environ, OUT=str(tmp_path / f"out{k}"), GPU_DATA=str(tmp_path / "data"), GPU_MINUTES=str(minutes),
               GPU_WHEELS=str(tmp_path / "no-wheels"), GPU_ARGS=tiny, PYTHON=sys.executable, QPAPER_MODELS=str(models),
               GPU_RECIPES="first-session,f32-stem,curriculum", GPU_BATCH="8")
    r = subprocess.run(["bash", "scripts/gpu_train.sh"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    run = tmp_path / f"out{k}" / "run"
    return run, json.loads((run / "eval.json").read_text()), (run / "console.log").read_text()


def test_gpu_sessions_rehearsed_on_cpu_sweep_pick_continue_resume_register(tmp_path, monkeypatch):
    """scripts/gpu_train.sh as on the device, tiny and on the CPU: a first session sweeps three
    recipes on the same patches, picks the better by validation accuracy, continues it, writes
    8 files at most (each under 16 MiB); a run that did not learn goes to results/gpu, one that
    did to models/gpu with its cache; a second session resumes it without a sweep."""
    pytest.importorskip("jax")
    from qpaper.sources import SourceError, wallpapers_source
    try:
        wallpapers_source()
    except SourceError:
        pytest.skip("wallpapers not prepared: run `make data`")
    models = tmp_path / "models"
    monkeypatch.setenv("QPAPER_MODELS", str(models))
    run, ev, console = _session(tmp_path, 1, 1.6, models)
    files = sorted(p.name for p in run.iterdir())
    assert files == sorted(["config.json", "state.json", "log.csv", "sweep.csv", "checkpoint.keras", "eval.json",
                            "jax-cache.tar", "console.log"])
    assert all(p.stat().st_size < 16 * 2 ** 20 for p in run.iterdir())
    assert "synthetic data" in console and "first call" in console and "sweep done, best" in console
    import pandas as pd
    sweep = pd.read_csv(run / "sweep.csv")
    assert list(sweep["recipe"]) == ["first-session", "f32-stem", "curriculum"]  # the last two share a program
    assert sweep["patches"].nunique() == 1 and sweep["patches"].iloc[0] > 0  # the same patches each
    best = sweep.loc[sweep["val_gain"].idxmax(), "recipe"]
    cfg = json.loads((run / "config.json").read_text())
    assert ev["recipe"] == cfg["recipe"] == best and cfg["trainer"] == "fastfit"
    log = pd.read_csv(run / "log.csv")
    assert {"sweep", "continue"} <= set(log["phase"]) and (log["val_prior"] >= 0).all()
    state = json.loads((run / "state.json").read_text())
    assert ev["patches_seen"] == state["patches"] > sweep["patches"].iloc[0]
    assert ev["learned"] is False  # 156 patches cannot teach it
    for test in ("random shift", "aligned"):
        assert set(ev[test]) == {"model", "prior"}
    with tarfile.open(run / "jax-cache.tar") as t:
        key = json.loads(t.extractfile(gpurun.KEY_FILE).read())
    assert key["platform"] == "cpu" and key["jax"]

    # not learned: a measured negative result under results/gpu, nothing in models/gpu
    dest = gpurun.register(run, root=tmp_path, log=lambda *a: None)
    assert dest.parent == tmp_path / "results" / "gpu" and (dest / "eval.json").exists()
    assert "did not learn" in (dest / "README.md").read_text() and not (dest / "checkpoint.keras").exists()
    assert not gpurun.committed_run().exists() and (models / "gpu-cache" / "jax-cache.tar").exists()

    # learned (the threshold met, as a lent GPU's run would): registered with a float32 model
    ev_l = dict(ev, learned=True)
    (run / "eval.json").write_text(json.dumps(ev_l))
    reg = gpurun.register(run, root=tmp_path, log=lambda *a: None)
    assert reg == gpurun.committed_run()
    entry = json.loads((models / "gpu" / "manifest.json").read_text())["models"][0]
    assert entry["metrics"]["gpu"]["recipe"] == best and entry["sha256"]
    plain = model.load_model(reg / "model.keras")
    assert all(w.dtype == "float32" for w in plain.weights) and plain.output_shape == (None, 226)

    run2, ev2, console2 = _session(tmp_path, 2, 1.0, models)  # resumes the registered run, cache restored
    assert "resuming" in console2 and "sweep done" not in console2 and "compilation cache restored" in console2
    state2 = json.loads((run2 / "state.json").read_text())
    assert state2["sessions"] == 2 and ev2["patches_seen"] > ev["patches_seen"] and ev2["recipe"] == best
    assert len(pd.read_csv(run2 / "log.csv")) > len(log)


def test_gpu_run_refusals_are_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "qpaper.cli", "gpu", "run", "--out", str(tmp_path / "o"), "--minutes",
                        "1", "--recipes", "fast-and-wrong"], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, **JAX))
    assert r.returncode != 0 and "unknown recipe" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()
    r = subprocess.run([sys.executable, "-m", "qpaper.cli", "gpu", "register", str(tmp_path)], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode != 0 and "not a finished gpu run" in r.stderr and "Traceback" not in r.stderr


def test_precision_probe_on_a_trained_dct_model(tiny, tmp_path):
    """The probe's rows: float32 moves no pixel; bfloat16 moves some by a quarter grey level."""
    shards.build(dataset_spec("smoke", "test", 90), tmp_path / "test", workers=1, progress=False, log=lambda *a: None)
    m = model.build_model("class", arch="dct", nf=15, width=8, hidden=8)
    df = gpurun.precision_probe(m, {"random shift": tmp_path / "test"})
    assert list(df["format"]) == list(gpurun.FORMATS)
    moved = df.set_index("format")["random shift: pixels moved by >= 1/4 grey level"]
    assert moved["float32"] == 0 and moved["bfloat16"] > 0.1
