"""The ``world`` scenario on the real data of ../shared/traces (sustain-cluster and servegen): shape, raw values
read back with ``csv``, derivations, the weather time base, bad input, the monthly protocol and the baselines.
Skips with a reason when the data are absent."""

from __future__ import annotations

import csv
import math
import os
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import equiglb
from equiglb.traces import IntegrityError, OptionError, TraceError
from equiglb.traces import world as W

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EQUIGLB_SHARED_TRACES", REPO.parent / "shared" / "traces"))
SC, SG = SHARED / "sustain-cluster", SHARED / "servegen"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding sustain-cluster/ and servegen/ (../shared/traces), or skip."""
    for d in (SC, SG):
        if not (d / "MANIFEST.tsv").is_file():
            pytest.skip(f"real data set {d.name} not found at {d} (set EQUIGLB_SHARED_TRACES)")
    return SHARED


@pytest.fixture(scope="session")
def world(data_dir):
    return equiglb.load_scenario("world", data_dir=data_dir)


@pytest.fixture(scope="session")
def raw(data_dir):
    return W.load_zone_signals(SC, SG, W.WORLD_ZONES, W.YEARS)


def _csv_value(path: Path, time_col: str, when: str, col: str) -> float:
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row[time_col] == when:
                return float(row[col])
    raise AssertionError(f"{when} not in {path}")


def _slot(scn, when: str) -> int:
    return int((np.datetime64(when, "h") - scn.timestamps[0]).astype(np.int64))


# ---------------------------------------------------------------------- shape and raw values
def test_world_shape_and_time_range(world):
    assert (world.N, world.J, world.K, world.T) == (15, 15, 3, 17_544)
    assert world.site_names == W.WORLD_ZONES == world.region_names
    assert "DE-LU" in world.site_names and "US-CAL-CISO" in world.site_names and "GB" not in world.site_names
    assert world.timestamps[0] == np.datetime64("2023-01-01T00") and world.timestamps[-1] == np.datetime64(
        "2024-12-31T23")
    assert world.model_names == ("large", "mid", "small")
    assert world.energy_per_unit[0] == 1.0 and np.all(np.diff(world.energy_per_unit) < 0)
    assert world.quality_loss[0] == 0.0 and np.all(np.diff(world.quality_loss) > 0)
    assert world.hosting.all() and world.mask.all()


def test_one_carbon_and_one_price_value_against_the_raw_csv(world, data_dir):
    i = world.site_names.index("DE-LU")
    path = SC / "data/carbon_intensity/DE-LU/2024/DE-LU_2024_hourly.csv"
    lca = _csv_value(path, "Datetime (UTC)", "2024-03-11 19:00:00", "Carbon Intensity gCO₂eq/kWh (LCA)")
    assert lca == 502.07
    assert world.carbon[_slot(world, "2024-03-11T19"), i] == pytest.approx(lca / 1000.0, rel=1e-12)
    direct = equiglb.load_scenario("world", data_dir=data_dir, carbon="direct")
    d = _csv_value(path, "Datetime (UTC)", "2024-03-11 19:00:00", "Carbon Intensity gCO₂eq/kWh (direct)")
    assert direct.carbon[_slot(world, "2024-03-11T19"), i] == pytest.approx(d / 1000.0, rel=1e-12)
    assert d < lca
    k = world.site_names.index("US-TEX-ERCO")
    path = SC / "data/electricity_prices/standardized/US-TEX-ERCO/2023/US-TEX-ERCO_electricity_prices_2023.csv"
    price = _csv_value(path, "Datetime (UTC)", "2023-08-20 21:00:00+00:00", "Price (USD/MWh)")
    assert world.price[_slot(world, "2023-08-20T21"), k] == pytest.approx(price, rel=1e-12)
    assert price > 200


def test_in_we_prices_at_half_past_are_averaged_onto_the_hour(world):
    # India's day-ahead hours are UTC+5:30: rows at hh:30 UTC; slot [hh, hh+1) overlaps two rows by half each
    path = SC / "data/electricity_prices/standardized/IN-WE/2023/IN-WE_electricity_prices_2023.csv"
    a = _csv_value(path, "Datetime (UTC)", "2023-05-01 11:30:00+00:00", "Price (USD/MWh)")
    b = _csv_value(path, "Datetime (UTC)", "2023-05-01 12:30:00+00:00", "Price (USD/MWh)")
    i = world.site_names.index("IN-WE")
    assert world.price[_slot(world, "2023-05-01T12"), i] == pytest.approx((a + b) / 2, rel=1e-12)


def test_negative_prices_are_kept(world):
    assert world.price.min() < 0
    i = world.site_names.index("DE-LU")
    assert world.price[0, i] == pytest.approx(-3.3622368, rel=1e-12)   # 2023-01-01 00:00 UTC, first row


def test_splits_and_calendar_months(world):
    assert world.splits["train"] == (0, 8760)
    assert world.splits["val"] == (8760, 4368) and world.splits["test"] == (13128, 4416)
    months = W.month_splits()
    assert len(months) == 24 and sum(n for _, n in months.values()) == world.T
    assert {n for _, n in months.values()} == {672, 696, 720, 744}
    assert months["2024-02"][1] == 29 * 24 and months["2023-02"][1] == 28 * 24
    for name, (s, n) in months.items():
        assert world.splits[name] == (s, n)
        assert str(world.timestamps[s])[:7] == name and str(world.timestamps[s + n - 1])[:7] == name
    assert list(W.month_splits("test")) == [f"2024-{m:02d}" for m in range(7, 13)]
    assert list(W.month_splits("val")) == [f"2024-{m:02d}" for m in range(1, 7)]


# ---------------------------------------------------------------------- derivations
def test_stull_wet_bulb_and_onsite_wue():
    # Stull (2011): T = 20 °C, RH = 50 % gives Tw = 13.7 °C
    assert W.wet_bulb_c(np.array([20.0]), np.array([50.0]))[0] == pytest.approx(13.7, abs=0.05)
    # WUE grows with the wet bulb and is floored at 0.05 L/kWh
    tw = np.linspace(-10, 30, 41)
    wue = W.onsite_wue(tw)
    assert wue.min() == 0.05 and np.all(np.diff(wue[wue > 0.05]) > 0)


def test_onsite_wue_means_match_the_source_figures(raw):
    # sustain-cluster/SOURCE.md: mean on-site WUE in 2023 with the study's formula
    published = {"CA-ON": 2.3, "DE-LU": 2.8, "US-MIDA-PJM": 3.0, "US-TEX-ERCO": 3.9, "BR-SP": 4.1, "IN-WE": 5.2,
                 "SG": 5.6}
    wue = W.onsite_wue(W.wet_bulb_c(raw.temp[:8760], raw.rh[:8760])).mean(axis=0)
    for z, v in published.items():
        assert wue[W.WORLD_ZONES.index(z)] == pytest.approx(v, abs=0.06), z


def test_water_is_onsite_plus_approximate_offsite(world, raw):
    onsite = W.onsite_wue(W.wet_bulb_c(raw.temp, raw.rh))
    off = world.water - onsite
    assert np.all(off >= 0)
    # all-fossil coal grid: 450 gal/MWh; all-nuclear: 600; all-renewable: 0 (L/kWh)
    gal = W.LITRES_PER_GALLON / 1000
    assert W.offsite_ewif(np.array([0.0]), np.array([0.0]), np.array([0.9]))[0] == pytest.approx(450 * gal)
    assert W.offsite_ewif(np.array([0.0]), np.array([0.0]), np.array([0.3]))[0] == pytest.approx(300 * gal)
    assert W.offsite_ewif(np.array([100.0]), np.array([0.0]), np.array([0.0]))[0] == pytest.approx(600 * gal)
    assert W.offsite_ewif(np.array([100.0]), np.array([100.0]), np.array([0.0]))[0] == 0.0
    # coal-heavy ZA and IN-WE need more off-site water than hydro-heavy BR-SP
    z = {n: off[:, i].mean() for i, n in enumerate(world.site_names)}
    assert z["ZA"] > 3 * z["BR-SP"] and z["IN-WE"] > 3 * z["BR-SP"]


def _solar_peak_hours(temp_utc: np.ndarray, lon_deg: float) -> np.ndarray:
    """Hour of each local-solar day's temperature maximum, local solar time = UTC + longitude / 15."""
    solar = np.arange(temp_utc.size) + lon_deg / 15.0
    day = np.floor(solar / 24).astype(int)
    hour = np.floor(solar % 24).astype(int)
    out = []
    for d in np.unique(day)[1:-1]:                      # whole days only
        sel = day == d
        out.append(hour[sel][np.argmax(temp_utc[sel])])
    return np.array(out)


def test_weather_time_base_daily_peak_in_local_afternoon(raw):
    """Aligned by subtracting utc_offset_seconds, every zone's daily temperature peak falls in the early
    afternoon of its local solar time (from its longitude, independent of the files' offset); aligned with
    the wrong sign it would not."""
    for i, z in enumerate(W.WORLD_ZONES):
        hours = _solar_peak_hours(raw.temp[:8760, i], raw.coords[i, 1])
        mode = int(np.bincount(hours, minlength=24).argmax())
        assert 11 <= mode <= 16, (z, mode)
        assert np.mean((hours >= 10) & (hours <= 17)) > 0.6, z
    # the same check fails for a misaligned copy (offset added instead of subtracted) of a zone far from UTC
    i = W.WORLD_ZONES.index("US-CAL-CISO")
    shift = 2 * int(raw.offset_s[i] // 3600)
    wrong = np.roll(raw.temp[:8760, i], shift)
    mode = int(np.bincount(_solar_peak_hours(wrong, raw.coords[i, 1]), minlength=24).argmax())
    assert not 11 <= mode <= 16


def test_demand_is_resampled_from_the_14_real_days(world, raw):
    prof = raw.demand_profile
    assert prof.shape == (336,) and 150 < prof.mean() < 250          # m-large, about 196 req/s
    days = prof.reshape(14, 24)
    we = W.weekend_days(prof)
    # DE-LU's local time is UTC+1 in the files: its local day d is UTC slots 24d - 1 .. 24d + 22
    j = world.region_names.index("DE-LU")
    lam = world.demand[:, j]
    scale = None
    for d in range(1, 60):
        local = lam[24 * d - 1:24 * d + 23]
        ratios = local[None, :] / days
        match = [k for k in range(14) if np.allclose(ratios[k], ratios[k][0], rtol=1e-9)]
        assert match, f"local day {d} of DE-LU is none of the 14 trace days"
        scale = ratios[match[0]][0] if scale is None else scale
        assert ratios[match[0]][0] == pytest.approx(scale, rel=1e-9)
        date = np.datetime64("2023-01-01") + d
        weekend = (date.astype(np.int64) + 3) % 7 >= 5
        assert (match[0] in we) == weekend or any((k in we) == weekend for k in match)
    # region means follow the weights; the total is MEAN_TOTAL_DEMAND
    w = np.array([W.DEMAND_WEIGHTS[z] for z in world.region_names])
    np.testing.assert_allclose(world.demand.mean(axis=0), W.MEAN_TOTAL_DEMAND * w / w.sum(), rtol=1e-9)


def test_demand_seed_is_reproducible_and_matters(data_dir, world):
    again = equiglb.load_scenario("world", data_dir=data_dir)
    np.testing.assert_array_equal(again.demand, world.demand)
    other = equiglb.load_scenario("world", data_dir=data_dir, demand_seed=1)
    assert not np.array_equal(other.demand, world.demand)
    np.testing.assert_array_equal(other.price, world.price)


def test_capacity_fits_the_peak_with_margin_and_differs(world):
    peak = world.demand.max(axis=0) * world.energy_per_unit.max()
    assert np.all(world.capacity >= 1.25 * peak)
    assert world.capacity.sum() >= 1.25 * (world.demand.sum(axis=1).max() * world.energy_per_unit.max())
    assert len(np.unique(np.round(world.capacity, 6))) == world.N


def test_partial_mask_same_or_neighbouring_continent(data_dir):
    p = equiglb.load_scenario("world-partial", data_dir=data_dir)
    z = p.site_names
    m = p.mask
    assert np.array_equal(m, m.T) and np.all(np.diag(m))
    assert m[z.index("DE-LU"), z.index("US-NY-NYIS")] and m[z.index("BR-SP"), z.index("US-TEX-ERCO")]
    assert not m[z.index("DE-LU"), z.index("JP-TK")] and not m[z.index("BR-SP"), z.index("DE-LU")]
    assert m[:, z.index("ZA")].sum() == 1 and m[z.index("SG"), z.index("AU-NSW")]
    assert not m.all()


def test_default_weights_have_a_social_term(world):
    w = world.weights
    assert w.q == math.inf and w.mu_carbon == 1500.0 and w.mu_water == 60.0 and w.mu_social > 0


# ---------------------------------------------------------------------- bad input
def _mirror(tmp_path: Path, altered: dict[str, bytes | None]) -> Path:
    """A data folder of symlinks to the shared files, with some files replaced (bytes) or removed (None)."""
    root = tmp_path / "data"
    (root / "sustain-cluster").mkdir(parents=True)
    os.symlink(SG, root / "servegen")
    for line in (SC / "MANIFEST.tsv").read_text().splitlines():
        rel = line.split("\t")[0]
        dest = root / "sustain-cluster" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if rel in altered:
            if altered[rel] is not None:
                dest.write_bytes(altered[rel])
        else:
            os.symlink(SC / rel, dest)
    return root


def test_tampered_truncated_and_missing_files_are_refused_by_name(data_dir, tmp_path):
    rel = "data/electricity_prices/standardized/KR/2024/KR_electricity_prices_2024.csv"
    data = (SC / rel).read_bytes()
    k = data.rindex(b".") + 1                          # the first decimal of the last price (62.92 -> 62.02)
    assert data[k:k + 1].isdigit()
    digit = str((int(data[k:k + 1]) + 1) % 10).encode()
    tampered = _mirror(tmp_path / "a", {rel: data[:k] + digit + data[k + 1:]})    # same size, one digit
    with pytest.raises(IntegrityError, match=r"KR_electricity_prices_2024\.csv: differs .* sha256"):
        equiglb.load_scenario("world", data_dir=tampered)
    # a copy edited on purpose loads with verify=False, and the edit shows
    edited = equiglb.load_scenario("world", data_dir=tampered, verify=False, zones=["KR"])
    original = equiglb.load_scenario("world", data_dir=data_dir, zones=["KR"])
    assert edited.N == 1 and np.sum(edited.price != original.price) == 1
    assert original.price[-1, 0] == pytest.approx(62.9204) and edited.price[-1, 0] == pytest.approx(62.0204)
    truncated = _mirror(tmp_path / "b", {rel: data[: len(data) // 2]})
    with pytest.raises(IntegrityError, match=r"KR_electricity_prices_2024\.csv: differs .* bytes, expected"):
        equiglb.load_scenario("world", data_dir=truncated)
    weather = "data/weather/SG/2023.json"
    missing = _mirror(tmp_path / "c", {weather: None})
    with pytest.raises(IntegrityError, match=r"weather/SG/2023\.json: file of the sustain-cluster data set not found"):
        equiglb.load_scenario("world-partial", data_dir=missing)
    # verify=False still parses strictly: a truncated file is refused by name
    with pytest.raises(TraceError, match=r"KR_electricity_prices_2024\.csv"):
        equiglb.load_scenario("world", data_dir=truncated, verify=False, zones=["KR"])


def test_bad_options_are_named_before_any_work(tmp_path):
    nowhere = tmp_path / "no-such-folder"          # the options are checked before the folder is looked at
    with pytest.raises(OptionError, match=r"zone 'GB' has no electricity prices"):
        equiglb.load_scenario("world", data_dir=nowhere, zones=["DE-LU", "GB"])
    with pytest.raises(OptionError, match=r"zone 'FR' is not in the sustain-cluster data"):
        equiglb.load_scenario("world", data_dir=nowhere, zones=["FR"])
    with pytest.raises(OptionError, match=r"hold the years \[2023, 2024\], not 2022"):
        equiglb.load_scenario("world", data_dir=nowhere, years=[2022, 2023])
    with pytest.raises(OptionError, match=r"carbon='marginal'"):
        equiglb.load_scenario("world", data_dir=nowhere, carbon="marginal")
    with pytest.raises(OptionError, match=r"demand_seed"):
        equiglb.load_scenario("world", data_dir=nowhere, demand_seed=-1)
    with pytest.raises(TraceError, match=r"no-such-folder/sustain-cluster: folder of the sustain-cluster data set "
                                         r"not found"):
        equiglb.load_scenario("world", data_dir=nowhere)


def test_month_outside_the_split_is_named(data_dir, world):
    from equiglb.envs.monthly import MonthlyEpisodesEnv, calendar_months

    assert calendar_months(world, "test") == [f"2024-{m:02d}" for m in range(7, 13)]
    with pytest.raises(OptionError, match=r"months: '2024-01' is not a calendar month of split 'test'"):
        MonthlyEpisodesEnv(scenario=world, months=["2024-01"])
    with pytest.raises(OptionError, match=r"episode_length=24"):
        MonthlyEpisodesEnv(scenario=world, episode_length=24)
    with pytest.raises(Exception, match=r"no split '2025-01'"):
        world.split("2025-01")


def test_one_year_and_a_subset_of_zones(data_dir):
    one = equiglb.load_scenario("world", data_dir=data_dir, years=[2024], zones=["SG", "KR"])
    assert one.T == 8784 and one.site_names == ("SG", "KR") and one.timestamps[0] == np.datetime64("2024-01-01T00")
    assert "train" not in one.splits and one.splits["test"] == (4368, 4416) and one.splits["2024-07"][0] == 4368


# ---------------------------------------------------------------------- environments
def _sb3_and_gym_check(env_id: str, **kwargs) -> None:
    from gymnasium.utils.env_checker import check_env as gym_check
    from stable_baselines3.common.env_checker import check_env as sb3_check

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check(gym.make(env_id, **kwargs).unwrapped)
        sb3_check(gym.make(env_id, **kwargs), warn=True)


@pytest.mark.parametrize("env_id", ["equiglb/EquitableGLB-world-v0", "equiglb/EquitableGLB-world-partial-v0"])
def test_train_ids_pass_the_checkers(env_id, data_dir):
    _sb3_and_gym_check(env_id, data_dir=data_dir)
    env = gym.make(env_id, data_dir=data_dir)
    u = env.unwrapped
    assert u.config.episode_length == 730 and u.config.random_start and u.config.split == "train"
    starts = {env.reset(seed=s)[1]["t"] for s in range(5)}
    assert len(starts) > 1 and all(0 <= t <= 8760 - 730 for t in starts)
    venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point", data_dir=data_dir)
    obs, _ = venv.reset(seed=0)
    assert venv.observation_space.contains(obs)
    obs, r, *_ = venv.step(venv.action_space.sample())
    assert venv.observation_space.contains(obs) and r.shape == (2,)


@pytest.mark.parametrize("env_id", ["equiglb/EquitableGLB-world-test-v0",
                                    "equiglb/EquitableGLB-world-partial-test-v0"])
def test_test_ids_pass_the_checkers(env_id, data_dir):
    _sb3_and_gym_check(env_id, data_dir=data_dir, months=["2024-07", "2024-09"])


def test_random_month_long_episode_returns_minus_objective(data_dir, world):
    from conftest import assert_random_episode_returns_minus_objective

    env = gym.make("equiglb/EquitableGLB-world-partial-v0", data_dir=data_dir, episode_length=744)
    assert_random_episode_returns_minus_objective(env.unwrapped, env.unwrapped.scenario)


def test_test_id_episodes_are_exactly_the_calendar_months(data_dir):
    env = gym.make("equiglb/EquitableGLB-world-test-v0", data_dir=data_dir)
    u = env.unwrapped
    assert u.months == tuple(f"2024-{m:02d}" for m in range(7, 13))
    seen = []
    for k in range(7):
        _, info = env.reset(seed=0) if k == 0 else env.reset()
        start, length = u.scenario.splits[u.month]
        assert int(info["t"]) == start and u.config.episode_length == length
        seen.append(u.month)
    assert seen == [*u.months, u.months[0]]                   # cycles after the last month
    _, info = env.reset(options={"month": "2024-11"})
    assert u.month == "2024-11" and int(info["t"]) == u.scenario.splits["2024-11"][0]
    # a whole month (30 days) with random actions: the return is -J(x) of the month's window
    env.action_space.seed(0)
    total, done, n = 0.0, False, 0
    while not done:
        obs, r, done, _, _ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        total += r
        n += 1
    assert n == 720
    rep = equiglb.evaluate(u.window(), u.executed_schedule(), u.weights)
    assert str(u.window().timestamps[0]) == "2024-11-01T00" and str(u.window().timestamps[-1]) == "2024-11-30T23"
    assert total == pytest.approx(-rep.objective_usd, rel=1e-9)
    with pytest.raises(OptionError, match=r"month='2023-05' is not an episode"):
        env.reset(options={"month": "2023-05"})


# ---------------------------------------------------------------------- baselines on a world window
def test_every_baseline_schedules_a_world_window(data_dir):
    from equiglb.baselines import make_policy

    scn = equiglb.load_scenario("world-partial", data_dir=data_dir)
    start, _ = scn.splits["2024-07"]
    win = scn.window(start, 48)
    train = scn.window(0, 24 * 7)
    j_off = equiglb.evaluate(win, make_policy("offline").schedule(win)).objective_usd
    for name, kw in [("min-cost", {}), ("min-carbon", {}), ("min-water", {}), ("nearest", {}),
                     ("proportional", {}), ("random", {}), ("online-eglb", {}),
                     ("online-eglb-tuned", {"train": train, "n_windows": 1}), ("mpc", {"horizon": 3})]:
        x = make_policy(name, **kw).schedule(win)
        assert x.shape == (48, 15, 15, 3), name
        assert np.all(x[:, ~scn.allowed] == 0), name
        rep = equiglb.evaluate(win, x)
        assert rep.unserved_load == 0, name
        assert rep.objective_usd >= j_off * (1 - 1e-6), (name, rep.objective_usd, j_off)


def test_horizon_keeps_whole_months_and_drops_the_others(world):
    from equiglb.traces import apply_options

    cut = apply_options(world, horizon=1500)
    assert cut.T == 1500 and cut.splits["2023-01"] == (0, 744) and cut.splits["2023-02"] == (744, 672)
    assert "2023-03" not in cut.splits and "2024-07" not in cut.splits


def test_plot_world_cli_writes_a_png(data_dir, tmp_path, capsys):
    from equiglb.traces.__main__ import main as traces_cli

    out = tmp_path / "world.png"
    assert traces_cli(["plot", "world", "--data-dir", str(data_dir), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 50_000
    # an output folder that does not exist is refused before anything is loaded
    assert traces_cli(["plot", "world", "--data-dir", str(tmp_path / "nowhere"),
                       "--out", str(tmp_path / "no" / "x.png")]) == 2
    assert "--out" in capsys.readouterr().err


def test_datasets_replay_a_baseline_through_the_monthly_test_id(data_dir):
    pytest.importorskip("minari")
    from equiglb.datasets import record_episode

    env = gym.make("equiglb/EquitableGLB-world-partial-test-v0", data_dir=data_dir, months=["2024-09"],
                   action_mode="routing")
    rec = record_episode(env, "min-cost", seed=0)
    assert rec.rewards.shape == (720,) and rec.rewards.sum() == pytest.approx(-rec.objective_usd, rel=1e-9)
