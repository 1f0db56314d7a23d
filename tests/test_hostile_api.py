# mypy: disable-error-code="arg-type, call-overload"
# (these tests pass wrongly typed values on purpose)
"""Hostile inputs through the Python API, class 2 (every option validated by name before use) and class 6
(downloads are bounded): load_scenario, Scenario, Weights, gymnasium.make, the baselines' constructors and
fetch. Each case asserts the error class and that the message names the option (or URL) and the value."""

from __future__ import annotations

import http.server
import math
import threading
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import equiglb
from equiglb.baselines import MinSignalPolicy, MPCPolicy, NearestPolicy, OfflinePolicy, RandomPolicy, make_policy
from equiglb.envs.core import EnvConfig
from equiglb.scenario import Scenario, Weights
from equiglb.traces.fetch import EGLB_2022_COMMIT, EGLB_2022_MANIFEST, FetchError, fetch
from equiglb.validate import OptionError, ScenarioError

ENV = "equiglb/EquitableGLB-v0"
SMALL = {"hours": 48}


def tiny(**changes) -> dict:
    """Keyword arguments of a valid 2-site, 2-region, 4-hour Scenario."""
    T = 4
    args = dict(name="tiny", demand=np.full((T, 2), 0.5), price=np.full((T, 2), 40.0), carbon=np.full((T, 2), 0.4),
                water=np.full((T, 2), 2.0), capacity=np.ones(2), mask=np.ones((2, 2), bool), site_names=("a", "b"),
                region_names=("x", "y"), timestamps=np.datetime64("2024-01-01T00", "h") + np.arange(T))
    args.update(changes)
    return args


def raises_named(exc: type[BaseException], call, *needles: str) -> str:
    """Call; assert it raises ``exc`` with every needle in the message; return the message."""
    with pytest.raises(exc) as err:
        call()
    msg = str(err.value)
    for n in needles:
        assert n in msg, (n, msg)
    return msg


# ---------------------------------------------------------------------- load_scenario and its options

LOAD_CASES = {
    "name not a str": (3, {}, "unknown scenario 3"),
    "unknown name": ("synthetc", {}, "unknown scenario 'synthetc'; available"),
    "unknown option": ("synthetic", {"hourz": 3}, "unknown option(s) ['hourz']"),
    "horizon fractional": ("synthetic", {**SMALL, "horizon": 24.9},
                           "horizon=24.9: expected an integer number of hours"),
    "horizon str": ("synthetic", {**SMALL, "horizon": "24"},
                    "horizon='24': expected an integer number of hours, got a str"),
    "horizon bool": ("synthetic", {**SMALL, "horizon": True}, "horizon=True: expected an integer"),
    "horizon zero": ("synthetic", {**SMALL, "horizon": 0}, "horizon=0: must be in 1..48 hours"),
    "horizon past the data": ("synthetic", {**SMALL, "horizon": 10**9}, "horizon=1000000000: must be in 1..48 hours"),
    "horizon nan": ("synthetic", {**SMALL, "horizon": math.nan}, "horizon=nan"),
    "demand_scale zero": ("synthetic", {**SMALL, "demand_scale": 0}, "demand_scale=0.0: must be > 0.0"),
    "demand_scale negative": ("synthetic", {**SMALL, "demand_scale": -1.0}, "demand_scale=-1.0"),
    "demand_scale nan": ("synthetic", {**SMALL, "demand_scale": math.nan},
                         "demand_scale=nan: expected a finite number"),
    "demand_scale inf": ("synthetic", {**SMALL, "demand_scale": math.inf},
                         "demand_scale=inf: expected a finite number"),
    "demand_scale huge": ("synthetic", {**SMALL, "demand_scale": 1e300}, "demand_scale=1e+300: magnitude"),
    "demand_scale str": ("synthetic", {**SMALL, "demand_scale": "2"}, "demand_scale='2': expected a number"),
    "demand_scale bool": ("synthetic", {**SMALL, "demand_scale": True}, "demand_scale=True: expected a number"),
    "tz_shift str": ("synthetic", {**SMALL, "demand_tz_shift": "false"},
                     "demand_tz_shift='false': expected True or False"),
    "tz_shift int": ("synthetic", {**SMALL, "demand_tz_shift": 1}, "demand_tz_shift=1: expected True or False"),
    "weights int": ("synthetic", {**SMALL, "weights": 3}, "weights=int object: expected an equiglb.Weights"),
    "weights dict": ("synthetic", {**SMALL, "weights": {"q": 2}}, "weights=dict object: expected an equiglb.Weights"),
    "mu_carbon huge": ("synthetic", {**SMALL, "mu_carbon": 1e300}, "Weights.mu_carbon=1e+300: magnitude"),
    "mu_carbon negative": ("synthetic", {**SMALL, "mu_carbon": -1.0}, "Weights.mu_carbon=-1.0: must be >= 0.0"),
    "mu_carbon str": ("synthetic", {**SMALL, "mu_carbon": "1500"}, "Weights.mu_carbon='1500': expected a number"),
    "mu_water bool": ("synthetic", {**SMALL, "mu_water": True}, "Weights.mu_water=True: expected a number"),
    "mu_social nan": ("synthetic", {**SMALL, "mu_social": math.nan}, "Weights.mu_social=nan"),
    "q below 1": ("synthetic", {**SMALL, "q": 0.5}, "Weights.q=0.5: must be in [1, 100] or inf"),
    "q huge": ("synthetic", {**SMALL, "q": 1e6}, "Weights.q=1000000.0: must be in [1, 100] or inf"),
    "q str": ("synthetic", {**SMALL, "q": "inf"}, "Weights.q='inf': expected a number"),
    "q -inf": ("synthetic", {**SMALL, "q": -math.inf}, "Weights.q=-inf"),
    "penalty negative": ("synthetic", {**SMALL, "unserved_penalty_usd": -5}, "Weights.unserved_penalty_usd=-5.0"),
    "hours fractional": ("synthetic", {"hours": 24.9}, "hours=24.9: expected an integer number of hours"),
    "hours str": ("synthetic", {"hours": "48"}, "hours='48': expected an integer number of hours, got a str"),
    "hours zero": ("synthetic", {"hours": 0}, "hours=0: must be in 1..87600 hours"),
    "hours huge": ("synthetic", {"hours": 10**9}, "hours=1000000000: must be in 1..87600 hours"),
    "hours bool": ("synthetic", {"hours": True}, "hours=True"),
    "seed negative": ("synthetic", {**SMALL, "seed": -1}, "seed=-1: must be in 0.."),
    "seed fractional": ("synthetic", {**SMALL, "seed": 1.5}, "seed=1.5: expected an integer"),
    "seed str": ("synthetic", {**SMALL, "seed": "0"}, "seed='0': expected an integer"),
    "seed bool": ("synthetic", {**SMALL, "seed": True}, "seed=True"),
    "start garbage": ("synthetic", {**SMALL, "start": "yesterday"}, "start='yesterday': expected an ISO 8601 hour"),
    "mm energy shape": ("synthetic-multimodel", {**SMALL, "energy_per_unit": [1, 2]},
                        "energy_per_unit has shape (2,), expected (3,)"),
    "mm energy negative": ("synthetic-multimodel", {**SMALL, "energy_per_unit": [0.1, -1, 1]},
                           "energy_per_unit[1]=-1.0"),
    "mm energy text": ("synthetic-multimodel", {**SMALL, "energy_per_unit": ["a", 1, 2]},
                       "energy_per_unit: entry 0 is 'a'"),
    "mm quality nan": ("synthetic-multimodel", {**SMALL, "quality_loss": [math.nan, 0, 0]}, "quality_loss[0]=nan"),
    "mm full_connection str": ("synthetic-multimodel", {**SMALL, "full_connection": "yes"}, "full_connection='yes'"),
    "csv without folder": ("csv", {}, "needs data_dir="),
    "csv data_dir int": ("csv", {"data_dir": 3}, "data_dir=3: expected a path"),
    "csv path list": ("csv", {"path": ["x"]}, "path=['x']: expected a path"),
    "params int": ("synthetic", {**SMALL, "params": 3}, "params=3: expected a path"),
    "name int": ("synthetic", {**SMALL, "name": 5}, "name=5: expected a str"),
    "start int": ("synthetic", {**SMALL, "start": 5}, "start=5: expected an ISO 8601 hour"),
}


@pytest.mark.parametrize("case", list(LOAD_CASES))
def test_load_scenario_option_refused(case):
    name, opts, needle = LOAD_CASES[case]
    raises_named(ScenarioError, lambda: equiglb.load_scenario(name, **opts), needle)


@pytest.mark.parametrize("value", [24.0, np.int64(24), np.float64(24.0)])
def test_integral_numbers_are_accepted(value):
    assert equiglb.load_scenario("synthetic", hours=48, horizon=value).T == 24


# ---------------------------------------------------------------------- Scenario and Weights

SCENARIO_CASES = {
    "weights dict": (dict(weights={"q": 2}), OptionError, "weights=dict object: expected an equiglb.Weights"),
    "split fractional": (dict(splits={"train": (0, 2.5)}), OptionError, "split 'train' length=2.5"),
    "split scalar": (dict(splits={"train": 3}), ScenarioError, "split 'train' = 3 must be (start, length)"),
    "split outside": (dict(splits={"train": (2, 5)}), ScenarioError, "split 'train' = (start=2, length=5) is outside"),
    "capacity text": (dict(capacity=["a", "b"]), ScenarioError, "field 'capacity' is not an array of numbers"),
    "price huge": (dict(price=np.full((4, 2), 1e300)), ScenarioError, "field 'price' has the value 1e+300"),
    "demand nan": (dict(demand=np.array([[0.5, np.nan]] * 4)), ScenarioError, "field 'demand' has a non-finite value"),
    "capacity negative": (dict(capacity=[1.0, -1.0]), ScenarioError, "field 'capacity' must be >= 0, got -1.0"),
    "mask shape": (dict(mask=np.ones((3, 2), bool)), ScenarioError, "field 'mask' has shape (3, 2)"),
    "mask fractional": (dict(mask=np.full((2, 2), 0.5)), ScenarioError,
                        "field 'mask' must hold True/False (or 0/1), got 0.5"),
    "mask text": (dict(mask=[["yes", "no"], ["yes", "no"]]), ScenarioError, "field 'mask' must hold True/False"),
    "hosting 2": (dict(hosting=np.full((2, 1), 2)), ScenarioError,
                  "field 'hosting' must hold True/False (or 0/1), got 2"),
    "duplicate site": (dict(site_names=("a", "a")), ScenarioError, "field 'site_names' names 'a' twice"),
    "duplicate region": (dict(region_names=("x", "x")), ScenarioError, "field 'region_names' names 'x' twice"),
    "timestamps text": (dict(timestamps=["monday"] * 4), ScenarioError,
                        "field 'timestamps' is not an array of UTC hours"),
    "gap in time": (dict(timestamps=np.datetime64("2024-01-01T00", "h") + np.array([0, 1, 3, 4])), ScenarioError,
                    "timestamps must be hourly"),
}


@pytest.mark.parametrize("case", list(SCENARIO_CASES))
def test_scenario_refused(case):
    changes, exc, needle = SCENARIO_CASES[case]
    raises_named(exc, lambda: Scenario(**tiny(**changes)), needle)


WEIGHT_CASES = {
    "q str": (dict(q="2"), "Weights.q='2': expected a number"),
    "mu_water bool": (dict(mu_water=True), "Weights.mu_water=True"),
    "mu_social inf": (dict(mu_social=math.inf), "Weights.mu_social=inf: expected a finite number"),
    "mu_latency huge": (dict(mu_latency=1e13), "Weights.mu_latency=10000000000000.0: magnitude"),
    "q 101": (dict(q=101), "Weights.q=101.0: must be in [1, 100] or inf"),
    "penalty None": (dict(unserved_penalty_usd=None), "Weights.unserved_penalty_usd=None"),
}


@pytest.mark.parametrize("case", list(WEIGHT_CASES))
def test_weights_refused(case):
    kwargs, needle = WEIGHT_CASES[case]
    raises_named(OptionError, lambda: Weights(**kwargs), needle)


def test_weights_replace_refuses_unknown_and_bad_values():
    raises_named(OptionError, lambda: Weights().replace(mu_foo=1.0), "unknown weight(s) ['mu_foo']")
    raises_named(OptionError, lambda: Weights().replace(q=0), "Weights.q=0.0")
    assert Weights().replace(q=2, mu_carbon=None).q == 2.0  # None keeps the value


# ---------------------------------------------------------------------- gymnasium.make

MAKE_CASES = {
    "episode_length fractional": (dict(episode_length=24.9),
                                  "episode_length=24.9: expected an integer number of hours"),
    "episode_length str": (dict(episode_length="24"), "episode_length='24'"),
    "episode_length zero": (dict(episode_length=0), "episode_length=0: must be in 1.."),
    "episode_length too long": (dict(episode_length=10**6), "episode_length=1000000: must be in 1..40 hours"),
    "episode_length bool": (dict(episode_length=True), "episode_length=True"),
    "random_start str": (dict(random_start="false"), "random_start='false': expected True or False"),
    "random_start int": (dict(random_start=1), "random_start=1: expected True or False"),
    "include_prev_action str": (dict(include_prev_action="no"), "include_prev_action='no'"),
    "action_mode case": (dict(action_mode="Routing"), "action_mode='Routing': expected one of"),
    "action_mode int": (dict(action_mode=3), "action_mode=3: expected one of"),
    "forecast_horizon negative": (dict(forecast_horizon=-1), "forecast_horizon=-1: must be in 0..8760 hours"),
    "forecast_horizon fractional": (dict(forecast_horizon=2.5), "forecast_horizon=2.5: expected an integer"),
    "forecast_horizon huge": (dict(forecast_horizon=10**9), "forecast_horizon=1000000000: must be in 0..8760"),
    "forecast_horizon str": (dict(forecast_horizon="3"), "forecast_horizon='3'"),
    "forecast_noise negative": (dict(forecast_noise=-0.1), "forecast_noise=-0.1: must be >= 0.0"),
    "forecast_noise nan": (dict(forecast_noise=math.nan), "forecast_noise=nan"),
    "forecast_noise huge": (dict(forecast_noise=1e3), "forecast_noise=1000.0: must be <= 10.0"),
    "forecast_noise str": (dict(forecast_noise="0.1"), "forecast_noise='0.1'"),
    "region_weights shape": (dict(region_weights=[1.0] * 9), "region_weights has shape (9,), expected (10,)"),
    "region_weights negative": (dict(region_weights=[1.0] * 9 + [-1.0]), "region_weights[9]=-1.0"),
    "region_weights nan": (dict(region_weights=[math.nan] + [1.0] * 9), "region_weights[0]=nan"),
    "region_weights text": (dict(region_weights="abc"), "region_weights='abc': expected a sequence of numbers"),
    "region_weights huge": (dict(region_weights=[1e300] * 10), "region_weights[0]=1e+300"),
    "region_weights bools": (dict(region_weights=[True] * 10), "region_weights: entry 0 is True"),
    "q below 1": (dict(q=0.5), "Weights.q=0.5"),
    "mu_carbon huge": (dict(mu_carbon=1e300), "Weights.mu_carbon=1e+300: magnitude"),
    "split unknown": (dict(split="nope"), "split='nope' is not a split of scenario 'synthetic'"),
    "split int": (dict(split=3), "split=3 is not a split"),
    "scenario int": (dict(scenario=3), "scenario=int object: expected a registered scenario name"),
    "scenario_options list": (dict(scenario_options=[1]), "scenario_options=[1]: expected a dict"),
    "scenario_options bad hours": (dict(scenario_options={"hours": 24.9}), "hours=24.9"),
    "scenario_options weights": (dict(scenario_options={"hours": 48, "weights": "eglb"}), "weights=str object"),
    "data_dir with Scenario": (dict(scenario=Scenario(**tiny()), data_dir="/tmp"),
                               "data_dir= and scenario_options= apply only when scenario= is a name"),
    "unknown option": (dict(forecast_horizont=3), "unknown environment option(s) ['forecast_horizont']"),
    "weights object": (dict(weights=Weights()), "unknown environment option(s) ['weights']; the options are"),
    "data_dir bad type": (dict(scenario="eglb-2022", data_dir=3), "data_dir=3: expected a path"),
}


@pytest.mark.parametrize("case", list(MAKE_CASES))
def test_gym_make_option_refused(case):
    kwargs, needle = dict(MAKE_CASES[case][0]), MAKE_CASES[case][1]
    if "scenario" not in kwargs and "scenario_options" not in kwargs:
        kwargs["scenario_options"] = {"hours": 48}
    raises_named(OptionError, lambda: gym.make(ENV, **kwargs), needle)


def test_start_slot_checked_by_name():
    cfg = EnvConfig.make(scenario_options={"hours": 48}, episode_length=10)
    rng = np.random.default_rng(0)
    raises_named(OptionError, lambda: cfg.draw_start(rng, 5.7),
                 "options['start']=5.7: expected an integer number of slots")
    raises_named(OptionError, lambda: cfg.draw_start(rng, -1), "options['start']=-1: must be in 0..30 slots")
    raises_named(OptionError, lambda: cfg.draw_start(rng, 31), "options['start']=31: must be in 0..30 slots")
    raises_named(OptionError, lambda: cfg.draw_start(rng, "3"), "options['start']='3'")
    assert cfg.draw_start(rng, 30) == 30 and cfg.draw_start(rng) == 0


@pytest.mark.parametrize("start", [5.7, -1, "3", [1, 2.5]])
def test_reset_start_option_checked_in_single_and_vector_env(start):
    kw = dict(scenario_options={"hours": 48}, episode_length=10)
    if not isinstance(start, list):
        env = gym.make(ENV, **kw)
        raises_named(OptionError, lambda: env.reset(options={"start": start}), "options['start']=")
    venv = gym.make_vec(ENV, num_envs=2, vectorization_mode="vector_entry_point", **kw)
    raises_named(OptionError, lambda: venv.reset(options={"start": start}), "options['start']=")


def test_forecast_horizon_past_the_data_warns():
    with pytest.warns(UserWarning, match=r"forecast_horizon=5 h reaches past the end of the data .*T=4 h"):
        EnvConfig.make(scenario=Scenario(**tiny()), forecast_horizon=5)


# ---------------------------------------------------------------------- baselines' constructors

BASELINE_CASES = {
    "mpc horizon zero": (lambda: MPCPolicy(horizon=0), "horizon=0: must be in 1..168 hours"),
    "mpc horizon fractional": (lambda: MPCPolicy(horizon=24.9), "horizon=24.9: expected an integer number of hours"),
    "mpc horizon str": (lambda: MPCPolicy(horizon="24"), "horizon='24'"),
    "mpc horizon huge": (lambda: MPCPolicy(horizon=10**6), "horizon=1000000: must be in 1..168"),
    "mpc horizon bool": (lambda: MPCPolicy(horizon=True), "horizon=True"),
    "mpc noise negative": (lambda: MPCPolicy(noise_std=-1), "noise_std=-1.0: must be >= 0.0"),
    "mpc noise nan": (lambda: MPCPolicy(noise_std=math.nan), "noise_std=nan"),
    "mpc seed negative": (lambda: MPCPolicy(seed=-1), "seed=-1"),
    "mpc seed fractional": (lambda: MPCPolicy(seed=1.5), "seed=1.5: expected an integer"),
    "mpc solver missing": (lambda: MPCPolicy(solver="NOPE"),
                           "solver='NOPE': solver not installed; installed cvxpy solvers: ["),
    "mpc solver type": (lambda: MPCPolicy(solver=3), "solver=3: solver not installed"),
    "random seed negative": (lambda: RandomPolicy(seed=-1), "seed=-1"),
    "random seed str": (lambda: RandomPolicy(seed="1"), "seed='1'"),
    "random seed fractional": (lambda: RandomPolicy(seed=2.5), "seed=2.5"),
    "offline solver missing": (lambda: OfflinePolicy(solver="GUROBI_NOT_HERE"),
                               "solver='GUROBI_NOT_HERE': solver not installed"),
    "offline allow_unserved str": (lambda: OfflinePolicy(allow_unserved="no"), "allow_unserved='no'"),
    "min-signal unknown": (lambda: MinSignalPolicy("wind"), "signal='wind': expected one of"),
    "make_policy mpc horizon": (lambda: make_policy("mpc", horizon=0), "horizon=0"),
    "make_policy random seed": (lambda: make_policy("random", seed=-2), "seed=-2"),
}


@pytest.mark.parametrize("case", list(BASELINE_CASES))
def test_baseline_constructor_refused(case):
    call, needle = BASELINE_CASES[case]
    raises_named(OptionError, call, needle)


def test_nearest_check_before_any_work():
    scn = Scenario(**tiny())  # no latency matrix
    raises_named(ValueError, lambda: NearestPolicy.check(scn), "scenario 'tiny' has no latency matrix")


# ---------------------------------------------------------------------- downloads (bounded)

AI_SIZE = EGLB_2022_MANIFEST["AI_workload.csv"][0]


class Hostile:
    """An HTTP server on 127.0.0.1 that misbehaves in one way (``mode``) on every request."""

    def __init__(self, mode: str):
        outer = self
        self.mode = mode

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                try:
                    outer.serve(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def serve(self, h: http.server.BaseHTTPRequestHandler) -> None:
        m = self.mode
        if m == "500":
            h.send_error(500, "boom")
            return
        h.send_response(200)
        if m == "endless":
            h.end_headers()
            t0 = time.monotonic()
            while time.monotonic() - t0 < 20:
                h.wfile.write(b"1" * 65536)
            return
        length = {"announce more": AI_SIZE + 100, "short": AI_SIZE, "stall": AI_SIZE, "slow": AI_SIZE,
                  "same size": AI_SIZE}[m]
        h.send_header("Content-Length", str(length))
        h.end_headers()
        if m == "announce more":
            h.wfile.write(b"x" * length)
        elif m == "short":
            h.wfile.write(b"x" * (AI_SIZE // 2))
            h.wfile.flush()
            h.close_connection = True
        elif m == "stall":
            time.sleep(3)
        elif m == "slow":
            for _ in range(40):
                h.wfile.write(b"x")
                h.wfile.flush()
                time.sleep(0.1)
        elif m == "same size":
            h.wfile.write(b"x" * AI_SIZE)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


DOWNLOAD_CASES = {
    "server never stops": ("endless", "sent more than the 14814 bytes"),
    "announces a wrong length": ("announce more", "announces 14914 bytes, the pinned file has 14814"),
    "closes early": ("short", "received 7407 bytes, the pinned file has 14814"),
    "stalls": ("stall", "timed out"),
    "trickles past the deadline": ("slow", "not finished after --timeout 1 s"),
    "wrong content": ("same size", "checksum mismatch for AI_workload.csv"),
    "HTTP 500": ("500", "HTTP 500"),
}


@pytest.mark.parametrize("case", list(DOWNLOAD_CASES))
def test_download_refused_without_partial_file(tmp_path, case):
    mode, needle = DOWNLOAD_CASES[case]
    server = Hostile(mode)
    try:
        t0 = time.monotonic()
        msg = raises_named(FetchError, lambda: fetch("eglb-2022", cache_dir=tmp_path, base_url=server.url,
                                                     timeout_s=1.0), needle)
        assert time.monotonic() - t0 < 15
    finally:
        server.close()
    assert "AI_workload.csv" in msg
    assert not [p for p in Path(tmp_path).rglob("*") if p.is_file()], "a partial or unverified file was left"


@pytest.mark.parametrize("url", ["ftp://example.org/data", "not a url", "http://", "file:///etc", "http://[::1"])
def test_invalid_base_url(tmp_path, url):
    raises_named(FetchError, lambda: fetch("eglb-2022", cache_dir=tmp_path, base_url=url), f"base_url={url!r}")
    assert not list(Path(tmp_path).rglob("*"))


@pytest.mark.parametrize("timeout", [0, -1.0, math.nan, "10", True, 1e9])
def test_invalid_timeout(tmp_path, timeout):
    raises_named(OptionError, lambda: fetch("eglb-2022", cache_dir=tmp_path, timeout_s=timeout), "timeout_s=")


def test_cache_dir_is_a_file(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    raises_named(FetchError, lambda: fetch("eglb-2022", cache_dir=blocker, base_url="http://127.0.0.1:9"),
                 f"cache folder {blocker}/eglb-2022/", "cannot be created")


def test_cached_path_is_a_folder(tmp_path):
    server = Hostile("same size")
    folder = tmp_path / "eglb-2022"
    try:
        (tmp_path / "eglb-2022" / EGLB_2022_COMMIT / "AI_workload.csv").mkdir(parents=True)
        raises_named(FetchError, lambda: fetch("eglb-2022", cache_dir=tmp_path, base_url=server.url, timeout_s=5),
                     "AI_workload.csv")
    finally:
        server.close()
    assert not [p for p in folder.rglob("*") if p.is_file()]


def test_invalid_commit(tmp_path):
    raises_named(FetchError, lambda: fetch("eglb-2022", cache_dir=tmp_path, commit="main"),
                 "commit='main': expected a 40-hex-digit git commit")
