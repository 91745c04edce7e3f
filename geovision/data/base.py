"""The one dataset contract every geovision dataset implements (CONTRIBUTING.md, "Adding a
dataset", lists what a new one needs)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from geovision.data.image_io import ImageReadError, read_image, read_mask
from geovision.data.splits import (
    ROW_SPLITS,
    SplitSettings,
    check_fractions,
    check_split_name,
    rows_in_split,
)
from geovision.data.tasks import TASKS
from geovision.data.transforms import OneHot, ScaleNormalize
from geovision.errors import DataError, GeovisionError

CLASSIFICATION_COLUMNS = ("image_path", "label_str", "label_idx", "split")
SEGMENTATION_COLUMNS = ("image_path", "mask_path", "split")
MULTILABEL_COLUMNS = ("image_path", "label_str", "split")
COLUMNS = {"classification": CLASSIFICATION_COLUMNS, "segmentation": SEGMENTATION_COLUMNS,
           "multilabel": MULTILABEL_COLUMNS}
DF_BUILDERS = {"classification": "classification_df", "segmentation": "segmentation_df",
               "multilabel": "multilabel_df"}
LABEL_SEPARATOR = "|"


class DatasetDefinitionError(GeovisionError, TypeError):
    """A dataset class is missing part of the contract."""


def multi_hot(label_str: str, class_names: tuple[str, ...]) -> np.ndarray:
    """"a|c" -> float32 vector with ones at the positions of a and c in `class_names`."""
    vector = np.zeros(len(class_names), dtype=np.float32)
    if label_str:
        index = {name: i for i, name in enumerate(class_names)}
        vector[[index[name] for name in label_str.split(LABEL_SEPARATOR)]] = 1.0
    return vector


def multi_hot_tensor(vector: np.ndarray) -> torch.Tensor:
    """The default multi-label target transform: the stored multi-hot vector as a tensor."""
    return torch.tensor(vector, dtype=torch.float32)  # a copy: callers may modify it


class UnpublishedStatistics:
    """The default image transform of a dataset that publishes no statistics: it refuses to
    guess and says where the data's own statistics come from. (Reading raw samples, for
    statistics and shards, never calls it.)"""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, image: Any) -> Any:
        raise DataError(
            f"{self.name} publishes no per-band statistics to standardise its images with. "
            "Compute them from the data (the image_statistics asset, or "
            f"geovision.pipeline.compute_statistics({self.name!r})) and pass image_transform="
            "cls.standardiser(summary['train_means'], summary['train_std_devs']); "
            "`geovision train` and the trained_model asset do both themselves.")


class SampleTransform:
    """Turns a stored (image, target) pair into the tensors a model sees.

    The map-style dataset and the HDF5 / streaming readers all call this one object, which is
    why they return identical tuples.
    """

    def __init__(self, image_transform: Callable, target_transform: Callable,
                 common_transform: Callable | None = None) -> None:
        self.image_transform = image_transform
        self.target_transform = target_transform
        self.common_transform = common_transform

    def __call__(self, image: np.ndarray, target: Any) -> tuple[Any, Any]:
        image = self.image_transform(image)
        target = self.target_transform(target)
        if self.common_transform is not None:
            image, target = self.common_transform(image, target)
        return image, target


class GeoDataset(Dataset):
    """Map-style dataset over a `df` of samples; subclasses describe one real dataset.

    Subclasses set the class attributes and implement `classification_df`, `segmentation_df`
    or `multilabel_df` (matching TASK), each taking `(root, splits: SplitSettings)`, and
    `download_and_extract`. Writing a dataset as shards is the shards package's job
    (`geovision.data.shards.hdf.write_hdf_splits`, `.streaming.write_streaming_splits`, given
    the class), so this module never imports the shard writers that import it.

    TASK "multilabel" is for samples that carry any number of the classes at once (e.g. the
    land-cover labels of a BigEarthNet patch). Its df has columns image_path, label_str, split,
    where label_str is the sample's class names joined by "|" in CLASS_NAMES order ("" for none),
    and `__getitem__` returns (image, target, df_idx) with target a float32 multi-hot vector of
    len(CLASS_NAMES). Label co-occurrence makes exact stratification ill-defined, so multi-label
    datasets without official splits use `random_splits`.

    A `df` passed in is validated against the contract, including that its files exist;
    `check_files=False` leaves that to the reads, for callers that read every file and report
    missing ones themselves.
    """

    NAME: ClassVar[str] = ""
    TASK: ClassVar[str] = ""
    TEMPORAL: ClassVar[bool] = False  # samples are time series (geovision.data.temporal)
    CLASS_NAMES: ClassVar[tuple[str, ...]] = ()
    # Published per-band statistics on images scaled to [0, 1], or None where the dataset
    # publishes none: then only the statistics asset's (computed from the data, and what
    # training always uses) can standardise it.
    MEANS: ClassVar[tuple[float, ...] | None] = ()
    STD_DEVS: ClassVar[tuple[float, ...] | None] = ()
    BANDS: ClassVar[tuple[str, ...]] = ()
    IGNORE_INDEX: ClassVar[int | None] = None
    SCALE: ClassVar[float | None] = None
    DEFAULT_VAL_SPLIT: ClassVar[float] = 0.1
    DEFAULT_TEST_SPLIT: ClassVar[float] = 0.2
    DEFAULT_RANDOM_SEED: ClassVar[int] = 42

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.NAME:
            return  # an intermediate base class
        if cls.TASK not in TASKS:
            raise DatasetDefinitionError(f"{cls.__name__}.TASK={cls.TASK!r}; use one of {TASKS}.")
        if cls.TASK == "segmentation" and len(cls.CLASS_NAMES) < 2:
            raise DatasetDefinitionError(f"{cls.__name__}: segmentation needs at least two "
                                         "CLASS_NAMES (binary masks use background + object).")
        if (cls.MEANS is None) != (cls.STD_DEVS is None):
            raise DatasetDefinitionError(f"{cls.__name__}: MEANS and STD_DEVS are both "
                                         "published statistics or both None.")
        if not cls.BANDS or (cls.MEANS is not None and not (
                len(cls.BANDS) == len(cls.MEANS) == len(cls.STD_DEVS))):
            raise DatasetDefinitionError(f"{cls.__name__}: BANDS, MEANS and STD_DEVS need one "
                                         "entry per band.")
        builder = DF_BUILDERS[cls.TASK]
        if not callable(getattr(cls, builder, None)):
            raise DatasetDefinitionError(f"{cls.__name__} has TASK={cls.TASK!r} but no "
                                         f"{builder} class method.")

    def __init__(
        self,
        root: str | os.PathLike,
        df: pd.DataFrame | None = None,
        split: str = "all",
        val_split: float | None = None,
        test_split: float | None = None,
        random_seed: int | None = None,
        image_transform: Callable | None = None,
        target_transform: Callable | None = None,
        common_transform: Callable | None = None,
        check_files: bool = True,
    ) -> None:
        check_split_name(split)
        self.root = Path(root).expanduser().resolve()
        self.split = split
        self.splits = self.split_settings(random_seed, val_split, test_split)
        check_fractions(self.splits.val_split, self.splits.test_split)
        if df is None:
            df = self.build_df(self.root, self.splits)
        else:
            # check_files=False: the caller reads every file and reports missing ones itself
            # (a stat per file here would cost a fair share of reading the file again).
            self.validate_df(df, self.root, check_files=check_files)
        self.df = df
        self.split_df = self.make_split_df(df, self.root, split)
        self.sample_transform = SampleTransform(
            image_transform or self.default_image_transform(),
            target_transform or self.default_target_transform(),
            common_transform,
        )
        self._image_paths = self.split_df["image_path"].tolist()
        self._df_idx = self.split_df["df_idx"].tolist()
        if self.TASK == "classification":
            self._targets = self.split_df["label_idx"].astype(int).tolist()
        elif self.TASK == "multilabel":
            self._targets = [multi_hot(s, self.CLASS_NAMES) for s in self.split_df["label_str"]]
        else:
            self._targets = self.split_df["mask_path"].tolist()

    # ----- identity -----------------------------------------------------------------------

    @property
    def num_classes(self) -> int:
        return len(self.CLASS_NAMES)

    @classmethod
    def split_settings(cls, random_seed: int | None = None, val_split: float | None = None,
                       test_split: float | None = None) -> SplitSettings:
        """These split settings, with the dataset's defaults for those left None."""
        return SplitSettings(
            random_seed=cls.DEFAULT_RANDOM_SEED if random_seed is None else random_seed,
            val_split=cls.DEFAULT_VAL_SPLIT if val_split is None else val_split,
            test_split=cls.DEFAULT_TEST_SPLIT if test_split is None else test_split)

    @classmethod
    def build_df(cls, root: str | os.PathLike,
                 splits: SplitSettings | None = None) -> pd.DataFrame:
        """The dataset's df for these split settings (default: the dataset's own), built by
        the TASK's df class method, which takes `(root, splits)`."""
        builder = getattr(cls, DF_BUILDERS[cls.TASK])
        df = builder(Path(root), cls.split_settings() if splits is None else splits)
        cls.validate_df(df, Path(root), check_files=False)
        return df

    @classmethod
    def validate_df(cls, df: pd.DataFrame, root: Path, check_files: bool = True) -> None:
        """Refuse a df that does not follow the contract, naming the problem."""
        columns = COLUMNS[cls.TASK]
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise DataError(f"{cls.NAME} df lacks columns {missing}; a {cls.TASK} df needs "
                            f"{list(columns)} (paths relative to the dataset root).")
        if df.index.has_duplicates:
            raise DataError(f"{cls.NAME} df has duplicate index values; df_idx must be unique. "
                            "Use df.reset_index(drop=True).")
        bad_splits = sorted(set(df["split"].unique()) - set(ROW_SPLITS))
        if bad_splits:
            raise DataError(f"{cls.NAME} df has split values {bad_splits}; each row's split "
                            f"must be one of {ROW_SPLITS}.")
        if cls.TASK == "classification":
            expected = df["label_str"].map({n: i for i, n in enumerate(cls.CLASS_NAMES)})
            wrong = df.index[expected.isna() | (expected != df["label_idx"])]
            if len(wrong):
                raise DataError(f"{cls.NAME} df rows {list(wrong[:5])} have label_str/label_idx "
                                f"not matching CLASS_NAMES {cls.CLASS_NAMES}.")
        if cls.TASK == "multilabel":
            cls._check_multilabel_strings(df)
        if check_files:
            path_columns = ["image_path"] + (["mask_path"] if cls.TASK == "segmentation" else [])
            for column in path_columns:
                absent = [p for p in df[column] if not (root / p).is_file()]
                if absent:
                    raise DataError(f"{cls.NAME} df names {len(absent)} missing files in "
                                    f"{column!r}, e.g. {root / absent[0]}; paths are relative "
                                    f"to the dataset root {root}.")

    @classmethod
    def _check_multilabel_strings(cls, df: pd.DataFrame) -> None:
        """Every label_str must list known class names once each, in CLASS_NAMES order."""
        position = {name: i for i, name in enumerate(cls.CLASS_NAMES)}
        for row, label_str in df["label_str"].items():
            if not isinstance(label_str, str):
                raise DataError(f"{cls.NAME} df row {row} has label_str {label_str!r}; use a "
                                f"string of class names joined by {LABEL_SEPARATOR!r}.")
            names = label_str.split(LABEL_SEPARATOR) if label_str else []
            unknown = [n for n in names if n not in position]
            if unknown:
                raise DataError(f"{cls.NAME} df row {row} has label_str {label_str!r} with "
                                f"names {unknown} not in CLASS_NAMES; join class names from "
                                f"CLASS_NAMES with {LABEL_SEPARATOR!r}.")
            order = [position[n] for n in names]
            if order != sorted(set(order)):
                raise DataError(f"{cls.NAME} df row {row} has label_str {label_str!r}: list each "
                                "class once, in CLASS_NAMES order, so equal label sets compare "
                                "equal.")

    @staticmethod
    def make_split_df(df: pd.DataFrame, root: Path, split: str) -> pd.DataFrame:
        """The rows of `split`, with absolute paths and `df_idx` pointing back into `df`."""
        rows = df[rows_in_split(df["split"], split)].copy()
        rows.insert(0, "df_idx", rows.index.astype(np.int64))
        base = os.fspath(root)
        for column in ("image_path", "mask_path"):
            if column in rows:
                # os.path.join on str over a list: several times faster than pathlib's `/` or
                # iterating the Series, which matters for datasets of millions of images
                rows[column] = [os.path.join(base, p) for p in rows[column].tolist()]
        return rows.reset_index(drop=True)

    # ----- reading ------------------------------------------------------------------------

    @classmethod
    def read_image(cls, path: str | os.PathLike) -> np.ndarray:
        """One image as stored: (C, H, W) in its file's dtype, band count checked."""
        return read_image(path, expected_bands=len(cls.BANDS))

    @classmethod
    def read_mask(cls, path: str | os.PathLike) -> np.ndarray:
        """One mask file as (H, W) class indices: its stored values through `decode_mask`."""
        return cls.decode_mask(read_mask(path), str(path))

    @classmethod
    def decode_mask(cls, stored: np.ndarray, source: str = "mask") -> np.ndarray:
        """Stored mask values (C, H, W) -> (H, W) class indices.

        The default expects one band that already holds indices; datasets whose files hold
        other codes (0/255, colours, trimap values) override this. Whole files and chip
        windows both go through it, so a chip's mask decodes exactly like its file's.
        """
        if stored.shape[0] != 1:
            raise ImageReadError(f"{source} has {stored.shape[0]} bands; {cls.NAME} masks have "
                                 "one band of class indices.")
        return stored[0]

    def read_raw(self, index: int) -> tuple[np.ndarray, Any, int]:
        """The stored sample at `index`: (image array, label int, multi-hot vector or mask
        array, df_idx)."""
        image = self.read_image(self._image_paths[index])
        target = self._targets[index]
        if self.TASK == "segmentation":
            target = self.read_mask(target)
        return image, target, self._df_idx[index]

    def __len__(self) -> int:
        return len(self._image_paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        image, target, df_idx = self.read_raw(index % len(self))
        image, target = self.sample_transform(image, target)
        return image, target, df_idx

    # ----- defaults -----------------------------------------------------------------------

    @classmethod
    def standardiser(cls, means: Sequence[float], std_devs: Sequence[float]) -> Callable:
        """The image transform standardising this dataset's stored images with per-band
        `means` / `std_devs` (of images scaled to [0, 1]): the default transform with the
        published values, and training with the statistics asset's."""
        return ScaleNormalize(means, std_devs, cls.SCALE)

    @classmethod
    def default_image_transform(cls) -> Callable:
        if cls.MEANS is None:
            return UnpublishedStatistics(cls.NAME)
        return cls.standardiser(cls.MEANS, cls.STD_DEVS)

    @classmethod
    def default_target_transform(cls) -> Callable:
        if cls.TASK == "classification":
            return int
        if cls.TASK == "multilabel":
            return multi_hot_tensor
        return OneHot(len(cls.CLASS_NAMES), cls.IGNORE_INDEX)

    # ----- acquisition -----------------------------------------------------------------

    @classmethod
    def download_and_extract(cls, root: str | os.PathLike) -> Path:
        """Fetch the dataset into `root` (verified, resumable); subclasses say how."""
        raise DatasetDefinitionError(
            f"{cls.__name__} does not define download_and_extract; place the files under {root} "
            "by hand in the dataset's published layout.")

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The class-level facts recorded with every artifact made from this dataset."""
        return {
            "name": cls.NAME,
            "task": cls.TASK,
            "class_names": list(cls.CLASS_NAMES),
            "bands": list(cls.BANDS),
            "means": None if cls.MEANS is None else list(cls.MEANS),
            "std_devs": None if cls.STD_DEVS is None else list(cls.STD_DEVS),
            "temporal": cls.TEMPORAL,
            "ignore_index": cls.IGNORE_INDEX,
        }
