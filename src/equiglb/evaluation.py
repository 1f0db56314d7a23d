"""Score your own policy against every baseline in one call: :func:`evaluate_policy`.

    import equiglb
    table = equiglb.evaluate_policy(lambda obs: my_net(obs), "equiglb/EquitableGLB-v0", split="test")
    print(table[["policy", "information", "objective", "gap_to_offline"]])

The policy acts slot by slot *through the environment* (:class:`EnvPolicy`: the same action map and
capacity repair as in training); the executed routing is accounted by the ledger exactly like each
baseline's schedule, so every row of the table is on one scale (J in USD; the undiscounted return of
the episode is -J). Nothing here imports torch or stable-baselines3: an SB3 model is used through its
``predict`` method only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from equiglb.baselines import POLICY_NAMES, make_policy
from equiglb.baselines.compare import information_of, run_policies
from equiglb.baselines.policy import OnlinePolicy, Policy
from equiglb.envs.core import agent_base, agent_information
from equiglb.protocol import episodes, run_months
from equiglb.scenario import Scenario, Weights
from equiglb.validate import OptionError

__all__ = ["EnvPolicy", "evaluate_policy", "DEFAULT_BASELINES", "find_window", "scenario_of", "check_split",
           "window_env_id"]

#: Baselines of :func:`evaluate_policy` by default: the oracle, the online algorithms, MPC and the best
#: equity-oblivious one.
DEFAULT_BASELINES = ("offline", "mpc", "online-eglb", "online-eglb-tuned", "min-cost")

#: env options that the evaluation sets itself (the window is the scenario handed to reset()).
WINDOW_KEYS = ("scenario", "split", "episode_length", "random_start", "data_dir", "scenario_options", "horizon")

ActionFn = Callable[[np.ndarray], Any]


class EnvPolicy(OnlinePolicy):
    """A policy given as a function of the observation, acting in an equiglb environment built on the
    window to evaluate (one episode over all of its slots).

    Args:
        action_fn: ``obs -> action`` (an array in the env's action space).
        env_id: the registered environment id whose observation and action the function uses.
        env_kwargs: options of ``gymnasium.make`` (action mode, observation options, ...); the window
            options (scenario, split, episode_length, random_start) are set by :meth:`reset`.
        name: row label.
        reference: the whole scenario the policy was trained on. The environment scales its
            observations by statistics of the scenario it is given, so when the window handed to
            :meth:`reset` is a window of ``reference`` the environment is built on ``reference``
            (restricted to that window) and the policy sees observations on its training scale.
    """

    def __init__(self, action_fn: ActionFn, env_id: str, env_kwargs: dict[str, Any] | None = None,
                 name: str = "agent", reference: Scenario | None = None):
        if not callable(action_fn):
            raise OptionError(f"policy: {type(action_fn).__name__} object is not callable")
        self.action_fn = action_fn
        self.env_id = env_id
        self.env_kwargs = {k: v for k, v in (env_kwargs or {}).items() if k not in WINDOW_KEYS}
        self.name = name
        self.reference = reference
        #: what the policy knew beyond the present: the forecasts of its observation (and of its mode's planner)
        self.information = agent_information({**dict(gym.spec(env_id).kwargs or {}), **self.env_kwargs})
        self.env: gym.Env | None = None
        self.routing: list[np.ndarray] = []
        self.rewards: list[float] = []

    def reset(self, scenario: Scenario, weights: Weights) -> None:
        """Build the environment on ``scenario`` (one episode over all its slots) and reset it."""
        if self.env is not None:
            self.env.close()
        base, split = scenario, "all"
        start = find_window(self.reference, scenario) if self.reference is not None else None
        if start is not None and self.reference is not None:
            split = "_agent_eval"
            base = dataclasses.replace(self.reference, splits={**self.reference.splits, split: (start, scenario.T)})
        base = base.with_weights(weights)
        self.env = gym.make(self.env_id, scenario=base, split=split, episode_length=scenario.T,
                            random_start=False, **self.env_kwargs)
        self._obs, _ = self.env.reset(seed=0)
        self._t = 0
        self.T = scenario.T
        self.routing, self.rewards = [], []

    def action(self, obs: np.ndarray) -> np.ndarray:
        """The policy's action for the observation ``obs``."""
        return np.asarray(self.action_fn(obs))

    def act(self, t: int) -> np.ndarray:
        """Routing of slot t (N, J, K): the executed routing ``info["routing"]`` of one env step."""
        self._check_slot(t)
        return self.play(t, self.action(self._obs))

    def _check_slot(self, t: int) -> None:
        if self.env is None or t != self._t:
            raise RuntimeError(f"{type(self).__name__}.act({t}): slots must be played in order from 0 after "
                               f"reset() (next slot is {getattr(self, '_t', None)})")

    def play(self, t: int, action: np.ndarray) -> np.ndarray:
        """Step the environment with ``action`` at slot t; the executed routing (N, J, K)."""
        self._check_slot(t)
        assert self.env is not None
        self._obs, reward, terminated, truncated, info = self.env.step(action)
        self._t += 1
        x = np.asarray(info["routing"], dtype=np.float64)
        self.routing.append(x)
        self.rewards.append(float(reward))
        return x

    def schedule_executed(self) -> np.ndarray:
        """The executed schedule x[t, i, j, k] of the slots played since reset."""
        return np.stack(self.routing)

    @property
    def episode_return(self) -> float:
        """Sum of the env's rewards over the slots played since reset (= -J(x) on a whole window)."""
        return float(np.sum(self.rewards))


def find_window(reference: Scenario, window: Scenario) -> int | None:
    """Start slot of ``window`` inside ``reference`` (same timestamps and traces), else None."""
    if window.T > reference.T or (window.N, window.J, window.K) != (reference.N, reference.J, reference.K):
        return None
    hit = np.flatnonzero(reference.timestamps == window.timestamps[0])
    if hit.size != 1:
        return None
    s = int(hit[0])
    if s + window.T > reference.T:
        return None
    sl = slice(s, s + window.T)
    same = all(np.array_equal(getattr(reference, f)[sl], getattr(window, f))
               for f in ("demand", "price", "carbon", "water"))
    same = same and all(np.array_equal(getattr(reference, f), getattr(window, f))
                        for f in ("capacity", "mask", "hosting", "energy_per_unit", "quality_loss", "pue",
                                  "region_weights"))
    return s if same else None


def scenario_of(env_id: str, env_kwargs: dict[str, Any] | None = None) -> Scenario:
    """The whole scenario (with the env's weights applied) behind ``gymnasium.make(env_id, **env_kwargs)``.

    Raises :class:`~equiglb.validate.OptionError` when the id is unknown or the options are rejected.
    """
    if env_id not in gym.envs.registry:
        ours = sorted(k for k in gym.envs.registry if k.startswith("equiglb"))
        raise OptionError(f"unknown environment id {env_id!r}; equiglb ids: {ours}")
    env_id = window_env_id(env_id)
    kw = {k: v for k, v in (env_kwargs or {}).items() if k not in ("split", "episode_length", "random_start")}
    # the whole split, also for an id whose defaults fix a shorter episode (the tuned ids: 240 h)
    kw.update(episode_length=None, random_start=False)
    try:
        env = gym.make(env_id, **kw)
    except Exception as exc:  # the env's own message names the option
        raise OptionError(f"cannot make environment {env_id!r} with {kw}: {exc}") from exc
    try:
        return env.unwrapped.scenario  # type: ignore[attr-defined]
    finally:
        env.close()


def check_split(scenario: Scenario, split: str, option: str) -> Scenario:
    """The window ``split`` of ``scenario`` (raises :class:`~equiglb.validate.OptionError` naming ``option``
    if it has none)."""
    if split not in scenario.splits:
        raise OptionError(f"{option} {split!r}: scenario {scenario.name!r} has no such split; "
                          f"available: {sorted(scenario.splits)}")
    return scenario.split(split)


class _Renamed(Policy):
    """A policy under another row label (the schedule is the wrapped policy's)."""

    def __init__(self, inner: Policy, name: str):
        self.inner, self.name, self.online = inner, name, inner.online
        self.information = information_of(inner)

    def schedule(self, scenario: Scenario, weights: Weights | None = None) -> np.ndarray:
        return self.inner.schedule(scenario, weights)


def window_env_id(env_id: str) -> str:
    """The id whose environment plays windows of the scenario of ``env_id``: ``env_id`` itself, or for a
    monthly test id (``equiglb/EquitableGLB-world-test-v0``, whose episodes are the months) the train id of
    the same scenario (``equiglb/EquitableGLB-world-v0``): the evaluation cuts the months itself."""
    from equiglb.envs.registration import ENTRY_POINT, MONTHLY_ENTRY_POINT, WORLD_ENV_IDS  # noqa: PLC0415

    entry, kwargs = WORLD_ENV_IDS.get(env_id, (None, {}))
    if entry != MONTHLY_ENTRY_POINT:
        return env_id
    return next(k for k, (e, kw) in WORLD_ENV_IDS.items() if e == ENTRY_POINT and kw["scenario"] == kwargs["scenario"])


def _env_of(env: str | gym.Env, env_kwargs: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """(id, options) of ``env``: a registered id, or an env made by ``gymnasium.make`` (its spec); a monthly
    test id is evaluated through its train id (:func:`window_env_id`)."""
    if isinstance(env, str):
        return window_env_id(env), dict(env_kwargs or {})
    spec = getattr(env, "spec", None)
    if not isinstance(env, gym.Env) or spec is None or not spec.id.startswith("equiglb/"):
        raise OptionError(f"env={env!r}: expected an equiglb environment id or an env made by gymnasium.make "
                          "of one")
    kw = {**dict(spec.kwargs or {}), **dict(env_kwargs or {})}
    if "months" in kw:
        raise OptionError(f"env: made with months={kw['months']!r}; evaluate_policy evaluates every calendar "
                          f"month of split (give split=, e.g. 'test' or one month such as '2024-07')")
    return window_env_id(spec.id), kw


def _as_policy(policy: Any, env_id: str, env_kwargs: dict[str, Any], name: str, reference: Scenario,
               deterministic: bool) -> Policy:
    """Wrap ``policy`` (a Policy, an SB3 model, a model file or a callable obs -> action) as a Policy."""
    if isinstance(policy, Policy):
        return _Renamed(policy, name)
    if isinstance(policy, (str, Path)):
        from equiglb.agents.policy import AgentPolicy  # noqa: PLC0415  (torch only when a model file is given)
        agent = AgentPolicy(policy, env_id=env_id, env_kwargs=env_kwargs, name=name, deterministic=deterministic,
                            reference=reference)
        return agent
    predict = getattr(policy, "predict", None)
    if callable(predict) and hasattr(policy, "observation_space"):  # a stable-baselines3 model
        def sb3_action(obs: np.ndarray) -> np.ndarray:
            return np.asarray(predict(obs, deterministic=deterministic)[0])
        return EnvPolicy(sb3_action, env_id, env_kwargs, name=name, reference=reference)
    if callable(policy):
        return EnvPolicy(policy, env_id, env_kwargs, name=name, reference=reference)
    raise OptionError(f"policy: {type(policy).__name__} object is neither a callable obs -> action, a "
                      "stable-baselines3 model, a model file nor an equiglb Policy")


def evaluate_policy(policy: Any, env: str | gym.Env = "equiglb/EquitableGLB-v0", split: str = "test",
                    name: str = "agent", baselines: Sequence[str] = DEFAULT_BASELINES,
                    env_kwargs: dict[str, Any] | None = None, deterministic: bool = True,
                    plot_dir: str | Path | None = None) -> Any:
    """Evaluate ``policy`` on the window ``split`` of an environment's scenario beside the baselines.

    Args:
        policy: a callable ``obs -> action``, a stable-baselines3 model (its ``predict``), the path of a
            saved model zip or run folder, or an equiglb :class:`~equiglb.baselines.policy.Policy`
            (an online baseline, :class:`~equiglb.agents.RobustPolicy`-style wrappers, ...).
        env: a registered id (``"equiglb/EquitableGLB-v0"``) or an env made by ``gymnasium.make``; the
            policy acts in it with the same options (action mode, observation), on the window.
        split: the scenario window (``"test"``, the held-out window, by default).
        name: the policy's row label.
        baselines: baseline names of :data:`equiglb.baselines.POLICY_NAMES` (``()`` for none); the
            offline optimum's J is always computed for ``gap_to_offline``. ``online-eglb-tuned`` is
            tuned on the scenario's ``train`` split, never on ``split``.
        env_kwargs: more options of ``gymnasium.make`` (override those of ``env``).
        deterministic: an SB3 model acts with its mean action.
        plot_dir: if given, the comparison plots (cost vs worst footprint, footprints, routing) are
            written there (a new or empty folder).

    Returns:
        A pandas DataFrame, one row per policy (the baselines first, then, for a policy acting in a
        residual mode, its own planner alone with the same forecasts, ``"... (agent's base)"``, then
        ``name``): ``policy``, ``information`` (what the policy knew beyond the present), ``objective``
        (J, USD), ``gap_to_offline`` (J / J_offline - 1) and every metric of
        :meth:`equiglb.ledger.Report.row` with its unit in the column name.

        Under the monthly protocol (a ``world`` scenario; :mod:`equiglb.protocol`, docs/data.md) each calendar
        month of ``split`` is one episode with its own offline optimum: a row holds the mean over months of
        each column, ``months``, and the mean gap's 95 % bootstrap CI over months (``gap_to_offline_ci_low``,
        ``gap_to_offline_ci_high``); ``table.attrs["months"]`` is the DataFrame of every (policy, month)
        (``gap_to_offline_pct``, ``objective_usd``, ...), and ``plot_dir`` also gets ``months.csv``.

    Raises:
        OptionError: a bad input, named, before any policy runs.
    """
    import pandas as pd  # noqa: PLC0415  (pandas is imported only by the call that returns a DataFrame)

    env_id, kw = _env_of(env, env_kwargs)
    if not isinstance(name, str) or not name:
        raise OptionError(f"name={name!r}: expected a non-empty string")
    if isinstance(baselines, str):
        raise OptionError(f"baselines={baselines!r}: expected a list of names, e.g. [{baselines!r}]")
    bad = [b for b in baselines if b not in POLICY_NAMES]
    if bad:
        raise OptionError(f"baselines: unknown {bad}; available: {list(POLICY_NAMES)}")
    if len(set(baselines)) != len(baselines) or name in baselines:
        raise OptionError(f"baselines={list(baselines)} and name={name!r}: every row label must be distinct")
    full = scenario_of(env_id, kw)
    window = check_split(full, split, "split")
    train = full.split("train") if "train" in full.splits and split != "train" else None
    eps = episodes(full, split)          # the calendar months of a monthly scenario's split, or one window
    base: list[Policy] = []
    for b in baselines:
        if b == "online-eglb-tuned":
            if train is None:
                raise OptionError(f"baselines: 'online-eglb-tuned' is tuned on the train split, and split={split!r} "
                                  "is that split or the scenario has none; leave it out")
            base.append(make_policy(b, train=train, window_hours=eps.tune_hours))
        else:
            base.append(make_policy(b))
    agent_kw = {k: v for k, v in kw.items() if k not in WINDOW_KEYS}
    pol = _as_policy(policy, env_id, agent_kw, name, full, deterministic)
    own = agent_base({**dict(gym.spec(env_id).kwargs or {}), **agent_kw}, full, split) if isinstance(pol, EnvPolicy) \
        else None
    if own is not None and own[2] not in {p.name for p in base}:  # the policy's own planner alone, same forecasts
        planner = make_policy(own[0], **own[1])
        planner.name = own[2]
        base.append(planner)
    plot_path = None
    if plot_dir is not None:
        plot_path = Path(plot_dir)
        if plot_path.exists() and (not plot_path.is_dir() or any(plot_path.iterdir())):
            raise OptionError(f"plot_dir={str(plot_path)!r}: exists and is not an empty folder")
    if eps.months is not None:
        monthly = run_months(full, eps.months, [*base, pol], window.weights)
        table = pd.DataFrame(monthly.rows)
        table.attrs["months"] = pd.DataFrame(monthly.month_rows)
        if plot_path is not None:
            from equiglb.agents.report import write_monthly_report  # noqa: PLC0415  (matplotlib only when plotting)
            plot_path.mkdir(parents=True, exist_ok=True)
            write_monthly_report(plot_path, monthly, window)
        return table
    result = run_policies(window, [*base, pol], window.weights)
    if plot_path is not None:
        from equiglb.agents.report import write_report  # noqa: PLC0415  (matplotlib only when plotting)
        plot_path.mkdir(parents=True, exist_ok=True)
        footprints = {n: {"carbon_t": rep.carbon_t, "water_m3": rep.water_m3} for n, rep in result.reports.items()}
        write_report(plot_path, result.rows, window, footprints=footprints,
                     agent_routing={name: result.schedules[name]})
    return pd.DataFrame(result.rows)
