"""Where a model comes from: a model SPEC names it, `build` makes it.

    se_cnn, se_mobilenetv3_small, ...   a zoo model (`se-edge models`)
    timm:mobilenetv3_small_100          timm.create_model(NAME, pretrained=False, ...)
    torchvision:mobilenet_v3_small      torchvision.models.get_model(NAME, ...)
    path/to/net.py:build                FACTORY from the user's own file

Factories are called with `num_classes` and `in_chans` when they take them (timm's convention;
torchvision models take `num_classes` only). timm and torchvision are imported only when a spec
names them. A spec never downloads weights: pretrained weights come from `--weights FILE`
(models/weights.py), so a run is rebuilt from its run.json alone.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch.nn as nn

from se_edge.errors import SeEdgeError, one_line

LIBRARIES = {"timm": "timm", "torchvision": "torchvision"}  # spec prefix -> pip package
SPEC_FORMS = "a zoo name (se-edge models), timm:NAME, torchvision:NAME or path/to/file.py:FACTORY"


@dataclass(frozen=True)
class ModelSpec:
    kind: str  # "zoo" | "timm" | "torchvision" | "file"
    name: str  # model name, or the factory's name in a file
    path: str | None = None  # the .py file (absolute), for kind "file"

    @classmethod
    def parse(cls, text: str) -> "ModelSpec":
        text = str(text).strip()
        if not text:
            raise SeEdgeError(f"empty model spec; give {SPEC_FORMS}")
        prefix, sep, rest = text.partition(":")
        if sep and prefix in LIBRARIES:
            if not rest:
                raise SeEdgeError(f"model spec {text!r} names no model; e.g. {prefix}:mobilenet_v3_small")
            return cls(prefix, rest)
        file, sep, factory = text.rpartition(":")
        if sep and file.endswith(".py"):
            if not factory.isidentifier():
                raise SeEdgeError(f"model spec {text!r}: {factory!r} is not a Python function name; "
                                  "give path/to/file.py:FACTORY")
            return cls("file", factory, str(Path(file).expanduser().resolve()))
        if text.endswith(".py"):
            raise SeEdgeError(f"model spec {text!r} names a file but no factory; give {text}:FACTORY "
                              "(the function that returns the model)")
        from se_edge.models.registry import list_models

        if ":" in text or text not in list_models():
            raise SeEdgeError(f"unknown model {text!r}; valid: {', '.join(list_models())}, or timm:NAME, "
                              "torchvision:NAME, path/to/file.py:FACTORY")
        return cls("zoo", text)

    def __str__(self) -> str:
        if self.kind == "zoo":
            return self.name
        if self.kind == "file":
            return f"{self.path}:{self.name}"
        return f"{self.kind}:{self.name}"

    @property
    def short_name(self) -> str:
        """For default run directory names: the model's name without a library or a path."""
        return Path(self.path).stem if self.kind == "file" else self.name

    def source_sha256(self) -> str | None:
        """The user's model file's hash (a run is rebuilt from it: the record notices an edit)."""
        return sha256_file(self.path) if self.kind == "file" else None

    def build(self, num_classes: int, in_chans: int, sha256: str | None = None, **zoo_kwargs) -> nn.Module:
        """The model, randomly initialised. `zoo_kwargs` (se, se_squeeze, stem) reach zoo models only; `sha256`: the
        hash a model file must have (a run's record), checked on the bytes that are imported."""
        if self.kind == "zoo":
            from se_edge.models.registry import create_model

            try:
                return create_model(self.name, num_classes=num_classes, in_chans=in_chans, **zoo_kwargs)
            except ValueError as e:
                raise SeEdgeError(str(e)) from None
        factory = self._factory(sha256)
        model = _call(factory, str(self), num_classes=num_classes, in_chans=in_chans)
        if not isinstance(model, nn.Module):
            raise SeEdgeError(f"model spec {self}: the factory returned {type(model).__name__}, not a torch.nn.Module")
        return model

    def _factory(self, sha256: str | None = None):
        if self.kind == "file":
            return getattr(_import_file(self.path, sha256), self.name, None) or _missing_factory(self)
        package = LIBRARIES[self.kind]
        try:
            library = importlib.import_module(package)
        except ImportError as e:
            raise SeEdgeError(f"model spec {self} needs the {package} package, which is not installed here "
                              f"({type(e).__name__}: {one_line(e)}); pip install {package}") from None
        except Exception as e:  # installed but broken, e.g. torchvision's C ops built for another torch
            raise SeEdgeError(f"model spec {self} needs the {package} package, which is installed but fails to import "
                              f"({type(e).__name__}: {one_line(e)}); install a build that matches torch "
                              f"{_torch_version()}, or use file.py:FACTORY") from None
        if self.kind == "timm":
            if self.name not in library.list_models():
                raise SeEdgeError(f"timm has no model {self.name!r} (timm.list_models() lists them)")
            return lambda **kw: library.create_model(self.name, pretrained=False, **kw)
        import torchvision.models as tvm

        if self.name not in tvm.list_models():
            raise SeEdgeError(f"torchvision has no model {self.name!r} (torchvision.models.list_models() lists them)")
        return lambda num_classes: tvm.get_model(self.name, weights=None, num_classes=num_classes)


def _missing_factory(spec: ModelSpec):
    raise SeEdgeError(f"{spec.path} defines no {spec.name!r}; give path/to/file.py:FACTORY with a function in that file")


def _import_file(path: str, sha256: str | None = None):
    """The user's model file as a module, run from the bytes that were hashed (an edit between the check and the
    import cannot slip in). `sha256`: the hash the file must have (a run's record); None: the file the user named
    on this command line. An exit at import time (sys.exit, argparse) and what the file prints to stderr while it
    is refused become one line; it sees its own path as sys.argv, not se-edge's options."""
    try:
        with open(path, "rb") as f:
            source = f.read()
    except FileNotFoundError:
        raise SeEdgeError(f"model file not found: {path}") from None
    except OSError as e:
        raise SeEdgeError(f"cannot read model file {path}: {one_line(e)}") from None
    digest = hashlib.sha256(source).hexdigest()
    if sha256 is not None and digest != sha256:
        raise SeEdgeError(f"model file {path} changed since this run was made (sha256 {digest[:12]}, recorded "
                          f"{sha256[:12]}): se-edge imports only the file the run was made from; restore it, or start "
                          "a new run")
    name = "se_edge_user_model_" + hashlib.sha1(f"{path}:{digest}".encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    import contextlib
    import io
    import types

    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module  # dataclasses and pickling look a module up by name
    argv, printed = sys.argv, io.StringIO()
    sys.argv = [path]
    try:
        with contextlib.redirect_stderr(printed):
            exec(compile(source, path, "exec"), module.__dict__)
    except KeyboardInterrupt:
        del sys.modules[name]
        raise
    except BaseException as e:  # noqa: BLE001 - SystemExit from sys.exit or argparse included
        del sys.modules[name]
        said = [line for line in printed.getvalue().splitlines() if line.strip()]
        what = (f"exited with code {e.code!r} while being imported" if isinstance(e, SystemExit)
                else f"failed to import: {type(e).__name__}: {one_line(e)}")
        raise SeEdgeError(f"model file {path} {what}" + (f" (it printed: {one_line(said[-1])[:200]})" if said else "")
                          + "; a model file should define the factory without side effects at import") from None
    finally:
        sys.argv = argv
    sys.stderr.write(printed.getvalue())  # imported: its warnings are the user's to see
    return module


def _call(factory, label: str, **offered):
    """Call `factory` with the offered keyword arguments it takes (all of them if it takes **kwargs)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in offered.items() if takes_any or k in params}
    try:
        return factory(**kwargs)
    except SeEdgeError:
        raise
    except SystemExit as e:
        raise SeEdgeError(f"model spec {label}: the factory exited with code {e.code!r} instead of returning a "
                          "model") from None
    except Exception as e:
        raise SeEdgeError(f"model spec {label}: the factory failed: {type(e).__name__}: {one_line(e)}") from None


def _torch_version() -> str:
    import torch

    return torch.__version__


def input_channels(model: nn.Module) -> int | None:
    """The input channels the model's first convolution expects (None when it has none)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return None


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
