"""The three run profiles, in one place: every dataset size lives here.

- ``smoke``: skimage photos, 3 QF1 values, a few hundred patches; seconds. Tests and CI.
- ``mini``: train on the prepared Debian wallpapers, test on the skimage photos (a dataset
  mismatch by construction); the paper's QF1 grids subsampled in steps of 5; sizes that fit the
  one-hour ``make reproduce`` budget on 2 CPU cores.
- ``paper``: RAISE-8k (7000 train / 1156 test), QF2 90 with QF1 60..98 and QF2 80 with QF1
  55..98, 1e5 training patches per QF1, 100 test patches from each test image (Section 4.2).
"""

from __future__ import annotations

PROFILES = {
    "smoke": {
        "train": {"source": "skimage", "split": "train"},
        "test": {"source": "skimage", "split": "test"},
        "qf1": {90: (60, 80, 95), 80: (60, 75, 95)},
        "patches_per_image": 20,
        "patches_per_qf1": {"train": 100, "test": 40},
        "test_share": 0.25,
        "n_test": None,
        "fit": {"depth": 7, "growth": 6, "dropout": 0.2, "batch": 16, "lr": 1e-3, "epochs": 2,
                  "val_share": 0.2, "val_max": 200},
    },
    "mini": {
        "train": {"source": "wallpapers", "split": "all"},
        "test": {"source": "skimage", "split": "all"},
        "qf1": {90: (60, 65, 70, 75, 80, 85, 90, 95, 98),
                80: (55, 60, 65, 70, 75, 80, 85, 90, 95, 98)},
        "patches_per_image": 100,
        # 37 wallpapers x 100 patches: each training image is used once per QF1.
        "patches_per_qf1": {"train": 3700, "test": 400},
        "test_share": 0.25,
        "n_test": None,
        # DenseNet-22 trains 3.5x faster than -40 here (about 19.5 patches/s on 2 cores); Adam at
        # 1e-5 barely moves in the few epochs an hour allows, so the mini profile uses 1e-3.
        "fit": {"depth": 22, "growth": 12, "dropout": 0.2, "batch": 32, "lr": 1e-3, "epochs": 6,
                  "val_share": 0.1, "val_max": 1800},
    },
    "paper": {
        "train": {"source": "raise", "split": "train"},
        "test": {"source": "raise", "split": "test"},
        "qf1": {90: tuple(range(60, 99)), 80: tuple(range(55, 99))},
        "patches_per_image": 100,
        "patches_per_qf1": {"train": 100_000, "test": 115_600},
        "test_share": None,
        "n_test": 1156,
        # Section 4.3 and the authors' configuration: Adam 1e-5, batch 32; 100 epochs (the paper).
        "fit": {"depth": 40, "growth": 12, "dropout": 0.2, "batch": 32, "lr": 1e-5, "epochs": 100,
                  "val_share": 0.02, "val_max": 20000},
    },
}


def get_profile(name: str) -> dict:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r} (smoke, mini, paper)")
    return PROFILES[name]


def dataset_spec(profile: str, part: str, qf2: int = 90, seed: int = 0, grid_shift: str = "random",
                 **overrides):
    """The :class:`qpaper.djpeg.DatasetSpec` of a profile's train or test ``part``; ``overrides``
    replace spec fields (e.g. ``source="wallpapers", split="all"``)."""
    from .djpeg import DatasetSpec

    p = get_profile(profile)
    if part not in ("train", "test"):
        raise ValueError(f"part must be train or test, got {part!r}")
    if qf2 not in p["qf1"]:
        raise ValueError(f"profile {profile} has QF2 {sorted(p['qf1'])}, not {qf2}")
    kw = dict(source=p[part]["source"], split=p[part]["split"], qf2=qf2, qf1=tuple(p["qf1"][qf2]),
              patches_per_image=p["patches_per_image"], patches_per_qf1=p["patches_per_qf1"][part],
              grid_shift=grid_shift, seed=seed, test_share=p["test_share"] or 0.25, n_test=p["n_test"])
    kw.update(overrides)
    return DatasetSpec(**kw)
