"""A learned policy with a guarantee: :class:`RobustPolicy` follows an agent but falls back to an online
expert so that on every episode ``J(wrapper) <= (1 + margin) * J(expert)``, whatever the agent does.

    import equiglb
    from equiglb.agents import RobustPolicy
    safe = RobustPolicy("runs/ppo-synthetic-0", expert="online-eglb", margin=0.05)
    table = equiglb.evaluate_policy(safe, "equiglb/EquitableGLB-v0", split="test", name="ppo (robust 5%)")

The rule, its conditions and the proof are in docs/robust.md; in short (J as in docs/model.md §3):

* the expert runs alongside on its own trajectory, giving its routing x_e(t) every slot;
* the wrapper keeps the ledger of the slots where it played the agent's routing: ``D = Σ_{agent slots}
  (cost_t(x_a) - cost_t(x_e)) + Φ((F_w - F_e)^+)``, with F_w - F_e the difference of the wrapper's and the
  expert's footprints (carbon, water, social numerators), which changes only at agent slots (``rule="split"``:
  Φ(G), G the agent slots' footprints, a looser D);
* at slot t it plays the agent's routing iff D (with slot t added) ``<= margin * L_t``, where L_t is a
  lower bound of the expert's final J known at slot t: its cost so far plus its equity terms so far (with
  a ``price_floor`` < 0, plus the lowest energy cost the remaining slots could have); else it plays
  x_e(t). Since norms are monotone and subadditive on nonnegative footprints, F_w <= F_e + (F_w - F_e)^+
  gives ``J_w - J_e <= D <= margin * J_e``.

Everything the rule reads is known at slot t, except, with a social term (μ_s > 0), the window's demand per
region Λ_j that normalizes the social cost S (docs/model.md §2) -- the number the environment's reward also
reads at every step (§4). ``social_norm="seen"`` uses the demand seen so far instead (an upper bound of the
agent slots' social term; the expert's lower bound then leaves its social term out): nothing of the future.
The agent keeps acting on its own trajectory (its environment executes its own routing; only the wrapper's
executed schedule mixes the two): the agent's observations after a fallback are those of its own routing,
not of the executed one.

Negative prices (they occur, also in the synthetic scenario) make the expert's prefix no lower bound of
its final J. Two modes:

* ``price_floor=None`` (default): L_t is the prefix of ``J+ = J_e + R_e``, R_e >= 0 what negative prices
  paid the expert (every increment of J+ is >= 0). Guarantee: ``J_w <= J_e + margin * J+_e``, which is
  ``(1 + margin) J_e`` exactly when no price is negative; a :class:`RobustnessWarning` says so the first
  time a negative price is met.
* ``price_floor=f`` (USD/MWh, a known lower bound of every price): L_t adds ``(slots left) * min(f, 0) *
  Σ_i PUE_i M_i``. Guarantee: ``J_w <= (1 + margin) J_e`` (for ``J_e >= 0``) when every price is >= f. A
  price below f breaks it: the wrapper warns and plays the expert for the rest of the episode.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from equiglb.baselines import POLICY_NAMES, make_policy
from equiglb.baselines.compare import information_of
from equiglb.baselines.policy import OnlinePolicy, Policy
from equiglb.ledger import equity_terms, unserved_of
from equiglb.scenario import Scenario, Weights
from equiglb.validate import OptionError

__all__ = ["RobustPolicy", "RobustnessWarning", "slot_terms"]

#: relative float slack of the switching test (the ledger sums the whole schedule in another order)
_SLACK_RTOL = 1e-9


class RobustnessWarning(RuntimeWarning):
    """The guarantee's assumption broke (a price below ``price_floor``): the wrapper plays the expert."""


def slot_terms(scenario: Scenario, weights: Weights, t: int,
               x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One slot's part of J (docs/model.md §2-§3) for routing x (N, J, K) at slot t of ``scenario``.

    Returns ``(cost_usd, energy_mwh (N,), carbon_t (N,), water_m3 (N,), quality (J,))``: the slot's cost
    (energy cost + μ_d · latency + penalty · unserved, USD), its facility energy per site (MWh), its
    regional carbon (t) and water (m³) before the region weights, and the numerator of the social cost
    Σ_{i,k} s[k] x[i, j, k] (load units).
    """
    sc = scenario
    N, J, K = sc.N, sc.J, sc.K
    x = np.asarray(x, dtype=np.float64).reshape(N, J, K)
    energy = (x.reshape(N, J * K) @ np.tile(sc.energy_per_unit, J)) * sc.pue          # (N,) facility MWh
    cost = float(sc.price[t] @ energy)
    by_region = x.sum(axis=0)                                                          # (J, K)
    cost += weights.unserved_penalty_usd * float(unserved_of(sc.demand[t], by_region.sum(axis=1)).sum())
    if sc.latency is not None and weights.mu_latency:
        cost += weights.mu_latency * float((sc.latency[:, :, None] * x).sum())
    return cost, energy, sc.carbon[t] * energy, sc.water[t] * energy, by_region @ sc.quality_loss


class RobustPolicy(OnlinePolicy):
    """Follow ``agent``, fall back to ``expert``: ``J(wrapper) <= (1 + margin) · J(expert)`` on every episode
    (``J_w <= J_e + margin * J+_e`` when prices can be negative; docs/robust.md has the exact statement).

    Args:
        agent: anything :func:`equiglb.evaluate_policy` takes: a callable obs -> action, an SB3 model, a
            model zip or run folder, or an online :class:`~equiglb.baselines.policy.Policy`.
        expert: an online baseline's name (:data:`equiglb.baselines.POLICY_NAMES`, ``"online-eglb"`` by
            default) or an :class:`~equiglb.baselines.policy.OnlinePolicy`.
        margin: the allowed relative excess over the expert's J (>= 0; 0.05 = 5 %).
        env, env_kwargs: the environment the agent acts in (id and options, as in
            :func:`equiglb.evaluate_policy`).
        name: row label (default ``"<agent> (robust 5%)"``).
        price_floor: None (default: the margin applies to J+ of the expert, see the module docstring) or a
            known lower bound of every price (USD/MWh).
        deterministic: an SB3 agent acts with its mean action.
        expert_kwargs: constructor options of a named expert (e.g. ``train=`` for ``"online-eglb-tuned"``).
        social_norm: the social cost's normalization the rule uses (only with μ_s > 0): ``"window"`` (the
            window's demand per region Λ_j, as the environment's reward, docs/model.md §4) or ``"seen"``
            (the demand of slots 0..t: an upper bound of the agent slots' social term, and no social term in
            the expert's lower bound; the rule then reads nothing of the future).
        rule: ``"excess"`` (default): D charges Φ of the positive part of F_w - F_e; ``"split"``: Φ of the
            agent slots' footprints G (D_split >= D_excess: it follows the agent less often; docs/robust.md).

    After an episode, :attr:`played_agent` says per slot whose routing was executed (True: the agent's)
    and :attr:`ledger_d_usd` is the final D (USD) of the rule.
    """

    def __init__(self, agent: Any, expert: str | OnlinePolicy = "online-eglb", margin: float = 0.05,
                 env: str = "equiglb/EquitableGLB-v0", env_kwargs: dict[str, Any] | None = None,
                 name: str | None = None, price_floor: float | None = None, deterministic: bool = True,
                 expert_kwargs: dict[str, Any] | None = None, social_norm: str = "window", rule: str = "excess"):
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin) \
                or margin < 0:
            raise OptionError(f"margin={margin!r}: expected a finite number >= 0 (e.g. 0.05 for 5 %)")
        if price_floor is not None and (isinstance(price_floor, bool) or not isinstance(price_floor, (int, float))
                                        or not math.isfinite(price_floor)):
            raise OptionError(f"price_floor={price_floor!r}: expected a finite price in USD/MWh (a lower bound "
                              "of every price) or None")
        if social_norm not in ("window", "seen"):
            raise OptionError(f"social_norm={social_norm!r}: expected 'window' (the window's demand per region "
                              "normalizes the social cost, as in the environment's reward) or 'seen' (the demand "
                              "seen so far: an upper bound of the social term that needs no knowledge of the "
                              "window's demand)")
        self.social_norm = social_norm
        if rule not in ("excess", "split"):
            raise OptionError(f"rule={rule!r}: expected 'excess' (charge the positive part of the footprint "
                              "difference to the expert, the default) or 'split' (charge the agent slots' whole "
                              "footprints; looser, docs/robust.md)")
        self.rule = rule
        self.margin = float(margin)
        self.price_floor = None if price_floor is None else float(price_floor)
        self.expert = self._make_expert(expert, expert_kwargs)
        self.agent = self._make_agent(agent, env, env_kwargs, deterministic)
        self.name = name if name is not None else f"{self.agent.name} (robust {self.margin:.0%})"
        self.information = f"{information_of(self.agent)}; falls back to {self.expert.name}"
        self.played_agent: list[bool] = []
        self.ledger_d_usd = 0.0
        self._warned = False                               # the negative-price warning, once per wrapper

    # ------------------------------------------------------------------ construction
    @staticmethod
    def _make_expert(expert: Any, kwargs: dict[str, Any] | None) -> OnlinePolicy:
        if isinstance(expert, str):
            if expert not in POLICY_NAMES:
                raise OptionError(f"expert={expert!r}: unknown policy; online baselines: "
                                  f"{[n for n in POLICY_NAMES if n not in ('offline', 'mpc')]}")
            try:
                pol = make_policy(expert, **(kwargs or {}))
            except TypeError as exc:
                raise OptionError(f"expert_kwargs={kwargs!r}: rejected by {expert!r}: {exc}") from exc
        elif kwargs:
            raise OptionError("expert_kwargs: only for an expert given by name")
        else:
            pol = expert
        if not isinstance(pol, OnlinePolicy):
            raise OptionError(f"expert={expert!r}: the expert must be an online policy (acts slot by slot "
                              "from the present and the past)")
        return pol

    @staticmethod
    def _make_agent(agent: Any, env: str, env_kwargs: dict[str, Any] | None, deterministic: bool) -> OnlinePolicy:
        if isinstance(agent, Policy):
            if not isinstance(agent, OnlinePolicy):
                raise OptionError(f"agent={agent!r}: an offline policy sees the future; the agent must act online")
            return agent
        from equiglb.evaluation import WINDOW_KEYS, _as_policy, _env_of, scenario_of  # noqa: PLC0415

        env_id, kw = _env_of(env, env_kwargs)
        reference = scenario_of(env_id, kw)
        agent_kw = {k: v for k, v in kw.items() if k not in WINDOW_KEYS}
        name = Path(agent).name if isinstance(agent, (str, Path)) else "agent"
        pol = _as_policy(agent, env_id, agent_kw, name, reference, deterministic)
        assert isinstance(pol, OnlinePolicy)
        return pol

    # ------------------------------------------------------------------ the episode
    def reset(self, scenario: Scenario, weights: Weights) -> None:
        """Reset the agent and the expert on the window ``scenario`` and clear the rule's ledger."""
        self.scenario, self.weights = scenario, weights
        self.agent.reset(scenario, weights)
        self.expert.reset(scenario, weights)
        N, J = scenario.N, scenario.J
        self._t = 0
        self._expert_cost = 0.0                           # Σ_{s <= t} cost_s(x_e), USD
        self._expert_c, self._expert_w = np.zeros(N), np.zeros(N)
        self._d_cost = 0.0                                # Σ_{agent slots} cost(x_a) - cost(x_e), USD
        # "excess": F_w - F_e (carbon t, water m³, quality numerators); "split": G, the agent slots' footprints
        self._g_c, self._g_w, self._g_s = np.zeros(N), np.zeros(N), np.zeros(J)
        self._seen_demand = np.zeros(J)                   # Λ_t: demand of slots 0..t (load units)
        self._window_demand = scenario.demand.sum(axis=0)  # Λ: the window's demand (the env's reward uses it too)
        self._expert_s = np.zeros(J)                      # Σ_{s <= t} quality numerators of x_e (load units)
        #: the most facility energy any slot can draw (MWh): the remaining slots' lowest energy cost with a
        #: negative price floor is floor × this
        self._max_energy_mwh = float(scenario.pue @ scenario.capacity)
        self._broken = False
        self._expert_revenue = 0.0                        # Σ_{s <= t} -min(p, 0) · E_e >= 0, USD
        self.played_agent, self.ledger_d_usd = [], 0.0

    def _phi(self, carbon: np.ndarray, water: np.ndarray, social: np.ndarray | None) -> float:
        c, w, s = equity_terms(carbon, water, social, self.weights, self.scenario.region_weights)
        return float(c) + float(w) + float(s)

    def act(self, t: int) -> np.ndarray:
        """The executed routing of slot t (N, J, K): the agent's, if the rule allows it, else the expert's."""
        if t != self._t:
            raise RuntimeError(f"RobustPolicy.act({t}): slots must be played in order from 0 after reset() "
                               f"(next slot is {self._t})")
        sc, w = self.scenario, self.weights
        x_a = np.asarray(self.agent.act(t), dtype=np.float64)
        x_e = np.asarray(self.expert.act(t), dtype=np.float64).reshape(sc.N, sc.J, sc.K)
        valid = self._feasible(t, x_a)
        if not valid:                          # never executed: its terms are not computed
            x_a = x_e
        self._t += 1
        c_a, _, car_a, wat_a, qual_a = slot_terms(sc, w, t, x_a)
        c_e, energy_e, car_e, wat_e, qual_e = slot_terms(sc, w, t, x_e)
        revenue = -float(np.minimum(sc.price[t], 0.0) @ energy_e)      # >= 0: what negative prices paid the expert
        self._expert_cost += c_e
        self._expert_revenue += revenue
        self._expert_c += car_e
        self._expert_w += wat_e
        self._expert_s += qual_e
        self._seen_demand += sc.demand[t]
        floor = self.price_floor
        if floor is None and revenue > 0 and not self._warned:
            self._warned = True
            warnings.warn(f"RobustPolicy: slot {t} has a negative price ({float(sc.price[t].min())!r} USD/MWh); "
                          "without price_floor the guarantee is J - J(expert) <= margin * J+(expert), J+ = J(expert) "
                          "plus what negative prices paid it (docs/robust.md); pass price_floor for "
                          "J <= (1 + margin) J(expert)", RobustnessWarning, stacklevel=2)
        if floor is not None and not self._broken and np.any(sc.price[t] < floor):
            self._broken = True
            i = int(np.argmin(sc.price[t]))
            warnings.warn(f"RobustPolicy: slot {t} has price {float(sc.price[t, i])!r} USD/MWh at site {i}, "
                          f"below price_floor={floor!r}; the guarantee J <= (1 + margin) J(expert) needs every "
                          "price >= price_floor: the expert is played for the rest of the episode (pass a lower "
                          "price_floor, or None)", RobustnessWarning, stacklevel=2)
        # L_t: a lower bound known now of the expert's final J (price_floor given: its remaining costs are
        # >= floor × the most energy a slot can draw) or of its final J+ (no floor: every increment >= 0)
        social_e = None
        if self.social_norm == "window" and w.mu_social:
            social_e = np.divide(self._expert_s, self._window_demand, out=np.zeros_like(self._expert_s),
                                 where=self._window_demand > 0)
        lower = self._expert_cost + self._phi(self._expert_c, self._expert_w, social_e)
        if floor is None:
            lower += self._expert_revenue
        else:
            lower += (sc.T - 1 - t) * min(floor, 0.0) * self._max_energy_mwh
        # D with slot t played by the agent: the cost difference of the agent slots plus Φ of the positive part
        # of the footprint difference F_w - F_e ("excess") or of the agent slots' footprints G ("split")
        split = self.rule == "split"
        d_cost = self._d_cost + (c_a - c_e)
        g_c = self._g_c + (car_a if split else car_a - car_e)
        g_w = self._g_w + (wat_a if split else wat_a - wat_e)
        g_s = self._g_s + (qual_a if split else qual_a - qual_e)
        pos_s = np.maximum(g_s, 0.0)
        norm = self._seen_demand if self.social_norm == "seen" else self._window_demand
        social = None
        if w.mu_social:
            if np.any((pos_s > 0) & (norm <= 0)):
                social = np.full_like(g_s, np.inf)            # load served to a region without demand
            else:
                social = np.divide(pos_s, norm, out=np.zeros_like(g_s), where=norm > 0)
        d_new = d_cost + self._phi(np.maximum(g_c, 0.0), np.maximum(g_w, 0.0), social)
        slack = _SLACK_RTOL * (abs(self._d_cost) + abs(c_a) + abs(c_e) + abs(self._expert_cost) + abs(lower)
                               + self._phi(np.abs(g_c), np.abs(g_w), None)
                               + self._phi(self._expert_c, self._expert_w, None))
        play_agent = valid and not self._broken and d_new <= self.margin * lower - slack
        self.played_agent.append(bool(play_agent))
        if play_agent:
            self._d_cost, self._g_c, self._g_w, self._g_s = d_cost, g_c, g_w, g_s
            self.ledger_d_usd = d_new
            return x_a
        return x_e

    def _feasible(self, t: int, x: np.ndarray) -> bool:
        """Whether the agent's routing x is a routing of slot t (docs/model.md §2): shape (N, J, K), finite,
        >= 0, zero on pairs that are not allowed, at most the demand of each region and within each site's
        capacity (relative tolerance 1e-9). An agent given as a callable acts through the environment, whose
        action map always gives such a routing; a Policy could return anything, and the wrapper never
        executes a routing that is not one (it plays the expert's)."""
        sc = self.scenario
        if x.shape != (sc.N, sc.J, sc.K) or not np.all(np.isfinite(x)) or np.any(x < 0):
            return False
        allowed = (sc.mask[:, :, None] > 0) & (sc.hosting[:, None, :] > 0)
        if np.any(x[~allowed] > 0):
            return False
        tol = 1e-9
        if np.any(x.sum(axis=(0, 2)) > sc.demand[t] * (1 + tol) + tol):
            return False
        it_mwh = x.reshape(sc.N, sc.J * sc.K) @ np.tile(sc.energy_per_unit, sc.J)
        return bool(np.all(it_mwh <= sc.capacity * (1 + tol) + tol))

    @property
    def agent_share(self) -> float:
        """Fraction of the slots played so far whose executed routing was the agent's."""
        return float(np.mean(self.played_agent)) if self.played_agent else math.nan
