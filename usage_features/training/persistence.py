"""Saving and loading a trained model: skops, an explicit allow-list of types, a file hash.

A model file is ``<name>.skops`` (skops: no pickle, objects rebuilt from a JSON schema) with its
metadata beside it, ``<name>.skops.json``, which also records the SHA-256 of the ``.skops`` file.
Loading refuses, with a :class:`ModelFileError` that names the reason, before any object is
built:

- a model or metadata file larger than :func:`max_model_bytes` (512 MiB, or
  ``$USAGE_FEATURES_MAX_MODEL_BYTES``), from its size alone: it is never read;
- a model without its metadata, or metadata without the file's hash;
- a file whose hash differs from its metadata's (changed, corrupted or truncated since saved);
- a file that is not a readable skops archive;
- a file naming any type outside :data:`TRUSTED_TYPES`, the exact types this project's own
  models are made of. A tampered file that adds a function (``builtins.eval``,
  ``numpy.full_like``, ``operator.methodcaller``...) to the pipeline is refused by name, and
  nothing in it runs.

The hash ties the two files together (a model copied without its metadata, a half-written or
swapped file); it is not a signature: whoever can write both files can make them agree. What
keeps code out is the allow-list.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import asdict
from pathlib import Path

from usage_features.adapters.files import atomic_write
from usage_features.features.spec import feature_spec
from usage_features.ingestion.settings import load_vocabulary
from usage_features.training.horizons import HorizonModel
from usage_features.training.metadata import ModelMetadata
from usage_features.training.model import TrainedModel

#: Every type a model saved by :func:`save_model` is made of: what skops records for the
#: pipelines of ``churn_classifier`` (the model ``train`` saves) and ``logistic_baseline``,
#: fitted. Reviewed by hand: scikit-learn estimators and their fitted parts, NumPy arrays,
#: scalars, dtypes and random generators, plain containers, and this project's own
#: ``_signed_log1p``. ``tests/unit/test_model_persistence.py`` fails when a freshly built
#: model holds a type missing here (review it, then add it) or when an entry is no longer used.
TRUSTED_TYPES = frozenset({
    "builtins.dict",
    "builtins.list",
    "builtins.slice",
    "builtins.str",
    "builtins.tuple",
    "numpy.dtype",
    "numpy.float64",
    "numpy.ndarray",
    "numpy.random._generator.Generator",
    "numpy.uint64",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.impute._base.MissingIndicator",
    "sklearn.impute._base.SimpleImputer",
    "sklearn.isotonic.IsotonicRegression",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._function_transformer.FunctionTransformer",
    "sklearn.preprocessing._label.LabelEncoder",
    "usage_features.training.estimators.SparseColumnsFilled",
    "usage_features.training.estimators._signed_log1p",
})

RETRAIN = "retrain it (`usage-features train`) or restore the saved pair"
#: The largest model or metadata file read (a project model is a few MB); larger ones are
#: refused from their size, unread. ``$USAGE_FEATURES_MAX_MODEL_BYTES`` sets another limit.
DEFAULT_MAX_MODEL_BYTES = 512 * 2**20
MAX_MODEL_BYTES_VARIABLE = "USAGE_FEATURES_MAX_MODEL_BYTES"


class ModelFileError(ValueError):
    """A model file that cannot be trusted or read: tampered, corrupt, or without metadata."""


def max_model_bytes() -> int:
    """The largest model or metadata file :func:`load_model` reads: ``$USAGE_FEATURES_MAX_MODEL_
    BYTES`` (a positive whole number of bytes), else :data:`DEFAULT_MAX_MODEL_BYTES`."""
    setting = os.environ.get(MAX_MODEL_BYTES_VARIABLE, "").strip()
    if not setting:
        return DEFAULT_MAX_MODEL_BYTES
    if not setting.isdigit() or int(setting) == 0:
        raise ModelFileError(f"{MAX_MODEL_BYTES_VARIABLE}={setting!r}: not a positive whole "
                             "number of bytes (e.g. 536870912 for 512 MiB)")
    return int(setting)


def read_bounded(path: Path) -> bytes:
    """The bytes of the model or metadata file ``path``, refused (:class:`ModelFileError`)
    unread when it is larger than :func:`max_model_bytes`; never more than that is read, even
    of a file growing meanwhile."""
    limit = max_model_bytes()
    size = path.stat().st_size
    if size <= limit:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
        if len(data) <= limit:
            return data
        size = len(data)
    raise ModelFileError(
        f"{path} is larger ({size:,} bytes) than a model file may be ({limit:,} bytes, "
        f"${MAX_MODEL_BYTES_VARIABLE}), so it was not read: a project model is a few MB; "
        f"{RETRAIN}, or raise the limit if this model is really that large")


def metadata_path(path: Path) -> Path:
    """Where the metadata of the model at ``path`` lives: ``path`` + ``.json``."""
    path = Path(path)
    return path.with_suffix(path.suffix + ".json")


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_model(model: TrainedModel, path: Path) -> Path:
    """Write ``path`` (skops) and ``path.json`` (the metadata and the file's SHA-256).

    Each file is written beside its target and renamed into place: a crash part way leaves
    either the old pair or a pair whose hashes disagree, which :func:`load_model` refuses.
    """
    # deferred: skops takes ~0.6 s to import (pytest, dask); only a save or a load pays it
    import skops.io as sio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = asdict(model.metadata)
    saved = {"pipeline": model.pipeline, "metadata": json.dumps(meta)}
    if model.horizons is not None:  # a model without them is saved as before
        saved["horizons"] = model.horizons.to_dict()
    data = sio.dumps(saved)
    sidecar = {**meta, "model_version": model.metadata.model_version,
               "model_file_sha256": file_sha256(data)}
    atomic_write(path, data)
    atomic_write(metadata_path(path), json.dumps(sidecar, indent=2).encode())
    return path


def model_types(data: bytes, untrusted: list[str] | None = None) -> set[str]:
    """Every type (class or function) a skops file names, without building any of them.

    Each node of the file's schema names its ``__module__`` and ``__class__``; skops's own
    audit (``untrusted``, its ``get_untrusted_types`` of ``data`` when given) adds what the
    schema names otherwise (the methods of method nodes).
    """
    # deferred: skops takes ~0.6 s to import (pytest, dask); only a save or a load pays it
    import skops.io as sio

    schema = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("schema.json"))
    found = set(sio.get_untrusted_types(data=data) if untrusted is None else untrusted)
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node or "__module__" in node:
                found.add(f"{node.get('__module__')}.{node.get('__class__')}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def load_model(path: Path, served: list[str] | None = None, repo: Path | None = None
               ) -> TrainedModel:
    """Load a model saved by :func:`save_model`, after checking its hash and every type in it.

    With ``served`` (the feature service's current features), or ``repo`` (the repo whose
    event vocabulary and features it must have been trained on), a mismatch is an error
    (:class:`~usage_features.training.model.ModelMismatchError`). Anything else wrong with the
    file is a :class:`ModelFileError` saying what and why, raised before any object is built.
    """
    # deferred: skops takes ~0.6 s to import (pytest, dask); only a save or a load pays it
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model at {path}; run `usage-features train` first")
    expected = _recorded_hash(path)
    data = read_bounded(path)
    if file_sha256(data) != expected:
        raise ModelFileError(
            f"model file {path} does not match its metadata ({metadata_path(path).name}): its "
            "SHA-256 differs from the one recorded when it was saved, so it was changed, "
            f"corrupted or truncated since; {RETRAIN}")
    try:
        untrusted = sio.get_untrusted_types(data=data)  # (0.8 s for a model at 10^8 events)
        types = model_types(data, untrusted)
    except Exception as exc:  # whatever skops or zipfile raise on a broken file
        raise ModelFileError(f"{path} is not a readable model file ({type(exc).__name__}: "
                             f"{exc}); {RETRAIN}") from None
    refused = sorted(types - TRUSTED_TYPES)
    if refused:
        raise ModelFileError(
            f"{path} holds types no model of this project is made of, so it was not loaded "
            f"(loading could run code): {', '.join(refused)}; {RETRAIN}")
    try:
        loaded = sio.loads(data, trusted=untrusted)
        metadata = ModelMetadata(**json.loads(loaded["metadata"]))
        pipeline = loaded["pipeline"]
        horizons = HorizonModel.from_dict(loaded.get("horizons"))
    except Exception as exc:  # a file of allowed types but another shape
        raise ModelFileError(f"{path} is not a model saved by usage-features "
                             f"({type(exc).__name__}: {exc}); {RETRAIN}") from None
    model = TrainedModel(pipeline, metadata, horizons)
    if repo is not None:
        vocabulary = load_vocabulary(Path(repo))
        model.check_vocabulary(vocabulary)
        served = feature_spec(vocabulary).served_names
    if served is not None:
        model.check_features(served)
    return model


def _recorded_hash(path: Path) -> str:
    meta_file = metadata_path(path)
    if not meta_file.is_file():
        raise ModelFileError(f"model {path} has no metadata beside it ({meta_file.name}), so "
                             f"its integrity cannot be checked; {RETRAIN}")
    text = read_bounded(meta_file)
    try:
        recorded = json.loads(text.decode("utf-8")).get("model_file_sha256")
    except (ValueError, AttributeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"the metadata of model {path} ({meta_file.name}) is not a JSON "
                             f"object ({exc}); {RETRAIN}") from None
    if not isinstance(recorded, str) or len(recorded) != 64:
        raise ModelFileError(f"the metadata of model {path} ({meta_file.name}) records no "
                             "SHA-256 of the model file (saved by an older version?), so its "
                             f"integrity cannot be checked; {RETRAIN}")
    return recorded


def check_model_file(path: Path) -> None:
    """Check the model file's SHA-256 against its metadata without loading it (``verify``):
    streamed, so a file of any size costs no memory. Raises :class:`ModelFileError`."""
    path = Path(path)
    expected = _recorded_hash(path)
    with open(path, "rb") as handle:
        actual = hashlib.file_digest(handle, "sha256").hexdigest()
    if actual != expected:
        raise ModelFileError(
            f"model file {path} does not match its metadata ({metadata_path(path).name}): its "
            "SHA-256 differs from the one recorded when it was saved, so it was changed, "
            f"corrupted or truncated since; {RETRAIN}")


__all__ = ["DEFAULT_MAX_MODEL_BYTES", "MAX_MODEL_BYTES_VARIABLE", "TRUSTED_TYPES",
           "ModelFileError", "check_model_file", "load_model", "max_model_bytes",
           "metadata_path", "model_types", "save_model"]
