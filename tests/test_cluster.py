"""Issue 23: ``qpaper estimate`` and ``qpaper dataset build`` on a real Dask ``LocalCluster``
(worker processes), the same answers and bytes as one process; ``--resume`` after a killed run;
one line where Dask is missing or the scheduler cannot be reached."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qpaper import batch, cli, cluster, jpeg, shards
from qpaper.djpeg import DatasetSpec
from qpaper.profiles import datasets

pytest.importorskip("distributed")  # the dev extra installs it (make test); the cluster extra for users

QPAPER = [sys.executable, "-m", "qpaper.cli"]


def collection(root: Path, photo, n: int) -> Path:
    """``n`` double JPEGs (QF1 60..95 -> QF2 90) in a folder and a subfolder, and a broken one."""
    (root / "sub").mkdir(parents=True)
    for k in range(n):
        crop = photo[(k % 4) * 16:, (k % 5) * 24:][:256, :320]
        name = root / ("sub" if k % 3 == 0 else "") / f"p{k:02d}.jpg"
        name.write_bytes(jpeg.encode_opencv(jpeg.decode(jpeg.encode_opencv(crop, 60 + 5 * (k % 8))), 90))
    (root / "sub" / "broken.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    return root


def test_a_cluster_gives_the_answers_and_bytes_of_one_process(capfd, tmp_path, coffee, registry_dir, monkeypatch):
    monkeypatch.setenv("QPAPER_MODELS", str(registry_dir))
    photos = collection(tmp_path / "photos", coffee, 9)
    out = {}
    with cluster.client("local:2") as c:
        for name, extra in (("local", []), ("cluster", ["--scheduler", c.scheduler.address])):
            status = cli.main(["estimate", str(photos), "--csv", str(tmp_path / f"{name}.csv"), "--jsonl",
                               str(tmp_path / f"{name}.jsonl"), "--quiet", *extra])
            text, err = capfd.readouterr()
            assert status == 2 and "1 of 10 files could not be estimated" in err
            out[name] = [text] + [(tmp_path / f"{name}.{x}").read_bytes() for x in ("csv", "jsonl")]
        stats = batch.worker_stats(c)
    assert out["cluster"] == out["local"]
    rows = [json.loads(x) for x in out["local"][2].splitlines()]
    assert len(rows) == 10 and sum("error" in r for r in rows) == 1 and Path(rows[0]["file"]).name == "p01.jpg"
    assert all(r["method"] == "file" and len(r["q1"]) == 15 for r in rows if "error" not in r)  # the default
    assert not list(tmp_path.glob("*.partial"))
    # both worker processes worked, and each loaded the one model once for all its files
    assert len(stats) == 2 and sum(s["files"] for s in stats.values()) == 10
    assert all(s["files"] >= 1 and s["loads"] == 1 for s in stats.values())


def _records(path: Path) -> int:
    return max(0, len(path.read_bytes().splitlines()) - 1) if path.exists() else 0


def test_a_killed_run_leaves_whole_rows_and_resume_finishes_it(capfd, tmp_path, coffee, registry_dir, monkeypatch):
    monkeypatch.setenv("QPAPER_MODELS", str(registry_dir))
    photos = collection(tmp_path / "photos", coffee, 16)
    env = {**os.environ, "QPAPER_MODELS": str(registry_dir)}
    args = ["estimate", str(photos), "--csv", str(tmp_path / "out.csv"), "--jsonl", str(tmp_path / "out.jsonl"),
            "--quiet"]
    # the uninterrupted run, the reference
    ref = subprocess.run(QPAPER + args[:2] + ["--csv", str(tmp_path / "ref.csv"), "--jsonl",
                                              str(tmp_path / "ref.jsonl"), "--quiet"], env=env, capture_output=True)
    assert ref.returncode == 2, ref.stderr
    # the same run, killed (SIGKILL: no clean-up at all) once 4 files are in
    p = subprocess.Popen(QPAPER + args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = tmp_path / "out.csv.partial"
    t0 = time.time()
    while _records(partial) < 4 and p.poll() is None and time.time() - t0 < 120:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out.jsonl").exists()
    kept = [batch.Table(tmp_path / "out.csv", "csv").records(partial),
            batch.Table(tmp_path / "out.jsonl", "jsonl").records(tmp_path / "out.jsonl.partial")]
    assert 4 <= len(kept[0]) < 17 and abs(len(kept[0]) - len(kept[1])) <= 1  # whole rows only, as files finished
    # a write torn by a crash at the end of each partial is dropped on resume
    with open(partial, "a") as f:
        f.write(f'{photos / "p15.jpg"},90,cnn,"0 ')
    with open(tmp_path / "out.jsonl.partial", "a") as f:
        f.write('{"file": "torn')
    # without --resume the stopped run is not thrown away
    assert cli.main(args) == 2
    assert "holds a stopped run: add --resume" in capfd.readouterr().err
    # resumed on a local cluster: only the missing files are estimated, and the tables are the reference's bytes
    assert cli.main(args + ["--resume", "--scheduler", "local:2"]) == 2
    err = capfd.readouterr().err
    done = min(len(k) - sum(failed for _, _, failed, _ in k) for k in kept)
    assert f"resuming: {done} of 17 files already in" in err and f"estimating {17 - done}" in err
    assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "ref.csv").read_bytes()
    assert (tmp_path / "out.jsonl").read_bytes() == (tmp_path / "ref.jsonl").read_bytes()
    assert not partial.exists() and not list(tmp_path.glob("*.lock"))
    # resuming a finished table retries only the file whose row holds an error; another method is refused
    assert cli.main(args + ["--resume", "--method", "file"]) == 2
    assert "resuming: 16 of 17 files" in capfd.readouterr().err
    before = (tmp_path / "out.csv").read_bytes()
    assert cli.main(args + ["--resume", "--method", "galvan"]) == 2
    err = capfd.readouterr().err
    assert "other options (method=file model=registered" in err and "not method=galvan" in err
    assert len(err.strip().splitlines()) == 1
    assert (tmp_path / "out.csv").read_bytes() == before


def test_partial_tables_keep_whole_records_and_refuse_damage(tmp_path):
    t = batch.Table(tmp_path / "t.csv", "csv")
    names = ["a.jpg", "b, with a comma.jpg", 'c "quoted"\nand a newline.jpg']
    rows = [{"file": n, "error": "unreadable" if k == 1 else ""} for k, n in enumerate(names)]
    body = t.header + "".join(t.encode(r) for r in rows)
    t.partial.write_text(body, newline="")
    assert [(f, failed) for f, _, failed, _ in t.records(t.partial)] == [(n, k == 1) for k, n in enumerate(names)]
    for cut in range(len(t.header) + 1, len(body)):  # a run killed anywhere: only the whole records before it
        t.partial.write_text(body[:cut], newline="")
        got = [f for f, *_ in t.records(t.partial)]
        assert got == [r["file"] for r in rows if body.index(t.encode(r)) + len(t.encode(r)) <= cut]
    t.partial.write_text(body.replace(t.encode(rows[1]), t.encode(rows[1]).replace(",,", ",", 3)), newline="")
    with pytest.raises(ValueError, match="record 2 is damaged"):
        t.records(t.partial)
    t.partial.write_text(body.replace('"b, with a comma.jpg"', '"b, with a comma.jpg', 1), newline="")
    with pytest.raises(ValueError, match="record 2 is damaged"):  # an unclosed quote swallowing what follows
        t.records(t.partial)
    t.partial.write_text("name,size\r\nx.jpg,3\r\n", newline="")
    with pytest.raises(ValueError, match="not a table of qpaper estimate"):
        t.records(t.partial)
    j = batch.Table(tmp_path / "t.jsonl", "jsonl")
    j.partial.write_text("".join(j.encode(r) for r in rows) + '{"file": "d.jpg", "q1"')
    assert [f for f, *_ in j.records(j.partial)] == names


def test_resume_keeps_what_a_table_holds_and_one_run_writes_a_table(tmp_path, coffee):
    """A stopped run that started over ignores the older finished table; a file in one table but
    not the other is estimated again without losing either table's other rows; a second run on a
    table is refused; a file named twice gets one row; one file under two names is one output."""
    names = []
    for k, qf in enumerate((70, 80, 90)):
        names.append(tmp_path / f"{'abc'[k]}.jpg")
        names[-1].write_bytes(jpeg.encode_opencv(jpeg.decode(jpeg.encode_opencv(coffee[:192, :256], qf)), 90))
    a, b, c = map(str, names)
    csv_path, jsonl_path = tmp_path / "q1.csv", tmp_path / "q1.jsonl"
    kw = dict(method="galvan", progress=False, out=open(os.devnull, "w"), err=open(os.devnull, "w"))
    assert batch.run([a, b, a], csv_path=csv_path, jsonl_path=jsonl_path, **kw) == (0, 2)
    assert [f for f, *_ in batch.Table(csv_path, "csv").records(csv_path)] == [a, b]
    rec = {f: r for f, r, *_ in batch.Table(csv_path, "csv").records(csv_path)}
    jrec = {f: r for f, r, *_ in batch.Table(jsonl_path, "jsonl").records(jsonl_path)}
    header = batch.Table(csv_path, "csv").header
    # a run that started over (no --resume) and was killed after a: its partial holds a alone; the finished
    # table's b is not taken for done
    (tmp_path / "q1.csv.partial").write_text(header + rec[a], newline="")
    assert batch.run([a, b, c], csv_path=csv_path, resume=True, **kw) == (0, 2)
    assert [f for f, *_ in batch.Table(csv_path, "csv").records(csv_path)] == [a, b, c]
    # the CSV holds a and x (a file of an earlier input list), the JSON Lines a only; b is new
    x = str(tmp_path / "x.jpg")
    (tmp_path / "q1.csv.partial").write_text(header + rec[a] + rec[b].replace(b, x, 1), newline="")
    (tmp_path / "q1.jsonl.partial").write_text(jrec[a] + jrec[b].replace(b, x, 1))
    assert batch.run([a, b], csv_path=csv_path, jsonl_path=jsonl_path, resume=True, **kw) == (0, 1)
    assert [f for f, *_ in batch.Table(csv_path, "csv").records(csv_path)] == [a, b, x]
    assert [f for f, *_ in batch.Table(jsonl_path, "jsonl").records(jsonl_path)] == [a, b, x]
    # a second run on the same table, the same file under two names
    holder = batch.Table(csv_path, "csv")
    holder.lock()
    with pytest.raises(ValueError, match="being written by another qpaper run"):
        batch.run([a], csv_path=csv_path, resume=True, **kw)
    holder.release()
    with pytest.raises(ValueError, match="name the same output"):
        batch.run([a], csv_path=csv_path, jsonl_path=tmp_path / "sub" / ".." / "q1.csv", **kw)
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.lock"))


def test_a_dataset_built_on_a_cluster_has_the_digest_of_a_local_build(tmp_path, monkeypatch):
    monkeypatch.setattr(shards, "SHARD_PATCHES", 20)  # 4 shards: both workers make some
    s = DatasetSpec(source="skimage", split="all", qf2=90, qf1=(60, 95), patches_per_image=10, patches_per_qf1=40)
    quiet = dict(progress=False, log=lambda *_: None)
    m1 = shards.build(s, tmp_path / "local", workers=1, **quiet)
    m2 = shards.build(s, tmp_path / "dask", scheduler="local:2", **quiet)
    assert len(m1["shards"]) == 4 and m1["content_sha256"] == m2["content_sha256"]
    for f in sorted((tmp_path / "local").glob("*-000*.npy")):
        assert (tmp_path / "dask" / f.name).read_bytes() == f.read_bytes()
    # the CLI says the digest
    r = subprocess.run(QPAPER + ["dataset", "build", "--profile", "smoke", "--split", "test", "--patches-per-qf1",
                                 "20", "--out", str(tmp_path / "cli"), "--scheduler", "local:2", "--quiet"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "content sha256" in r.stdout, r.stderr
    # `make datasets SCHEDULER=...`: a profile's dataset through `qpaper experiments datasets`
    name = "qf2-90-test-aligned"
    r = subprocess.run(QPAPER + ["experiments", "datasets", "--profile", "smoke", "--only", name, "--scheduler",
                                 "local:2"], capture_output=True, text=True,
                       env={**os.environ, "QPAPER_DATA": str(tmp_path)})
    assert r.returncode == 0 and "Dask scheduler local:2" in r.stdout, r.stderr
    m = json.loads(next(tmp_path.glob(f"processed/datasets/smoke*/{name}*/manifest.json")).read_text())
    assert m["content_sha256"] == shards.build(datasets("smoke", 0)[name], tmp_path / "ref", workers=1, **quiet)[
        "content_sha256"]


BLOCK_DASK = "import sys; sys.modules['distributed'] = None; from qpaper.cli import main; sys.exit(main(sys.argv[1:]))"


def test_without_dask_or_a_scheduler_one_line(tmp_path, coffee):
    f = tmp_path / "a.jpg"
    f.write_bytes(jpeg.encode_opencv(coffee[:128, :128], 90))
    g = tmp_path / "b.jpg"
    g.write_bytes(jpeg.encode_opencv(coffee[:128, :128], 80))
    for args in (["estimate", str(f), str(g), "--method", "galvan", "--scheduler", "local:2"],
                 ["dataset", "build", "--profile", "smoke", "--out", str(tmp_path / "d"), "--scheduler", "local:2"]):
        r = subprocess.run([sys.executable, "-c", BLOCK_DASK, *args], capture_output=True, text=True)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert "pip install 'qpaper[cluster]'" in r.stderr and not (tmp_path / "d").exists()
    # without Dask, everything else runs as before
    r = subprocess.run([sys.executable, "-c", BLOCK_DASK, "estimate", str(f), str(g), "--method", "galvan",
                        "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.count("QF2") == 2, r.stderr
    # a scheduler nobody listens at, and a malformed local:N
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    for sched, says in (("tcp://127.0.0.1:9", "cannot reach the Dask scheduler at tcp://127.0.0.1:9"),
                        ("local:zero", "local:N takes N >= 1")):
        r = subprocess.run(QPAPER + ["estimate", str(f), str(g), "--method", "galvan", "--scheduler", sched],
                           capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and says in r.stderr, r.stderr
    # --resume needs a table it can continue
    r = subprocess.run(QPAPER + ["estimate", str(f), str(g), "--method", "galvan", "--resume", "--csv", "-"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--resume needs --csv FILE or --jsonl FILE" in r.stderr
