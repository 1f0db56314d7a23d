"""The GLB model of docs/model.md §1 as data: :class:`Scenario` (traces + static data) and :class:`Weights`.

Index conventions used everywhere in equiglb:

* ``t`` hourly slot, ``i`` data center (site), ``j`` user region (gateway), ``k`` AI model.
* Time series are ``(T, N)`` for sites and ``(T, J)`` for regions.
* A routing (schedule) is ``x[t, i, j, k]`` with shape ``(T, N, J, K)``; one slot is ``(N, J, K)``.

Units: demand in load units per slot; price USD/MWh; carbon intensity t/MWh (= kg/kWh); water
intensity m³/MWh (= L/kWh); capacity MW of IT power (= MWh per one-hour slot); energy per unit
MWh per load unit.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from equiglb.validate import MAX_MAGNITUDE, OptionError, ScenarioError, as_float, as_int

__all__ = ["Scenario", "Weights", "ScenarioError", "OptionError", "EGLB_WEIGHTS", "MAX_Q"]

#: Largest finite L_q exponent accepted; beyond it the norm is numerically the maximum: use ``q = inf``.
MAX_Q = 100.0


@dataclass(frozen=True)
class Weights:
    """Weights of the objective J(x) of docs/model.md §3.

    J(x) = Σ_t cost_t + μ_c‖ω⊙C‖_q + μ_w‖ω⊙W‖_q + μ_s‖S‖_q + μ_d·latency + penalty·unserved

    Attributes:
        mu_carbon: μ_c, USD per tonne CO2 of the regional carbon norm.
        mu_water: μ_w, USD per m³ of the regional water norm.
        mu_social: μ_s, USD per unit of the social-cost norm (S is an average quality loss, unitless).
        mu_latency: μ_d, USD per (latency unit × load unit) of load-weighted latency.
        q: the L_q norm, in [1, 100] or inf; inf is eGLB's minimax.
        unserved_penalty_usd: USD per load unit of demand that could not be placed. The default,
            10,000, is of the order of the value of lost load used in power-system planning and
            well above any marginal cost in the traces, so unserved load is a last resort.
    """

    mu_carbon: float = 1500.0
    mu_water: float = 60.0
    mu_social: float = 0.0
    mu_latency: float = 0.0
    q: float = math.inf
    unserved_penalty_usd: float = 10_000.0

    def __post_init__(self) -> None:
        q = as_float("Weights.q", self.q, allow_inf=True)
        if not (1.0 <= q <= MAX_Q or q == math.inf):
            raise OptionError(f"Weights.q={q!r}: must be in [1, {MAX_Q:g}] or inf (a larger q is numerically "
                              f"the maximum: use q=inf)")
        object.__setattr__(self, "q", q)
        for name in ("mu_carbon", "mu_water", "mu_social", "mu_latency", "unserved_penalty_usd"):
            object.__setattr__(self, name, as_float(f"Weights.{name}", getattr(self, name), lo=0.0, unit="USD"))

    def replace(self, **changes: float | None) -> Weights:
        """A copy with some weights changed (``None`` values are ignored); unknown names are refused."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise OptionError(f"Weights.replace: unknown weight(s) {unknown}; the weights are "
                              f"{[f.name for f in dataclasses.fields(self)]}")
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


#: The published eGLB weights: μ_w = 60 USD/m³, μ_c = 1500 USD/t, q = ∞.
EGLB_WEIGHTS = Weights()


def _arr(value, dtype=np.float64) -> np.ndarray:
    a = np.array(value, dtype=dtype, copy=True)
    a.setflags(write=False)
    return a


def _bool_arr(scenario: str, field_name: str, value: object) -> np.ndarray:
    """A read-only bool array from bools or 0/1 numbers; any other value (0.5, 2, "yes") is refused."""
    raw = np.asarray(value)
    if raw.dtype != bool:
        if raw.dtype.kind not in "iuf" or not np.isin(raw, (0, 1)).all():
            bad = raw.ravel()[0] if raw.dtype.kind not in "iuf" else raw[~np.isin(raw, (0, 1))].ravel()[0]
            raise ScenarioError(f"scenario {scenario!r}: field {field_name!r} must hold True/False (or 0/1), "
                                f"got {bad.item()!r}")
    return _arr(raw, bool)


@dataclass(frozen=True, eq=False)
class Scenario:
    """One GLB instance: N sites, J regions, K models, T hourly slots (docs/model.md §1).

    Arrays are float64 (bool for ``mask`` and ``hosting``), read-only, and validated on
    construction; any problem raises :class:`ScenarioError` naming the field and value.

    Attributes:
        name: scenario name (as given to :func:`equiglb.load_scenario`).
        demand: λ[t, j], load units per slot, shape (T, J), >= 0.
        price: p[t, i], USD/MWh, shape (T, N); negative prices are allowed (they occur).
        carbon: c[t, i], t CO2 per MWh (= kg/kWh), shape (T, N), >= 0.
        water: w[t, i], m³ per MWh (= L/kWh), shape (T, N), >= 0.
        capacity: M[i], MW of IT power (MWh per one-hour slot), shape (N,), >= 0.
        mask: m[i, j], region j may send load to site i, shape (N, J), bool.
        hosting: h[i, k], model k is deployed at site i, shape (N, K), bool.
        energy_per_unit: e[k], MWh per load unit, shape (K,), > 0.
        quality_loss: s[k], accuracy loss against the best model, shape (K,), >= 0.
        pue: γ[i] >= 1, power usage effectiveness, shape (N,).
        latency: d[i, j] in ms (optional), shape (N, J), >= 0.
        region_weights: ω[i], vulnerability weight of the region hosting site i, shape (N,), >= 0.
        site_names, region_names, model_names: labels.
        timestamps: UTC start of each slot, ``datetime64[h]``, shape (T,), strictly increasing by 1 h.
        utc_offset_h: each site's UTC offset in hours, shape (N,).
        splits: named windows ``{name: (start, length)}``; ``"all"`` is always present.
        weights: the scenario's default objective weights.
        source: where the data came from (a folder, "generated", ...).
    """

    name: str
    demand: np.ndarray
    price: np.ndarray
    carbon: np.ndarray
    water: np.ndarray
    capacity: np.ndarray
    mask: np.ndarray
    site_names: tuple[str, ...]
    region_names: tuple[str, ...]
    timestamps: np.ndarray
    hosting: np.ndarray = None  # type: ignore[assignment]  # None: default, filled in __post_init__
    energy_per_unit: np.ndarray = None  # type: ignore[assignment]  # None: default, filled in __post_init__
    quality_loss: np.ndarray = None  # type: ignore[assignment]  # None: default, filled in __post_init__
    pue: np.ndarray = None  # type: ignore[assignment]  # None: default, filled in __post_init__
    latency: np.ndarray | None = None
    region_weights: np.ndarray = None  # type: ignore[assignment]  # None: default, filled in __post_init__
    model_names: tuple[str, ...] = ("default",)
    utc_offset_h: np.ndarray = None  # type: ignore[assignment]  # None: default, filled in __post_init__
    splits: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    weights: Weights = EGLB_WEIGHTS
    source: str = ""

    # ------------------------------------------------------------------ construction
    def __post_init__(self) -> None:
        s = object.__setattr__
        if not isinstance(self.weights, Weights):
            raise OptionError(f"scenario {self.name!r}: weights={type(self.weights).__name__} object: expected an "
                              f"equiglb.Weights (e.g. Weights(mu_carbon=1500, q=2))")
        for fname in ("demand", "price", "carbon", "water", "capacity"):
            try:
                s(self, fname, _arr(getattr(self, fname)))
            except (TypeError, ValueError) as exc:
                raise ScenarioError(f"scenario {self.name!r}: field {fname!r} is not an array of numbers "
                                    f"({exc})") from None
        s(self, "demand", _arr(self.demand))
        s(self, "price", _arr(self.price))
        s(self, "carbon", _arr(self.carbon))
        s(self, "water", _arr(self.water))
        s(self, "capacity", _arr(self.capacity))
        s(self, "mask", _bool_arr(self.name, "mask", self.mask))
        s(self, "site_names", tuple(str(n) for n in self.site_names))
        s(self, "region_names", tuple(str(n) for n in self.region_names))
        s(self, "model_names", tuple(str(n) for n in self.model_names))
        K = len(self.model_names)
        N = len(self.site_names)
        s(self, "hosting", _bool_arr(self.name, "hosting", np.ones((N, K), bool) if self.hosting is None
                                     else self.hosting))
        s(self, "energy_per_unit", _arr(np.ones(K) if self.energy_per_unit is None else self.energy_per_unit))
        s(self, "quality_loss", _arr(np.zeros(K) if self.quality_loss is None else self.quality_loss))
        s(self, "pue", _arr(np.ones(N) if self.pue is None else self.pue))
        s(self, "region_weights", _arr(np.ones(N) if self.region_weights is None else self.region_weights))
        s(self, "utc_offset_h", _arr(np.zeros(N) if self.utc_offset_h is None else self.utc_offset_h))
        if self.latency is not None:
            s(self, "latency", _arr(self.latency))
        try:
            ts = np.array(self.timestamps, dtype="datetime64[h]", copy=True)
        except (TypeError, ValueError) as exc:
            raise ScenarioError(f"scenario {self.name!r}: field 'timestamps' is not an array of UTC hours "
                                f"({exc})") from None
        ts.setflags(write=False)
        s(self, "timestamps", ts)
        splits = {}
        for k, v in dict(self.splits).items():
            if not isinstance(v, (tuple, list)) or len(v) != 2:
                raise ScenarioError(f"scenario {self.name!r}: split {k!r} = {v!r} must be (start, length) in slots")
            splits[str(k)] = (as_int(f"split {k!r} start", v[0], unit="slots"),
                              as_int(f"split {k!r} length", v[1], unit="slots"))
        splits.setdefault("all", (0, self.demand.shape[0] if self.demand.ndim == 2 else 0))
        s(self, "splits", splits)
        self._validate()

    def _validate(self) -> None:
        name = self.name
        N, J, K = len(self.site_names), len(self.region_names), len(self.model_names)

        def fail(msg: str) -> None:
            raise ScenarioError(f"scenario {name!r}: {msg}")

        if self.demand.ndim != 2:
            fail(f"demand must be 2-D (T, J), got shape {self.demand.shape}")
        T = self.demand.shape[0]
        if T < 1:
            fail("demand has no slots (T = 0)")
        expect = {
            "demand": (T, J), "price": (T, N), "carbon": (T, N), "water": (T, N),
            "capacity": (N,), "mask": (N, J), "hosting": (N, K), "energy_per_unit": (K,),
            "quality_loss": (K,), "pue": (N,), "region_weights": (N,), "utc_offset_h": (N,),
            "timestamps": (T,),
        }
        if self.latency is not None:
            expect["latency"] = (N, J)
        for fname, shape in expect.items():
            got = getattr(self, fname).shape
            if got != shape:
                fail(f"field {fname!r} has shape {got}, expected {shape} (T={T}, N={N}, J={J}, K={K})")
        for fname in expect:
            a = getattr(self, fname)
            if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                idx = tuple(int(v) for v in np.argwhere(~np.isfinite(a))[0])
                fail(f"field {fname!r} has a non-finite value {float(a[idx])!r} at index {idx}")
            if a.dtype.kind == "f" and a.size and np.abs(a).max() > MAX_MAGNITUDE:
                idx = tuple(int(v) for v in np.argwhere(np.abs(a) > MAX_MAGNITUDE)[0])
                fail(f"field {fname!r} has the value {float(a[idx])!r} at index {idx}, above the accepted "
                     f"magnitude {MAX_MAGNITUDE:g} (a unit error?)")
        nonneg = ["demand", "carbon", "water", "capacity", "quality_loss", "region_weights"]
        if self.latency is not None:
            nonneg.append("latency")
        for fname in nonneg:
            a = getattr(self, fname)
            if np.any(a < 0):
                idx = tuple(int(v) for v in np.argwhere(a < 0)[0])
                fail(f"field {fname!r} must be >= 0, got {float(a[idx])!r} at index {idx}")
        if np.any(self.energy_per_unit <= 0):
            k = int(np.argmax(self.energy_per_unit <= 0))
            fail(f"field 'energy_per_unit' must be > 0 (MWh per load unit), got {float(self.energy_per_unit[k])!r} "
                 f"for model {self.model_names[k]!r}")
        if np.any(self.pue < 1):
            i = int(np.argmax(self.pue < 1))
            fail(f"field 'pue' must be >= 1, got {float(self.pue[i])!r} for site {self.site_names[i]!r}")
        if T > 1 and np.any(np.diff(self.timestamps).astype(np.int64) != 1):
            bad = int(np.argmax(np.diff(self.timestamps).astype(np.int64) != 1))
            fail(f"timestamps must be hourly and increasing; {self.timestamps[bad]} is followed by "
                 f"{self.timestamps[bad + 1]}")
        for field_name, names in (("site_names", self.site_names), ("region_names", self.region_names),
                                  ("model_names", self.model_names)):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                fail(f"field {field_name!r} names {dup[0]!r} twice; names must be unique")
        reach = (self.mask[:, :, None] & self.hosting[:, None, :]).any(axis=(0, 2))
        if not reach.all():
            j = int(np.argmin(reach))
            fail(f"region {self.region_names[j]!r} reaches no site hosting any model (mask/hosting)")
        for sname, (start, length) in self.splits.items():
            if start < 0 or length < 1 or start + length > T:
                fail(f"split {sname!r} = (start={start}, length={length}) is outside 0..{T}")

    # ------------------------------------------------------------------ shape
    @property
    def T(self) -> int:
        """Number of hourly slots."""
        return int(self.demand.shape[0])

    @property
    def N(self) -> int:
        """Number of data centers (sites)."""
        return len(self.site_names)

    @property
    def J(self) -> int:
        """Number of user regions (gateways)."""
        return len(self.region_names)

    @property
    def K(self) -> int:
        """Number of AI models."""
        return len(self.model_names)

    @property
    def allowed(self) -> np.ndarray:
        """(N, J, K) bool: x[i, j, k] may be positive (mask and hosting)."""
        return self.mask[:, :, None] & self.hosting[:, None, :]

    # ------------------------------------------------------------------ windows
    def social_in_force(self, weights: Weights | None = None) -> bool:
        """Whether the social term μ_s‖S‖_q is part of J (docs/model.md): μ_s > 0 and some model has a
        quality loss. ``weights`` default to the scenario's own."""
        w = self.weights if weights is None else weights
        return bool(w.mu_social) and bool(np.any(self.quality_loss))

    def social_tracked(self, weights: Weights | None = None) -> bool:
        """Whether the ledger accounts the social cost S (and the observation shows it): μ_s > 0 or some model
        has a quality loss, so an agent sees S even where it is not penalized."""
        w = self.weights if weights is None else weights
        return bool(w.mu_social) or bool(np.any(self.quality_loss))

    def window(self, start: int, length: int | None = None, name: str | None = None) -> Scenario:
        """The sub-scenario of slots ``start .. start+length-1`` (static data unchanged); ``start`` and
        ``length`` are integers (an integral float such as ``10.0`` too; ``10.5`` is an OptionError)."""
        start = as_int("window start", start, unit="slots")
        if length is None:
            length = self.T - start
        length = as_int("window length", length, unit="slots")
        if not (0 <= start and length >= 1 and start + length <= self.T):
            raise ScenarioError(
                f"scenario {self.name!r}: window(start={start}, length={length}) is outside 0..{self.T}")
        sl = slice(start, start + length)
        return dataclasses.replace(
            self,
            name=name or self.name,
            demand=self.demand[sl], price=self.price[sl], carbon=self.carbon[sl], water=self.water[sl],
            timestamps=self.timestamps[sl], splits={"all": (0, length)},
        )

    def split(self, name: str) -> Scenario:
        """The named split window (``"train"``, ``"test"``, ``"all"``, ...)."""
        if name not in self.splits:
            raise ScenarioError(
                f"scenario {self.name!r} has no split {name!r}; available: {sorted(self.splits)}")
        start, length = self.splits[name]
        return self.window(start, length)

    def with_weights(self, weights: Weights) -> Scenario:
        """A copy with other default weights."""
        return dataclasses.replace(self, weights=weights)

    def summary(self) -> str:
        """One line describing the instance."""
        t0, t1 = self.timestamps[0], self.timestamps[-1]
        return (f"{self.name}: T={self.T} h ({t0} .. {t1} UTC), N={self.N} sites, J={self.J} regions, "
                f"K={self.K} models, total demand {self.demand.sum():.1f} load units")
