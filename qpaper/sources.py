"""Where never-compressed images come from (paper, Section 4.2), and how they are split by scene.

A source is a named list of :class:`ImageRecord` (id, scene, path, sha256, licence). Splits are by
scene, never by patch, and are a pure function of the scene names and a seed.

- ``skimage``: never-compressed photos bundled in the scikit-image wheel (embedded default).
- ``wallpapers``: photographic wallpapers of four Debian packages, fetched by ``make data``,
  downscaled to erase their JPEG history (:func:`prepare_wallpaper`).
- ``raise`` / ``dresden``: the paper's datasets, fetched from their official URL lists
  (:mod:`qpaper.fetch`) into ``data/raw/<name>``.
- ``folder:PATH``: any folder of TIFF/PNG images, one scene per file.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from . import jpeg
from . import paths
from .paths import atomic_write_bytes, processed_dir, sha256_file

PACKAGE_DATA = Path(__file__).parent / "data"
IMAGE_SUFFIXES = (".png", ".tif", ".tiff")


class SourceError(ValueError):
    """A source is missing, incomplete or fails its checksums; one line for the user."""


@dataclass(frozen=True)
class ImageRecord:
    id: str
    scene: str
    path: str
    sha256: str | None
    licence: str
    source: str


# ---------------------------------------------------------------------------------------------
# skimage

# (file, scene, licence). Excluded: ihc, coins, page (JPEG-derived, per the shared manifest) and
# grass: our DCT-comb check (jpeg_trace_score) finds an aligned JPEG trace in it (score ~0.12,
# threshold 0.05, the other photos <= 0.02), so it is left out by the same rule.
SKIMAGE_IMAGES = [
    ("astronaut.png", "astronaut", "public domain (NASA)", "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"),
    ("chelsea.png", "chelsea", "CC0 (Stefan van der Walt)", "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb"),
    ("coffee.png", "coffee", "CC0 (Rachel Michetti)", "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"),
    ("motorcycle_left.png", "motorcycle", "Middlebury 2014 stereo benchmark", "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179"),
    ("motorcycle_right.png", "motorcycle", "Middlebury 2014 stereo benchmark", "5fc913ae870e42a4b662314bc904d1786bcad8e2f0b9b67dba5a229406357797"),
    ("camera.png", "camera", "CC0 (Lav Varshney)", "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a"),
    ("gravel.png", "gravel", "CC0 (CC0Textures)", "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12"),
    ("brick.png", "brick", "CC0 (CC0Textures)", "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf"),
]
SKIMAGE_EXCLUDED = {"grass.png": "aligned JPEG trace (DCT comb score ~0.12)",
                    "ihc.png": "JPEG-derived", "coins.png": "JPEG-derived", "page.png": "JPEG-derived"}


def skimage_dir() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise SourceError("scikit-image is not installed (run `make env`)")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def skimage_source() -> list[ImageRecord]:
    d = skimage_dir()
    return [ImageRecord(Path(f).stem, scene, str(d / f), sha, lic, "skimage")
            for f, scene, lic, sha in SKIMAGE_IMAGES]


# ---------------------------------------------------------------------------------------------
# wallpapers

WALLPAPER_PACKAGES = ("mate-backgrounds", "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04",
                      "plasma-workspace-wallpapers")
DOWNSCALE_RANGE = (2.1, 3.0)
TRACE_THRESHOLD = 0.05
TRACE_CHECK = "dct-comb/nf15/side384"  # recorded with each prepared image; a change re-prepares
THRESHOLD_NOTE = ("score = max - median, over the 64 grid offsets, of the DCT comb strength: a "
                  "never-compressed photo scores about 0.01, a QF 90 JPEG above 0.5; flagged above {}")


def wallpaper_table() -> list[dict]:
    with open(PACKAGE_DATA / "wallpapers.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def wallpapers_source(data_dir=None) -> list[ImageRecord]:
    """The 37 prepared wallpapers (``data/processed/wallpapers``), pinned by the prepared
    manifest that ``make data`` writes after checking each original's sha256."""
    d = processed_dir(data_dir) / "wallpapers"
    manifest = d / "manifest.tsv"
    if not manifest.exists():
        raise SourceError(f"wallpapers are not prepared ({manifest} missing): run `make data`")
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [ImageRecord(r["scene"], r["scene"], str(d / r["file"]), r["sha256"], r["licence"], "wallpapers")
            for r in rows]


APT_OPTIONS_ENV = "QPAPER_APT_OPTIONS"  # extra apt-get options, e.g. "-o Dir::State::Lists=/path"


_apt_updated = False  # apt-get update runs at most once per process


def apt_download(pkg: str, debs: Path, log=print) -> None:
    """``apt-get download pkg`` into ``debs``. Fresh Debian and Ubuntu images ship empty package
    lists: when apt cannot locate the package, run ``apt-get update`` once if we are root and
    retry, otherwise say the command to run."""
    global _apt_updated
    opts = os.environ.get(APT_OPTIONS_ENV, "").split()

    def download():
        return subprocess.run(["apt-get", *opts, "download", pkg], cwd=debs, capture_output=True, text=True)

    log(f"wallpapers: apt-get download {pkg}")
    r = download()
    unknown = "Unable to locate package" in r.stderr or "no installation candidate" in r.stderr
    if r.returncode != 0 and unknown:
        if os.geteuid() != 0:
            raise SourceError(f"apt-get cannot find {pkg}: the package lists were never fetched; run "
                              f"`sudo apt-get {' '.join(opts + ['update'])}`, then `make data` again")
        if not _apt_updated:
            _apt_updated = True
            log("wallpapers: apt cannot find the package; running `apt-get update` once (empty package lists)")
            u = subprocess.run(["apt-get", *opts, "update"], capture_output=True, text=True)
            if u.returncode != 0:
                msg = (u.stderr.strip().splitlines() or ["no message"])[-1]
                raise SourceError(f"apt-get update failed ({msg}); fetch the package lists, then `make data` again")
            r = download()
    if r.returncode != 0 or not list(debs.glob(f"{pkg}_*.deb")):
        msg = (r.stderr.strip().splitlines() or ["no .deb written"])[-1]
        raise SourceError(f"apt-get download {pkg} failed: {msg}")


def fetch_wallpapers(raw_dir=None, debs_dir=None, log=print) -> Path:
    """Download the four packages with ``apt-get download`` (no root needed), unpack them with
    ``dpkg-deb -x`` and copy the listed photos to ``raw_dir/wallpapers``, checking each sha256.
    ``debs_dir`` may hold the .deb files already (where apt is missing)."""
    raw = Path(raw_dir or paths.raw_dir())
    out = raw / "wallpapers"
    table = wallpaper_table()
    if all((out / f"{r['scene']}.jpg").exists() and sha256_file(out / f"{r['scene']}.jpg") == r["sha256"]
           for r in table):
        log(f"wallpapers: {len(table)} photos present and verified in {out}")
        return out
    debs = Path(debs_dir or raw / "debs")
    debs.mkdir(parents=True, exist_ok=True)
    for pkg in WALLPAPER_PACKAGES:
        if list(debs.glob(f"{pkg}_*.deb")):
            continue
        if shutil.which("apt-get") is None:
            raise SourceError(f"apt-get not found: download {pkg}_*.deb from packages.debian.org "
                              f"into {debs} and run `make data` again")
        apt_download(pkg, debs, log)
    with tempfile.TemporaryDirectory(dir=raw) as tmp:
        for pkg in WALLPAPER_PACKAGES:
            deb = sorted(debs.glob(f"{pkg}_*.deb"))[-1]
            log(f"wallpapers: unpacking {deb.name}")
            subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        out.mkdir(parents=True, exist_ok=True)
        for r in table:
            src = Path(os.path.realpath(Path(tmp) / r["path"]))
            if not src.exists():
                raise SourceError(f"{r['package']} has no {r['path']}")
            got = sha256_file(src)
            if got != r["sha256"]:
                raise SourceError(f"{r['path']}: sha256 {got[:12]}... differs from the pinned {r['sha256'][:12]}...")
            atomic_write_bytes(out / f"{r['scene']}.jpg", src.read_bytes())
    log(f"wallpapers: {len(table)} photos verified in {out}")
    return out


def downscale_factor(scene: str, seed: int = 0) -> float:
    """The non-integer downscale factor of a wallpaper, drawn in [2.1, 3.0] from (seed, scene)."""
    key = int.from_bytes(hashlib.sha256(scene.encode()).digest()[:8], "little")
    rng = np.random.default_rng([seed, key])
    return float(rng.uniform(*DOWNSCALE_RANGE))


def prepare_wallpaper(rgb: np.ndarray, factor: float) -> np.ndarray:
    """Erase a JPEG's history: area (anti-aliased) downscale by a non-integer ``factor`` and a
    crop to a multiple of 16 (whole 8x8 blocks and 4:2:0 MCUs). An exact /2 would leave a
    period-4 blocking pattern; a non-integer factor spreads the old grid over every phase."""
    h, w = rgb.shape[:2]
    nh, nw = int(round(h / factor)), int(round(w / factor))
    small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small[: nh // 16 * 16, : nw // 16 * 16])


def prepare_wallpapers(raw_dir=None, data_dir=None, seed: int = 0, log=print) -> Path:
    """``data/raw/wallpapers/*.jpg`` -> ``data/processed/wallpapers/*.png`` plus a manifest with
    the factor, size, trace score and sha256 of each prepared image. Refuses an image that
    still shows a JPEG trace."""
    raw = Path(raw_dir or paths.raw_dir()) / "wallpapers"
    out = processed_dir(data_dir) / "wallpapers"
    manifest = out / "manifest.tsv"
    table = wallpaper_table()
    if manifest.exists():
        with open(manifest, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if (len(rows) == len(table) and all(r.get("seed") == str(seed) and r.get("trace_check") == TRACE_CHECK for r in rows)
                and all((out / r["file"]).exists() and sha256_file(out / r["file"]) == r["sha256"] for r in rows)):
            log(f"wallpapers: {len(rows)} prepared images up to date in {out}")
            return out
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, r in enumerate(table):
        img = read_image(raw / f"{r['scene']}.jpg")
        f = downscale_factor(r["scene"], seed)
        small = prepare_wallpaper(img, f)
        score = jpeg_trace_score(small)
        if score > TRACE_THRESHOLD:
            raise SourceError(f"{r['scene']}: JPEG trace left after downscale (score {score:.3f})")
        ok, png = cv2.imencode(".png", cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
        name = f"{r['scene']}.png"
        atomic_write_bytes(out / name, png.tobytes())
        rows.append({"scene": r["scene"], "file": name, "sha256": hashlib.sha256(png.tobytes()).hexdigest(),
                     "licence": r["licence"], "factor": f"{f:.6f}", "width": small.shape[1],
                     "height": small.shape[0], "trace_score": f"{score:.4f}", "trace_check": TRACE_CHECK, "seed": seed,
                     "original_sha256": r["sha256"]})
        log(f"wallpapers: prepared {i + 1}/{len(table)} {name} {small.shape[1]}x{small.shape[0]} "
            f"(/{f:.3f}, trace {score:.3f})")
    text = "\t".join(rows[0]) + "\n" + "".join("\t".join(str(v) for v in r.values()) + "\n" for r in rows)
    atomic_write_bytes(manifest, text.encode())
    return out


# ---------------------------------------------------------------------------------------------
# JPEG trace check

_PERIODS = np.arange(2, 21, dtype=np.float64)


def dct_comb_map(img: np.ndarray, nf: int = 15, max_side: int = 384) -> np.ndarray:
    """For each of the 64 grid offsets, how strongly the 8x8 DCT coefficients of the luminance
    cluster on multiples of some step q in 2..20 (the comb a JPEG quantizer leaves, Section 2):
    the mean over zig-zag AC frequencies 1..nf-1 of max_q |mean exp(2 pi i c / q)|, over
    coefficients with |c| > 1. Uses a central crop of at most ``max_side`` pixels."""
    y = jpeg.to_luma(img).astype(np.float64)
    h, w = y.shape
    t, l = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
    y = y[t:t + max_side + 7, l:l + max_side + 7]
    out = np.zeros((8, 8))
    for dy in range(8):
        for dx in range(8):
            a = y[dy:, dx:]
            hh, ww = a.shape[0] // 8 * 8, a.shape[1] // 8 * 8
            if hh == 0 or ww == 0:
                raise ValueError("image too small for a DCT trace check")
            c = jpeg.block_dct(a, level_shift=0.0)[:, 1:nf]
            vals = []
            for f in range(c.shape[1]):
                x = c[:, f]
                x = x[np.abs(x) > 1.0]
                if len(x) >= 20:
                    ph = np.exp(2j * np.pi * x[None, :] / _PERIODS[:, None]).mean(axis=1)
                    vals.append(np.abs(ph).max())
            out[dy, dx] = np.mean(vals) if vals else 0.0
    return out


def jpeg_trace_score(img: np.ndarray) -> float:
    """Max minus median of :func:`dct_comb_map` over the 64 offsets: about 0.01 for a
    never-compressed photo, above 0.5 for a QF 90 JPEG (at any crop offset)."""
    m = dct_comb_map(img)
    return float(m.max() - np.median(m))


MIN_TEXTURED = 0.1  # below this share of textured 8x8 blocks the pixels cannot show a comb


def trace_verdict(path, threshold: float = TRACE_THRESHOLD) -> tuple[float | None, str]:
    """``qpaper data trace`` on one file: (score, verdict). A JPEG file is one whatever its
    pixels show (a flat screenshot or a CMYK JPEG gives the comb too few blocks): its own table
    says so. Otherwise the pixels' :func:`jpeg_trace_score`, and "cannot tell" where too few
    blocks have texture for a comb to show (issue 32, item 7)."""
    from .paths import check_input_file
    try:
        with open(check_input_file(path), "rb") as f:
            head = f.read(2)
    except ValueError as e:
        raise SourceError(str(e)) from None
    if head == b"\xff\xd8":
        try:  # a JPEG's pixels may not decode (CMYK, damage): its own table still answers
            score = jpeg_trace_score(read_image(path))
        except (ValueError, cv2.error):
            score = None
        try:
            info = jpeg.read_qtables(path)
            qf, dist = jpeg.nearest_standard_qf(jpeg.luminance_table(info))
            return score, (f"JPEG trace: a JPEG file ({len(info['components'])} component(s); its table is nearest "
                           f"IJG QF {qf}{' exactly' if dist == 0 else ''})")
        except jpeg.JpegError as e:
            return score, f"cannot tell: a damaged JPEG file ({e})"
    img = read_image(path)  # its refusals (too large, unreadable) are the answer
    score = jpeg_trace_score(img)
    if score > threshold:
        return score, "JPEG trace"
    y = jpeg.to_luma(img).astype(np.float64)
    h, w = y.shape[0] // 8 * 8, y.shape[1] // 8 * 8
    blocks = y[:h, :w].reshape(h // 8, 8, w // 8, 8).std(axis=(1, 3))
    textured = float((blocks > 1.0).mean()) if blocks.size else 0.0
    if textured < MIN_TEXTURED:
        return score, (f"cannot tell: only {textured:.0%} of the 8x8 blocks have texture (a flat picture or "
                       "screenshot shows no comb even when it was a JPEG)")
    return score, "no trace found"


# ---------------------------------------------------------------------------------------------
# folders, RAISE, Dresden

def folder_source(path) -> list[ImageRecord]:
    d = Path(path)
    if not d.is_dir():
        raise SourceError(f"folder source {d}: not a directory")
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SourceError(f"folder source {d}: no TIFF or PNG images")
    return [ImageRecord(p.stem, p.stem, str(p), None, "unknown", f"folder:{d}") for p in files]


def fetched_source(name: str, data_dir=None) -> list[ImageRecord]:
    """RAISE or Dresden images fetched by ``qpaper data fetch`` (their manifest pins sha256)."""
    d = paths.raw_dir(data_dir) / name
    manifest = d / "manifest.tsv"
    if not manifest.exists():
        raise SourceError(f"{name} is not fetched ({manifest} missing): run "
                          f"`qpaper data fetch {name} --csv FILE`")
    with open(manifest, newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["status"] == "ok"]
    return [ImageRecord(Path(r["file"]).stem, Path(r["file"]).stem, str(d / r["file"]), r["sha256"],
                        LICENCES[name], name) for r in rows]


LICENCES = {"raise": "RAISE: non-commercial research use only",
            "dresden": "Dresden Image Database: research use (see its terms)"}


def get_source(name: str, data_dir=None) -> list[ImageRecord]:
    if name == "skimage":
        return skimage_source()
    if name == "wallpapers":
        return wallpapers_source(data_dir)
    if name in ("raise", "dresden"):
        return fetched_source(name, data_dir)
    if name.startswith("folder:"):
        return folder_source(name[len("folder:"):])
    raise SourceError(f"unknown source {name!r} (skimage, wallpapers, raise, dresden, folder:PATH)")


def split_records(records: list[ImageRecord], split: str, test_share: float = 0.25,
                  n_test: int | None = None, seed: int = 0) -> list[ImageRecord]:
    """Deterministic split by scene: scenes sorted by name, permuted with ``seed``; the first
    ``n_test`` (or ``round(test_share * scenes)``, at least 1) are test. ``split`` is
    train, test or all. RAISE-8k in the paper: 7000 train / 1156 test (``n_test=1156``)."""
    if split == "all":
        return list(records)
    if split not in ("train", "test"):
        raise ValueError(f"split must be train, test or all, got {split!r}")
    scenes = sorted({r.scene for r in records})
    order = np.random.default_rng(seed).permutation(len(scenes))
    k = n_test if n_test is not None else max(1, int(round(test_share * len(scenes))))
    if not 0 < k < len(scenes):
        raise ValueError(f"cannot split {len(scenes)} scenes with {k} test scenes")
    test = {scenes[i] for i in order[:k]}
    return [r for r in records if (r.scene in test) == (split == "test")]


MAX_PIXELS = 120_000_000  # the default limit of qpaper estimate, for every image read whole


def read_image(path) -> np.ndarray:
    """Read an image file as RGB uint8 (grayscale is replicated to three channels; 16-bit TIFFs
    are scaled to 8 bits). A FIFO, a device, a file over the size limit or an image of more than
    ``MAX_PIXELS`` (read from its header first) is refused in one line."""
    from .paths import check_input_file
    try:
        check_input_file(path)
    except ValueError as e:
        raise SourceError(str(e)) from None
    try:
        from PIL import Image
        with Image.open(path) as im:
            w, h = im.size
    except Exception:  # a format Pillow does not know: OpenCV decides below
        w = h = 0
    if w * h > MAX_PIXELS:
        raise SourceError(f"{path}: {w}x{h} pixels, more than the {MAX_PIXELS / 1e6:.0f} MP read here")
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise SourceError(f"cannot read image {path}")
    if arr.dtype == np.uint16:
        arr = (arr.astype(np.float64) / 257.0).round().astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGB)
    else:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(arr)


@lru_cache(maxsize=8)
def load_image(path: str, sha256: str | None = None) -> np.ndarray:
    """Read and (when ``sha256`` is given) verify an image; cached per process."""
    if sha256 is not None:
        got = sha256_file(path)
        if got != sha256:
            raise SourceError(f"{path}: sha256 {got[:12]}... differs from the pinned {sha256[:12]}...")
    img = read_image(path)
    img.setflags(write=False)
    return img


def image_size(path: str) -> tuple[int, int]:
    """(height, width) of an image, read from its header where possible."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except Exception:
        return load_image(path).shape[:2]

