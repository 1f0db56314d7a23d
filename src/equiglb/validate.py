"""Validation of user options, written once: every check names the option, the value and what was expected.

Every public entry point of equiglb (``load_scenario`` and its loaders, :class:`~equiglb.scenario.Weights`,
:class:`~equiglb.scenario.Scenario`, ``gymnasium.make`` through ``EnvConfig.make``, the baselines' constructors
and the command lines) checks its options with these functions *before* any work is done, so that a bad value
is refused with a message such as::

    episode_length=24.9: expected an integer number of hours, got a float

and never silently coerced (``int(24.9) == 24``, ``bool("false") is True``). The rules (docs/errors.md):

* an integer option takes a Python or numpy integer, or a float with an integral value (``24.0``); never a
  bool, a string, or a fractional float;
* a number option takes an int or float (numpy included), never a bool or a string; NaN is always refused,
  infinity unless the option allows it, and values beyond :data:`MAX_MAGNITUDE` are refused;
* a bool option takes only ``True`` / ``False`` (numpy bools included); ``"false"``, ``0`` and ``1`` are refused.
"""

from __future__ import annotations

import argparse
import math
import numbers
import os
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

import numpy as np
import yaml

__all__ = ["ScenarioError", "OptionError", "UnknownOptionError", "cli_value", "MAX_MAGNITUDE", "as_int", "as_float",
           "as_bool", "one_of", "only_with", "as_seed", "as_path", "as_float_array", "as_output_path",
           "CliArgumentParser", "cli_int", "UniqueKeyLoader", "yaml_load_unique", "check_reset_options", "write_atomic"]

#: Largest absolute value accepted for any number option or data value (weights in USD, prices in USD/MWh, ...).
#: Larger values are data-entry errors in practice, and they crush every other observation to 0 after scaling.
MAX_MAGNITUDE = 1e12


class ScenarioError(ValueError):
    """A scenario (or a trace file behind it) is invalid. The message names the field and value."""


class OptionError(ScenarioError):
    """An option has the wrong type or is out of range. The message names the option and the value."""


def cli_value(raw: str) -> Any:
    """A command-line ``key=value`` value read as YAML, with every float literal a float.

    YAML reads ``1e7`` and ``inf`` as strings (it wants ``1.0e+7`` and ``.inf``); on a command line
    they mean numbers, so an unquoted string that Python's ``float`` parses becomes that float
    (``nan`` too, which the options' checks then refuse by name). A quoted value (``'256'``) stays a
    string. Raises ``yaml.YAMLError`` on invalid YAML.
    """
    value = yaml.safe_load(raw) if raw.strip() else None
    if isinstance(value, str) and raw.strip()[:1] not in ("'", '"'):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def cli_int(text: str, lo: int, hi: int, what: str) -> int:
    """A command-line integer (an ``argparse`` ``type=``): an integer literal, or a float literal with an
    integral value (``1e6``, ``2048.0``), in ``lo..hi``; ``2048.7``, ``1e400`` (infinity) and ``nan`` raise
    ``argparse.ArgumentTypeError`` naming ``what`` and the text, never truncated."""
    t = text.strip()
    try:
        v = int(t)
    except ValueError:
        try:
            f = float(t)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(f):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r} (not a finite number)") from None
        if f != int(f):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r} (not a whole number)") from None
        v = int(f)
    if not lo <= v <= hi:
        raise argparse.ArgumentTypeError(f"expected {what} in {lo}..{hi}, got {text!r}")
    return v


class UnknownOptionError(OptionError, TypeError):
    """A keyword option that does not exist. Also a ``TypeError``, as Python raises for an unexpected
    keyword argument, so that wrappers probing optional keywords (TorchRL's ``frameskip``) work."""


def _kind(value: Any) -> str:
    return type(value).__name__


def _show(value: Any) -> str:
    v = value.item() if isinstance(value, np.generic) else value
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _unit(unit: str) -> str:
    return f" {unit}" if unit else ""


def as_int(name: str, value: Any, lo: int | None = None, hi: int | None = None, unit: str = "") -> int:
    """``value`` as an int, or :class:`OptionError` naming ``name``.

    Args:
        name: the option's name as the user wrote it (``"episode_length"``, ``"--mpc-horizon"``).
        value: the value given.
        lo, hi: inclusive bounds (``None``: unbounded).
        unit: the unit of the option, used in messages (``"hours"``, ``"slots"``).
    """
    what = f"an integer number of {unit}" if unit else "an integer"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise OptionError(f"{name}={_show(value)}: expected {what}, got a {_kind(value)}")
    if isinstance(value, numbers.Integral):
        out = int(value)
    else:
        f = float(value)
        if not (math.isfinite(f) and f == int(f)):
            raise OptionError(f"{name}={_show(value)}: expected {what}, got a {_kind(value)}")
        out = int(f)
    if (lo is not None and out < lo) or (hi is not None and out > hi):
        lo_s = "" if lo is None else str(lo)
        hi_s = "" if hi is None else str(hi)
        raise OptionError(f"{name}={out}: must be in {lo_s}..{hi_s}{_unit(unit)}")
    return out


def as_float(name: str, value: Any, lo: float | None = None, hi: float | None = None, unit: str = "",
             lo_open: bool = False, allow_inf: bool = False, max_magnitude: float = MAX_MAGNITUDE) -> float:
    """``value`` as a finite float within bounds, or :class:`OptionError` naming ``name``.

    Args:
        name: the option's name.
        value: the value given (int or float, numpy included; not a bool or a string).
        lo, hi: bounds; ``lo`` is exclusive when ``lo_open``.
        unit: unit for messages.
        allow_inf: accept ``+inf`` (e.g. ``q = inf``); NaN is never accepted.
        max_magnitude: refuse finite values with ``|value| > max_magnitude``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise OptionError(f"{name}={_show(value)}: expected a number{_unit(unit) and ' in' + _unit(unit)}, "
                          f"got a {_kind(value)}")
    f = float(value)
    if math.isnan(f) or (math.isinf(f) and not (allow_inf and f > 0)):
        raise OptionError(f"{name}={f!r}: expected a finite number{' or inf' if allow_inf else ''}")
    if math.isfinite(f) and abs(f) > max_magnitude:
        raise OptionError(f"{name}={f!r}: magnitude above the accepted maximum {max_magnitude:g}{_unit(unit)}")
    if lo is not None and (f <= lo if lo_open else f < lo):
        raise OptionError(f"{name}={f!r}: must be {'>' if lo_open else '>='} {lo!r}{_unit(unit)}")
    if hi is not None and f > hi:
        raise OptionError(f"{name}={f!r}: must be <= {hi!r}{_unit(unit)}")
    return f


def as_bool(name: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (numpy bools included), else :class:`OptionError`."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise OptionError(f"{name}={_show(value)}: expected True or False, got a {_kind(value)}")


def one_of(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``, else :class:`OptionError` listing them."""
    choices = list(choices)
    if not any(isinstance(value, type(c)) and isinstance(value, bool) == isinstance(c, bool) and c == value
               for c in choices):
        raise OptionError(f"{name}={_show(value)}: expected one of {choices}")
    return value


def only_with(name: str, value: Any, default: Any, requirement: str, met: bool, actual: str = "") -> Any:
    """``value`` if ``met`` or it equals ``default``, else :class:`OptionError`: an option that applies only
    under ``requirement`` (e.g. ``"action_mode='eglb_residual'"``) set to another value than its default
    while the requirement does not hold (``actual`` says what holds instead, e.g. ``"action_mode='prices'"``),
    so that it is not silently ignored."""
    if met or value == default:
        return value
    got = f", got {actual}" if actual else ""
    raise OptionError(f"{name}={_show(value)}: applies only with {requirement}{got}; "
                      f"leave it at its default {default!r} or set {requirement}")


def as_seed(name: str, value: Any) -> int:
    """A seed: an integer in 0 .. 2**63 - 1 (what ``numpy.random.default_rng`` accepts)."""
    return as_int(name, value, 0, 2**63 - 1)


def as_path(name: str, value: Any) -> str:
    """A non-empty path given as ``str`` or ``os.PathLike``; returns it as ``str``."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise OptionError(f"{name}={_show(value)}: expected a path (str or os.PathLike), got a {_kind(value)}")
    if "\x00" in value:
        raise OptionError(f"{name}={_show(value)}: a path cannot contain a NUL character")
    return value


def as_float_array(name: str, value: Any, shape: tuple[int, ...] | None = None, lo: float | None = None,
                   max_magnitude: float = MAX_MAGNITUDE) -> np.ndarray:
    """A float64 array of numbers (not strings or bools), finite, within ``[lo, max_magnitude]`` and shape."""
    if isinstance(value, (str, bytes)):
        raise OptionError(f"{name}={_show(value)}: expected a sequence of numbers, got a {_kind(value)}")
    raw = np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) else value
    flat = raw.ravel() if isinstance(raw, np.ndarray) else np.asarray([raw])
    for k, v in enumerate(flat):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            raise OptionError(f"{name}: entry {k} is {_show(v)}, expected a number, got a {_kind(v)}")
    a = np.asarray(value, dtype=np.float64)
    if shape is not None and a.shape != shape:
        raise OptionError(f"{name} has shape {a.shape}, expected {shape}")
    bad = ~np.isfinite(a) | (np.abs(a) > max_magnitude) | ((a < lo) if lo is not None else False)
    if np.any(bad):
        idx = tuple(int(v) for v in np.argwhere(bad)[0]) if a.ndim else ()
        v = float(a[idx])
        rule = f"finite, >= {lo!r}" if lo is not None else "finite"
        raise OptionError(f"{name}[{', '.join(map(str, idx))}]={v!r}: must be {rule} and of magnitude "
                          f"<= {max_magnitude:g}")
    return a


def as_output_path(name: str, value: Any) -> str:
    """A file path that can be written: not a folder, in an existing folder that is writable.

    Checked before any work is done, so that a long computation never ends in an unwritable output.
    """
    path = as_path(name, value)
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise OptionError(f"{name}={path!r}: is a folder, expected a file path")
    if not os.path.isdir(parent):
        raise OptionError(f"{name}={path!r}: the folder {parent!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise OptionError(f"{name}={path!r}: not writable (permission denied)")
    return path


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (PyYAML silently keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        """As SafeLoader's, with a ``ConstructorError`` naming the line of a key given twice."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":          # ``<<: *base``: keys written after it override
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                dup = key in seen
                seen.add(key)
            except TypeError:                                       # an unhashable key: SafeLoader refuses it
                continue
            if dup:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def yaml_load_unique(text: str) -> Any:
    """``yaml.safe_load`` that raises ``yaml.YAMLError`` on a key given twice in a mapping (the error
    names the key and its line), so that an edited file never silently loses an entry."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:                # one line: "<problem> (line L, column C)"
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise yaml.YAMLError(f"{exc.problem or exc.context or 'invalid YAML'}{where}") from None


def check_reset_options(options: Any, allowed: Iterable[str]) -> dict[str, Any]:
    """The ``options`` of ``reset(options=...)``: None or a dict whose keys are among ``allowed``
    (e.g. ``{"start"}``); anything else is an :class:`UnknownOptionError` or :class:`OptionError` that
    names the value, so that a typo such as ``{"strat": 100}`` is not silently ignored."""
    if options is None:
        return {}
    allowed = sorted(allowed)
    if not isinstance(options, dict):
        raise OptionError(f"reset(options={_show(options)}): expected a dict with the keys {allowed} "
                          f"(or None), got a {_kind(options)}")
    unknown = sorted(str(k) for k in options if k not in allowed)
    if unknown:
        raise UnknownOptionError(f"reset(options=...): unknown key(s) {unknown}; the keys are {allowed}")
    return options


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder renamed into place, so that
    an interrupted or failed write never leaves a half-written file under the final name."""
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class CliArgumentParser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` whose usage errors are one ``error: ...`` line on stderr, exit status 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``error: <message>`` (naming the option) and exit with status 2."""
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


class KeyValueError(ValueError):
    """A ``KEY=VALUE`` command-line item that :func:`parse_key_values` refuses: ``item`` is the text as given,
    ``why`` what is wrong with it; each command line words its own message from them."""

    def __init__(self, item: str, why: str) -> None:
        super().__init__(f"{item!r}: {why}")
        self.item, self.why = item, why


def parse_key_values(items: Iterable[str] | None, parse: Callable[[str], Any] = cli_value, separators: str = "=",
                     unique: bool = False) -> dict[str, Any]:
    """The command lines' ``KEY=VALUE`` items (``--env-kwargs``, ``--hyperparams``, ``--option``, ``--grid``)
    as a mapping ``{key: parse(value)}``, in the order given.

    The key is the text before the first of ``separators`` (``"=:"`` also takes RL Zoo's ``key:value``),
    stripped; the value the text after it, read by ``parse`` (default :func:`cli_value`: YAML). A later item
    replaces an earlier one with the same key, unless ``unique``. Raises :class:`KeyValueError` for an item
    without a separator or key (``why``: ``expected key=value``), a value ``parse`` refuses, or a key given
    twice with ``unique``.
    """
    out: dict[str, Any] = {}
    for item in items or ():
        item = str(item)
        cuts = [i for i in (item.find(s) for s in separators) if i >= 0]
        key = item[:min(cuts)].strip() if cuts else ""
        if not key:
            raise KeyValueError(item, "expected key=value")
        raw = item[min(cuts) + 1:]
        if unique and key in out:
            raise KeyValueError(item, f"key {key!r} given twice ({key}={out[key]} and {item!r}); give each key once")
        try:
            out[key] = parse(raw)
        except yaml.YAMLError as exc:
            raise KeyValueError(item, f"value {raw!r} is not valid YAML ({exc})") from exc
    return out
