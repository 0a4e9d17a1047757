import numpy as np
import pytest

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
