"""This package's classes in transformers' Auto classes, registered on first use so that ``import medicane_hf`` stays
cheap (no torch, no transformers).

``import medicane_hf`` calls `install`. The Auto classes look models up in mapping objects of
``transformers.models.auto`` (``CONFIG_MAPPING``, ``MODEL_MAPPING``, ...) whose registered entries live in a plain dict,
``_extra_content``. As soon as the module holding a mapping is imported (now, or later through a post-import hook
on `sys.meta_path`), that dict is replaced by `_LazyEntries`, a dict that knows which keys are this package's
(``"medicane_videomae"``, `MedicaneVideoMAEConfig`): the first look-up of one imports the config, model and video
processor modules and registers them (`register`), then answers. Nothing of this package is imported while
transformers imports itself, only when an Auto class is asked for one of its models.

Written by hand: transformers registers only classes that are already imported (``AutoConfig.register`` and
friends) and has no lazy registration for code outside it. A test loads a saved folder through every Auto class
after a bare ``import medicane_hf``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importlib.abc alone costs more than the rest of `import medicane_hf`: duck-typed below
    import importlib.abc
    import importlib.machinery
    from collections.abc import Callable
    from types import ModuleType

MODEL_TYPE = "medicane_videomae"

# the module of transformers holding each mapping -> the mapping names in it
_MAPPINGS: dict[str, tuple[str, ...]] = {
    "transformers.models.auto.configuration_auto": ("CONFIG_MAPPING",),
    "transformers.models.auto.modeling_auto": (
        "MODEL_MAPPING",
        "MODEL_FOR_PRETRAINING_MAPPING",
        "MODEL_FOR_VIDEO_CLASSIFICATION_MAPPING",
        "MODEL_FOR_KEYPOINT_DETECTION_MAPPING",
    ),
    "transformers.models.auto.video_processing_auto": ("VIDEO_PROCESSOR_MAPPING",),
}
# mappings that transformers also searches by iterating (AutoVideoProcessor looks a class up by its name)
_ITERATED = {"VIDEO_PROCESSOR_MAPPING"}

_state = {"registered": False, "registering": False}


def register() -> None:
    """Register the config, the four model classes and the video processor with their Auto classes (once)."""
    if _state["registered"] or _state["registering"]:
        return
    _state["registering"] = True
    try:
        from transformers import AutoConfig, AutoVideoProcessor
        from transformers.models.auto import modeling_auto

        from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
        from medicane_hf.modeling_medicane import AUTO_CLASSES
        from medicane_hf.video_processing_medicane import MedicaneVideoProcessor

        AutoConfig.register(MODEL_TYPE, MedicaneVideoMAEConfig, exist_ok=True)
        for auto_name, model_class in AUTO_CLASSES.items():
            getattr(modeling_auto, auto_name).register(MedicaneVideoMAEConfig, model_class, exist_ok=True)
        AutoVideoProcessor.register(MedicaneVideoMAEConfig, MedicaneVideoProcessor, exist_ok=True)
        _state["registered"] = True
    finally:
        _state["registering"] = False


def _is_ours(key: Any) -> bool:
    """A key of this package: the model type, or the package's config class (not a folder's remote-code copy)."""
    if key == MODEL_TYPE:
        return True
    return (
        isinstance(key, type)
        and getattr(key, "model_type", None) == MODEL_TYPE
        and key.__module__ == "medicane_hf.configuration_medicane"
    )


class _LazyEntries(dict):
    """The ``_extra_content`` of one Auto mapping: registers this package (`register`) when one of its keys is
    looked up, or, with ``on_iteration``, when the entries are listed."""

    def __init__(self, entries: dict, on_iteration: bool = False) -> None:
        super().__init__(entries)
        self._on_iteration = on_iteration

    def _load(self, key: Any) -> None:
        if not _state["registered"] and not dict.__contains__(self, key) and _is_ours(key):
            register()

    def __contains__(self, key: object) -> bool:
        self._load(key)
        return dict.__contains__(self, key)

    def __getitem__(self, key: Any) -> Any:
        self._load(key)
        return dict.__getitem__(self, key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._load(key)
        return dict.get(self, key, default)

    def _listing(self) -> None:
        if self._on_iteration and not _state["registered"]:
            register()

    def values(self):  # noqa: D102
        self._listing()
        return dict.values(self)

    def items(self):  # noqa: D102
        self._listing()
        return dict.items(self)

    def keys(self):  # noqa: D102
        self._listing()
        return dict.keys(self)

    def __iter__(self):
        self._listing()
        return dict.__iter__(self)


def _wrap_mappings(module: ModuleType) -> None:
    """Replace the ``_extra_content`` of the mappings in `module` (a transformers auto module) by `_LazyEntries`."""
    for name in _MAPPINGS[module.__name__]:
        mapping = getattr(module, name, None)
        if mapping is None or isinstance(mapping._extra_content, _LazyEntries):
            continue
        mapping._extra_content = _LazyEntries(mapping._extra_content, on_iteration=name in _ITERATED)


class _HookedLoader:
    """A module's own loader, then `after` on the executed module."""

    def __init__(self, loader: importlib.abc.Loader, after: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._after = after

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        self._after(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ... of the real loader
        return getattr(self._loader, name)


class _PostImportFinder:
    """Finds nothing itself: hooks `_wrap_mappings` onto the transformers auto modules when they are imported."""

    def find_spec(
        self, fullname: str, path: Any, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _MAPPINGS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _HookedLoader(spec.loader, _wrap_mappings)
                return spec
        return None


def install() -> None:
    """Make the Auto classes know this package: now for the auto modules already imported, else when they are."""
    for name in _MAPPINGS:
        module = sys.modules.get(name)
        if module is not None:
            _wrap_mappings(module)
    if not any(isinstance(finder, _PostImportFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PostImportFinder())
