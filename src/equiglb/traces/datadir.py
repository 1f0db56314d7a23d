"""Where the real data sets are found: one ``data_dir`` holding the dataset folders side by side.

A *data folder* holds one sub-folder per data set, named as in :data:`equiglb.traces.fetch.DATASET_NAMES`
(exactly the layout of ``../shared/traces``)::

    <data_dir>/eglb-2022/        AI_workload.csv, carbon/, price/, water/, partial_mask.csv
    <data_dir>/sustain-cluster/  data/carbon_intensity/, data/electricity_prices/, data/weather/, ...
    <data_dir>/servegen/         data/language/m-large/, m-mid/, m-small/

:func:`dataset_dir` resolves one data set, in this order:

1. ``data_dir=`` given: ``<data_dir>/<name>``. For ``eglb-2022`` only, a ``data_dir`` that is itself
   the eGLB-2022 folder (it has no ``eglb-2022`` sub-folder) keeps working, as before.
2. ``$EQUIGLB_DATA_DIR`` (:data:`DATA_DIR_ENV`): ``$EQUIGLB_DATA_DIR/<name>``.
3. For ``eglb-2022`` only, the older ``$EQUIGLB_EGLB_2022_DIR`` (the eGLB folder itself), with a
   ``DeprecationWarning``.
4. The download cache ``cache_root()/<name>/<commit>`` filled by ``python -m equiglb.traces fetch <name>``.

Nothing is guessed beyond that: a folder that is named but lacks the data set raises
:class:`~equiglb.traces.csvio.TraceError` naming the path and the ways to provide it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from equiglb.traces.csvio import TraceError
from equiglb.traces.fetch import DATASET_NAMES, EGLB_2022_COMMIT, PINNED_DATASETS, cache_root
from equiglb.validate import as_path

__all__ = ["DATA_DIR_ENV", "EGLB_DIR_ENV_DEPRECATED", "dataset_dir"]

#: The one environment variable for a data folder holding every data set side by side.
DATA_DIR_ENV = "EQUIGLB_DATA_DIR"
#: The older per-dataset variable of eglb-2022 (the eGLB folder itself); still read, with a DeprecationWarning.
EGLB_DIR_ENV_DEPRECATED = "EQUIGLB_EGLB_2022_DIR"


def _how(name: str) -> str:
    return (f"pass data_dir=<a folder holding {name}/> (e.g. ../shared/traces), set ${DATA_DIR_ENV} to such a "
            f"folder, or download it once with `python -m equiglb.traces fetch {name}`")


def dataset_dir(name: str, data_dir: os.PathLike | str | None = None) -> Path:
    """The folder of data set ``name`` (see the module docstring for the order of the look-up).

    Raises:
        TraceError: the data set is not found where it was pointed to, or nowhere (the message says how to
            provide it).
    """
    if name not in DATASET_NAMES:
        raise TraceError(f"unknown dataset {name!r}; available: {list(DATASET_NAMES)}")
    if data_dir is not None:
        base = Path(as_path("data_dir", data_dir))
        origin = f"data_dir={str(base)!r}"
    elif os.environ.get(DATA_DIR_ENV):
        base = Path(os.environ[DATA_DIR_ENV])
        origin = f"${DATA_DIR_ENV}={str(base)!r}"
    else:
        base = None
        origin = ""
    if base is not None:
        sub = base / name
        if sub.is_dir():
            return sub
        if name == "eglb-2022" and data_dir is not None:
            return base          # the eGLB-2022 folder itself (the loader checks its files)
        raise TraceError(f"{sub}: folder of the {name} data set not found ({origin} should hold the data set "
                         f"folders side by side, like ../shared/traces); {_how(name)}")
    if name == "eglb-2022" and os.environ.get(EGLB_DIR_ENV_DEPRECATED):
        warnings.warn(f"${EGLB_DIR_ENV_DEPRECATED} is deprecated: set ${DATA_DIR_ENV} to the folder that holds "
                      f"eglb-2022/ (and the other data sets) instead", DeprecationWarning, stacklevel=3)
        return Path(os.environ[EGLB_DIR_ENV_DEPRECATED])
    commit = EGLB_2022_COMMIT if name == "eglb-2022" else PINNED_DATASETS[name].commit
    cached = cache_root() / name / commit
    if cached.is_dir():
        return cached
    raise TraceError(f"the {name} data set is not available locally: {_how(name)}")
