"""The run profiles (Sections 4.2-4.3 at four scales), in one place: every dataset size lives here.

- ``smoke``: skimage photos, 3 QF1 values, a few hundred patches; seconds. Tests and CI.
- ``mini``: train and test on disjoint scenes of the prepared Debian wallpapers, the skimage photos
  as the second source (dataset mismatch); the paper's QF1 grids subsampled in steps of 5; the
  block-DCT backbone (``arch="dct"``, :mod:`qpaper.dctfeatures`) and sizes that fit the
  one-hour ``make reproduce TRAIN=1`` budget on 2 CPU cores.
- ``gpu``: the paper's QF2 90 setting and DenseNet-40 on the wallpapers, for lent GPU sessions.
- ``paper``: RAISE-8k (7000 train / 1156 test), QF2 90 with QF1 60..98 and QF2 80 with QF1
  55..98, 1e5 training patches per QF1, 100 test patches from each test image (Section 4.2);
  Dresden for the mismatch tests; the paper's DenseNet-40 on pixels, Adam 1e-5, batch 32.
"""

from __future__ import annotations

# Section 4.2: QF1 60..98 under QF2 90, 55..98 under QF2 80 (the QF2 values of the experiments)
PAPER_QF1 = {90: tuple(range(60, 99)), 80: tuple(range(55, 99))}
# the prepared Debian wallpapers, split by scene; skimage's photos as the second source
WALLPAPERS = {"train": {"source": "wallpapers", "split": "train"}, "test": {"source": "wallpapers", "split": "test"},
              "mismatch": {"source": "skimage", "split": "all"}}

# the any-QF2 estimator (issue 21): patches per family of first tables, and its fit (the coef backbone
# reads exact block DCTs: float32 whatever the profile's precision)
WILD = {"train": 100_000, "test": 1000}
FIT_WIDE = {"arch": "coef", "width": 128, "hidden": 256, "dropout": 0.1, "batch": 64, "lr": 2e-3, "schedule": "cosine",
            "warmup": 0.05, "epochs": 40, "epoch_patches": 50_000, "precision": "float32"}

FILE_LEVEL = {"train": 2000, "val": 400, "epochs": 60}

PROFILES = {
    "smoke": {
        "train": {"source": "skimage", "split": "train"},
        "test": {"source": "skimage", "split": "test"},
        # plumbing only: the smoke profile has no second source
        "mismatch": {"source": "skimage", "split": "test"},
        "qf1": {90: (60, 80, 95), 80: (60, 75, 95)},
        "patches_per_image": {"train": 20, "test": 20},
        "patches_per_qf1": {"train": 100, "test": 40},
        "test_share": 0.25,
        "n_test": None,
        "fit": {"arch": "dct", "width": 32, "hidden": 64, "phases": "all", "depth": 7, "growth": 6, "dropout": 0.2,
                "batch": 16, "lr": 1e-3, "schedule": "cosine", "warmup": 0.1, "epochs": 2, "epoch_patches": None,
                "val_share": 0.2, "val_max": 200},
        "localize": {"stride": 16, "per_case": 1, "side": 512},
        # the any-QF2 estimator (issue 21): first tables of three families, last tables q2-wide
        "wild": {"train": 100, "test": 40},
        "fit_wide": {"arch": "coef", "width": 32, "hidden": 64, "dropout": 0.1, "epochs": 2, "batch": 16},
        # the file-level estimator (issue 31, qpaper.filetrain): whole files of the training scenes
        "file_level": {"train": 40, "val": 20, "epochs": 5},
    },
    "mini": {
        # 28 wallpapers train, 9 held-out wallpapers test (by scene); the skimage photos are the
        # second source of the dataset-mismatch test (Dresden in the paper).
        **WALLPAPERS,
        "qf1": {90: (60, 65, 70, 75, 80, 85, 90, 95, 98),
                80: (55, 60, 65, 70, 75, 80, 85, 90, 95, 98)},
        "patches_per_image": {"train": 80, "test": 50},
        # >= 200 000 training patches per QF2 (QF2 90: 9 x 22 300; QF2 80: 10 x 22 300), built in
        # about a minute each: a model sees each patch two or three times, not dozens
        "patches_per_qf1": {"train": 22_300, "test": 400},
        "test_share": 0.25,
        "n_test": None,
        # The backbone is chosen by benchmarks/bench_arch.py (results/benchmarks/arch.txt, 8 min of
        # training each on these 2 CPU cores, held-out scenes, random / aligned AvgAcc): the pixel
        # DenseNet-13 stays at the constant prior (0.111 / 0.111, 59 patches/s); the block-DCT front
        # end on the last grid only is blind to a shifted first grid (0.308 / 0.726); at all 64 grid
        # phases it learns both cases (nf 15: 0.779 / 0.782 at 1311 patches/s; nf 28: 0.803 / 0.776
        # at 764 patches/s). nf 28 is kept for the best random-shift accuracy and MSE (the paper's
        # Table 1 case): the larger high-frequency steps of the higher first qualities survive the
        # second compression. Adam at 2e-3 with a 5% warm-up and a cosine decay, 8 epochs of
        # 50 000 patches (400 000 presentations, about 9 minutes per model here).
        "fit": {"arch": "dct", "nf": 28, "width": 128, "hidden": 512, "phases": "all", "depth": 13, "growth": 12,
                "dropout": 0.2, "batch": 64, "lr": 2e-3, "schedule": "cosine", "warmup": 0.05, "epochs": 8,
                "epoch_patches": 50_000, "val_share": 0.1, "val_max": 2000},
        # notebook 7: window stride of the maps (the paper: 1), splices per case and their largest side
        "localize": {"stride": 8, "per_case": 2, "side": 512},
        # The any-QF2 estimator of the JPEGs people have (issue 21): patches per first-table family
        # (train: libjpeg, perturbed, park; test: each of TEST_FAMILIES and libjpeg, random and
        # aligned grids), last tables from q2-wide; the coef backbone, 40 epochs of 50 000 patches (about 40 min).
        "wild": WILD,
        "fit_wide": FIT_WIDE,
        # The file-level estimator (issue 31): 2,000 whole files of the 28 training wallpapers (crops of
        # 128 px to the whole picture, a tenth single-compressed) and 400 more of the same scenes under
        # another seed for its calibration; about 30 minutes to make on 2 cores, 2 to fit.
        "file_level": FILE_LEVEL,
    },
    # A lent GPU (issue 13; scripts/gpu_train.sh, qpaper.gpurun): the paper's QF2 90 setting (QF1
    # 60..98, random grid shift) and DenseNet-40 on the prepared wallpapers (RAISE cannot travel to
    # the device), data built on the device's 16 cores in about a minute. The paper's Adam 1e-5 at
    # batch 32 does not leave the constant prior in the minutes a session has (see the mini models);
    # a warm-up and cosine decay to a peak of 2e-3 at batch 256, with bfloat16 mixed precision,
    # moves at once. The plan (60 x 200 000 patches) spans several sessions: each one resumes the
    # committed checkpoint (models/gpu/qf2-90-class-Lr) with its optimizer and schedule position.
    "gpu": {
        **WALLPAPERS,
        "qf1": PAPER_QF1,
        "patches_per_image": {"train": 100, "test": 50},
        "patches_per_qf1": {"train": 10_000, "test": 200},
        "test_share": 0.25,
        "n_test": None,
        "fit": {"arch": "densenet", "depth": 40, "growth": 12, "dropout": 0.2, "batch": 256, "lr": 2e-3,
                "schedule": "cosine", "warmup": 0.02, "epochs": 60, "epoch_patches": 200_000, "val_share": 0.05,
                "val_max": 5000, "precision": "mixed_bfloat16", "nf": 28, "width": 128, "hidden": 512,
                "phases": "all"},
        "localize": {"stride": 8, "per_case": 2, "side": 512},
        "wild": WILD,
        "fit_wide": FIT_WIDE,
        "file_level": FILE_LEVEL,
    },
    "paper": {
        "train": {"source": "raise", "split": "train"},
        "test": {"source": "raise", "split": "test"},
        "mismatch": {"source": "dresden", "split": "all"},
        "qf1": PAPER_QF1,
        "patches_per_image": {"train": 100, "test": 100},
        "patches_per_qf1": {"train": 100_000, "test": 115_600},
        "test_share": None,
        "n_test": 1156,
        # Section 4.3 and the authors' configuration: Adam 1e-5, batch 32; 100 epochs (the paper).
        "fit": {"arch": "densenet", "depth": 40, "growth": 12, "dropout": 0.2, "batch": 32, "lr": 1e-5,
                "schedule": "constant", "epochs": 100, "epoch_patches": None, "val_share": 0.02, "val_max": 20000},
        "localize": {"stride": 1, "per_case": 5, "side": 512},
        "wild": {"train": 300_000, "test": 11_560},
        "fit_wide": {**FIT_WIDE, "epochs": 100, "epoch_patches": None},
        "file_level": {"train": 20_000, "val": 2000, "epochs": 60},
    },
}


def get_profile(name: str) -> dict:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r} ({', '.join(PROFILES)})")
    return PROFILES[name]


def test_share(profile: str) -> float:
    """The share of scenes held out for testing (a profile with ``n_test`` fixes a count instead;
    the share then only matters for the split's rounding, 0.25 as in :class:`DatasetSpec`)."""
    return get_profile(profile)["test_share"] or 0.25


def dataset_spec(profile: str, part: str, qf2: int = 90, seed: int = 0, grid_shift: str = "random",
                 **overrides):
    """The :class:`qpaper.djpeg.DatasetSpec` of a profile's train or test ``part``; ``overrides``
    replace spec fields (e.g. ``source="wallpapers", split="all"``)."""
    from .djpeg import DatasetSpec

    p = get_profile(profile)
    if part not in ("train", "test", "mismatch"):
        raise ValueError(f"part must be train, test or mismatch, got {part!r}")
    if qf2 not in p["qf1"] and "qf1" not in overrides:
        raise ValueError(f"profile {profile} has QF2 {sorted(p['qf1'])}, not {qf2}")
    size = "train" if part == "train" else "test"
    kw = dict(source=p[part]["source"], split=p[part]["split"], qf2=qf2, qf1=tuple(p["qf1"].get(qf2, ())),
              patches_per_image=p["patches_per_image"][size], patches_per_qf1=p["patches_per_qf1"][size],
              grid_shift=grid_shift, seed=seed, test_share=test_share(profile), n_test=p["n_test"])
    kw.update(overrides)
    return DatasetSpec(**kw)


# ---------------------------------------------------------------------------------------------
# The experiments of Section 4-5 as data: which datasets and models each profile's notebooks need
# (built and trained by ``qpaper experiments datasets|models``, see :mod:`qpaper.experiments`).
#
# Datasets (under ``data/processed/datasets/<profile>/``):
# - ``qf2-90-train``, ``qf2-80-train``: the training sets (random grid shift, aligned 1/64).
# - ``qf2-{90,80}-test`` and ``-aligned``: Tables 1-4 and Figures 3-7.
# - ``qf2-92-test`` and ``-aligned``: the QF2-mismatch test (Section 5.2: a QF2-90 model on QF2 92).
# - ``qf2-90-mismatch`` and ``qf2-90-halfres``: dataset and resolution mismatch (Figures 9, 10).
# - ``qf2-90-photoshop`` and ``-aligned``: Photoshop tables as Q1, Pillow 4:4:4 (Figure 11).
#
# Models (under ``models/<profile>/``): the proposed estimator (class head, loss Lr) and the
# regression estimator of [10] for QF2 90 and 80, and the class head with plain cross-entropy L
# for the loss ablation (Section 5.1).

PHOTOSHOP_Q1 = ("ps8", "ps9", "ps10", "ps12")  # Figure 11: Photoshop qualities as Q1
QF2_MISMATCH = 92  # Section 5.2: a QF2-90 model tested on QF2 92
EVAL_BATCH = 128  # patches per forward pass when evaluating (each patch is estimated on its own; another
# size may change a float in its last bit, so the tables are computed with this one)


def datasets(profile: str, seed: int = 0) -> dict:
    """name -> DatasetSpec of every dataset the notebooks of ``profile`` read."""
    p = get_profile(profile)
    out = {}
    for qf2 in p["qf1"]:  # the profile's QF2 values: 90, then 80
        out[f"qf2-{qf2}-train"] = dataset_spec(profile, "train", qf2, seed)
        out[f"qf2-{qf2}-test"] = dataset_spec(profile, "test", qf2, seed)
        out[f"qf2-{qf2}-test-aligned"] = dataset_spec(profile, "test", qf2, seed, grid_shift="aligned")
    q = QF2_MISMATCH
    out[f"qf2-{q}-test"] = dataset_spec(profile, "test", q, seed, qf1=p["qf1"][90])
    out[f"qf2-{q}-test-aligned"] = dataset_spec(profile, "test", q, seed, qf1=p["qf1"][90], grid_shift="aligned")
    out["qf2-90-mismatch"] = dataset_spec(profile, "mismatch", 90, seed)
    out["qf2-90-halfres"] = dataset_spec(profile, "mismatch", 90, seed, scale=0.5)
    for shift, suffix in (("random", ""), ("aligned", "-aligned")):
        out[f"qf2-90-photoshop{suffix}"] = dataset_spec(profile, "test", 90, seed, grid_shift=shift, qf1=PHOTOSHOP_Q1,
                                                        encoder="pillow", subsampling="4:4:4")
    if "wild" in p:
        out.update(wild_datasets(profile, seed))
    return out


def wild_datasets(profile: str, seed: int = 0) -> dict:
    """The datasets of the any-QF2 estimator (issue 21, :mod:`qpaper.tables`): ``wild-train``
    (first tables from TRAIN_FAMILIES, aligned on a quarter of the units), and ``wild-test`` /
    ``wild-test-aligned`` (libjpeg and the held-out TEST_FAMILIES, never trained on), every last
    table drawn from ``q2-wide``, Pillow 4:2:0."""
    from .tables import TEST_FAMILIES, TRAIN_FAMILIES
    n = get_profile(profile)["wild"]
    common = dict(encoder="pillow", subsampling="4:2:0", q2_mix="q2-wide")
    out = {"wild-train": dataset_spec(profile, "train", 90, seed, grid_shift="mixed", qf1=TRAIN_FAMILIES,
                                      patches_per_qf1=n["train"], **common)}
    for shift, suffix in (("random", ""), ("aligned", "-aligned")):
        out[f"wild-test{suffix}"] = dataset_spec(profile, "test", 90, seed, grid_shift=shift,
                                                 qf1=("libjpeg",) + TEST_FAMILIES, patches_per_qf1=n["test"], **common)
    return out


# name -> (training dataset, head, loss); the loss of the class head is L (Eq. 1) or Lr (Eq. 5)
MODELS = {
    "qf2-90-class-Lr": ("qf2-90-train", "class", "Lr"),
    "qf2-90-regression": ("qf2-90-train", "regression", "mse"),
    "qf2-90-class-L": ("qf2-90-train", "class", "L"),
    "qf2-80-class-Lr": ("qf2-80-train", "class", "Lr"),
    "qf2-80-regression": ("qf2-80-train", "regression", "mse"),
    # issue 21: one model for every last table (Q2 an input), first tables of three families
    "any-qf2-wide": ("wild-train", "wide", "Lr"),
}
