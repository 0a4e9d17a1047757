import json

import numpy as np
import pytest

from qpaper import paths
from qpaper.sources import read_image, skimage_dir


@pytest.fixture(scope="session")
def astronaut():
    return read_image(skimage_dir() / "astronaut.png")


@pytest.fixture(scope="session")
def coffee():
    return read_image(skimage_dir() / "coffee.png")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def registry_dir(tmp_path_factory):
    """A registry with one tiny (untrained) QF2-90 class model, the way report.models writes it."""
    import keras

    from qpaper import model
    from qpaper.paths import sha256_file
    from qpaper.train import save_model
    root = tmp_path_factory.mktemp("models")
    run = root / "mini" / "qf2-90-class-Lr"
    run.mkdir(parents=True)
    keras.utils.set_random_seed(0)
    save_model(model.build_model("class", depth=7, growth=4), run / "model.keras")
    entry = {"name": "qf2-90-class-Lr", "path": "qf2-90-class-Lr/model.keras", "profile": "mini", "qf2": 90,
             "head": "class", "loss": "Lr", "channels": "rgb", "depth": 7, "metrics": {},
             "sha256": sha256_file(run / "model.keras")}
    # and the committed file-level estimator, the default of qpaper estimate (issue 31)
    import shutil

    from qpaper import filelevel, registry
    shutil.copytree(paths.ROOT / "models" / "mini" / filelevel.NAME, root / "mini" / filelevel.NAME)
    files = registry.file_entries("mini")
    (root / "mini" / "manifest.json").write_text(json.dumps({"models": [entry] + files}))
    return root
