"""Bad hyperparameter values are refused by name before any work, with the key and the value in the message.

Each case is an override of a shipped entry (as ``--hyperparams key=value`` gives it, values read as
YAML); :func:`load_hyperparams` must raise :class:`HyperparamError` (a ValueError) naming both.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from equiglb.agents.algos import (
    _ALGO_RULES,
    _RULES,
    ALGOS,
    HyperparamError,
    LinearSchedule,
    accepted_keys,
    build_model_kwargs,
    check_device,
    hyperparams_path,
    load_hyperparams,
    parse_overrides,
)

ENV = "equiglb/EquitableGLB-v0"

# (algo, override items as on the command line, key named in the message, value text in the message)
CASES = [
    # integers: type and range
    ("ppo", ["n_steps=0"], "n_steps", "0"),
    ("ppo", ["n_steps=-5"], "n_steps", "-5"),
    ("ppo", ["n_steps=24.9"], "n_steps", "24.9"),
    ("ppo", ["n_steps='256'"], "n_steps", "'256'"),
    ("ppo", ["n_steps=true"], "n_steps", "True"),
    ("ppo", ["n_epochs=0"], "n_epochs", "0"),
    ("ppo", ["batch_size=1"], "batch_size", "1"),                 # SB3 PPO needs mini-batches > 1
    ("ppo", ["batch_size=4096"], "batch_size", "4096"),           # > n_steps * n_envs = 2048
    ("ppo", ["n_envs=0"], "n_envs", "0"),
    ("ppo", ["n_timesteps=0"], "n_timesteps", "0"),
    ("ppo", ["n_timesteps=24.9"], "n_timesteps", "24.9"),
    ("ppo", ["sde_sample_freq=0"], "sde_sample_freq", "0"),
    ("a2c", ["n_steps=0"], "n_steps", "0"),
    # learning rate and schedules
    ("ppo", ["learning_rate=0"], "learning_rate", "0"),
    ("ppo", ["learning_rate=-0.0003"], "learning_rate", "-0.0003"),
    ("ppo", ["learning_rate=-3e-4"], "learning_rate", "-0.0003"),     # a number on the command line (cli_value)
    ("ppo", ["learning_rate=fast"], "learning_rate", "'fast'"),
    ("ppo", ["learning_rate=lin_-1"], "learning_rate", "'lin_-1'"),
    ("ppo", ["learning_rate=exp_3e-4"], "learning_rate", "'exp_3e-4'"),
    ("ppo", ["learning_rate=lin_inf"], "learning_rate", "'lin_inf'"),
    ("ppo", ["learning_rate=.nan"], "learning_rate", "nan"),
    ("ppo", ["clip_range=0"], "clip_range", "0"),
    ("ppo", ["clip_range_vf=-1"], "clip_range_vf", "-1"),
    # ranges of the discounting and regularization
    ("ppo", ["gamma=1.5"], "gamma", "1.5"),
    ("ppo", ["gamma=-0.1"], "gamma", "-0.1"),
    ("ppo", ["gamma='0.99'"], "gamma", "'0.99'"),
    ("ppo", ["gae_lambda=1.2"], "gae_lambda", "1.2"),
    ("ppo", ["ent_coef=-0.01"], "ent_coef", "-0.01"),
    ("ppo", ["max_grad_norm=0"], "max_grad_norm", "0"),
    ("ppo", ["target_kl=0"], "target_kl", "0"),
    ("a2c", ["rms_prop_eps=0"], "rms_prop_eps", "0"),
    # booleans as strings or numbers
    ("ppo", ["normalize_advantage='false'"], "normalize_advantage", "'false'"),
    ("ppo", ["use_sde=1"], "use_sde", "1"),
    ("ppo", ["normalize='false'"], "normalize", "'false'"),
    ("ppo", ["normalize=1"], "normalize", "1"),
    ("ppo", ["normalize={norm_obs: 'yes'}"], "normalize.norm_obs", "'yes'"),
    ("ppo", ["normalize={gamma: 0.9}"], "normalize.gamma", "0.9"),
    ("ppo", ["normalize={clip_ob: 10}"], "normalize.clip_ob", "10"),
    # policies for images / dict observations, or not a policy
    ("ppo", ["policy=CnnPolicy"], "policy", "'CnnPolicy'"),
    ("ppo", ["policy=MultiInputPolicy"], "policy", "'MultiInputPolicy'"),
    ("sac", ["policy=CnnPolicy"], "policy", "'CnnPolicy'"),
    ("ppo", ["policy=MyPolicy"], "policy", "'MyPolicy'"),
    # policy_kwargs strings: no arbitrary names, only what RL Zoo's namespace has
    ("ppo", ["policy_kwargs=dict(activation_fn=__import__('os').getcwd())"], "policy_kwargs", "__import__"),
    ("ppo", ["policy_kwargs=dict(net_arch=[64, 64], activation_fn=torch.nn.Tanh)"], "policy_kwargs",
     "torch.nn.Tanh"),
    ("ppo", ["policy_kwargs=dict(activation_fn=nn.Linear)"], "policy_kwargs", "nn.Linear"),
    ("ppo", ["policy_kwargs={activation_fn: tanh}"], "policy_kwargs.activation_fn", "'tanh'"),
    ("ppo", ["policy_kwargs=dict(net_arch=[0, 64])"], "policy_kwargs.net_arch", "[0, 64]"),
    ("ppo", ["policy_kwargs=dict(net_arch=dict(pi=[64], qf=[64]))"], "policy_kwargs.net_arch", "'qf'"),
    ("ppo", ["policy_kwargs=dict(net_arh=[64])"], "policy_kwargs.net_arh", "[64]"),
    ("ppo", ["policy_kwargs=[64, 64]"], "policy_kwargs", "[64, 64]"),
    ("ppo", ["policy_kwargs=dict(log_std_init='zero')"], "policy_kwargs.log_std_init", "'zero'"),
    ("td3", ["policy_kwargs=dict(log_std_init=0.0)"], "policy_kwargs.log_std_init", "0.0"),
    # unknown keys, and keys of another algorithm
    ("ppo", ["n_stepz=3"], "n_stepz", "3"),
    ("ppo", ["buffer_size=1000"], "buffer_size", "1000"),
    ("ppo", ["noise_type=normal"], "noise_type", "'normal'"),
    ("td3", ["use_sde=true"], "use_sde", "True"),
    # action noise
    ("td3", ["noise_type=gaussian"], "noise_type", "'gaussian'"),
    ("td3", ["noise_std=0"], "noise_std", "0"),
    ("ddpg", ["noise_std=-0.1"], "noise_std", "-0.1"),
    # off-policy
    ("sac", ["buffer_size=0"], "buffer_size", "0"),
    ("sac", ["buffer_size=1.0e+6"], "buffer_size", "1000000.0"),
    ("sac", ["tau=0"], "tau", "0"),
    ("sac", ["tau=1.5"], "tau", "1.5"),
    ("sac", ["train_freq=0"], "train_freq", "0"),
    ("sac", ["train_freq=[4, epoch]"], "train_freq", "'epoch'"),
    ("sac", ["gradient_steps=0"], "gradient_steps", "0"),
    ("sac", ["learning_starts=-1"], "learning_starts", "-1"),
    ("sac", ["learning_starts=50000"], "learning_starts", "50000"),   # = n_timesteps: it would never learn
    ("sac", ["batch_size=200000"], "batch_size", "200000"),           # > buffer_size
    ("sac", ["ent_coef=automatic"], "ent_coef", "'automatic'"),
    ("sac", ["target_entropy=low"], "target_entropy", "'low'"),
    ("td3", ["policy_delay=0"], "policy_delay", "0"),
    ("td3", ["target_policy_noise=-0.2"], "target_policy_noise", "-0.2"),
    ("td3", ["replay_buffer_kwargs=dict(handle_timeout_termination=os.system)"], "replay_buffer_kwargs",
     "os.system"),
    # set elsewhere, or RL Zoo-only keys train.py would silently ignore
    ("ppo", ["device=cuda:7"], "device", "'cuda:7'"),
    ("ppo", ["seed=1"], "seed", "1"),
    ("ppo", ["env_wrapper=gymnasium.wrappers.ClipAction"], "env_wrapper", "'gymnasium.wrappers.ClipAction'"),
    ("ppo", ["frame_stack=4"], "frame_stack", "4"),
    ("sac", ["replay_buffer_class=HerReplayBuffer"], "replay_buffer_class", "'HerReplayBuffer'"),
    ("ppo", ["env_kwargs='episode_length=24'"], "env_kwargs", "'episode_length=24'"),
]


@pytest.mark.parametrize("algo, items, key, value", CASES, ids=[f"{c[0]}-{c[1][0]}" for c in CASES])
def test_bad_value_is_refused_naming_key_and_value(algo, items, key, value):
    with pytest.raises(HyperparamError) as info:
        load_hyperparams(algo, ENV, parse_overrides(items))
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert key in msg, msg
    assert value in msg, msg
    assert "override" in msg, msg    # says where the value came from


def test_enough_cases():
    assert len(CASES) >= 40


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_every_accepted_key_is_checked(algo):
    """No key reaches SB3 unchecked: each has a rule or is resolved by its own function."""
    resolved = {"policy", "normalize", "policy_kwargs", "replay_buffer_kwargs", "rollout_buffer_kwargs"}
    unchecked = set(accepted_keys(algo)) - set(_RULES) - set(_ALGO_RULES.get(algo, {})) - resolved
    assert not unchecked


@pytest.mark.parametrize("algo, items", [
    ("ppo", ["gamma=0", "gae_lambda=1", "learning_rate=lin_3e-4", "clip_range=lin_0.2", "n_steps=1", "n_envs=2",
             "batch_size=2", "normalize=dict(norm_obs=True, norm_reward=False)", "target_kl=null",
             "policy_kwargs=dict(net_arch=dict(pi=[32], vf=[32]), activation_fn=th.nn.ReLU, "
             "optimizer_class=th.optim.AdamW, optimizer_kwargs=dict(eps=1e-5), ortho_init=False)"]),
    ("sac", ["gamma=1", "tau=1", "train_freq=[1, episode]", "gradient_steps=-1", "ent_coef=auto_0.1",
             "noise_type=ornstein-uhlenbeck", "noise_std=0.3", "n_timesteps=1.0e+5", "learning_starts=0"]),
    ("td3", ["normalize=false", "policy_kwargs={net_arch: {pi: [16], qf: [16, 16]}}", "buffer_size=256"]),
    ("a2c", ["use_rms_prop=false", "policy_kwargs=dict(activation_fn=nn.ELU)", "normalize={}"]),
])
def test_valid_edge_values_are_accepted(algo, items):
    """The checks are not stricter than SB3 and RL Zoo: boundary values and every documented form pass."""
    hp = load_hyperparams(algo, ENV, parse_overrides(items))
    kwargs = build_model_kwargs(algo, hp, n_actions=3)
    if algo == "ppo":
        assert isinstance(kwargs["learning_rate"], LinearSchedule)
        assert kwargs["learning_rate"](1.0) == pytest.approx(3e-4) and kwargs["learning_rate"](0.5) == 1.5e-4
        assert hp["normalize"] == {"norm_obs": True, "norm_reward": False}
        assert kwargs["policy_kwargs"]["net_arch"] == {"pi": [32], "vf": [32]}
    if algo == "sac":
        assert kwargs["train_freq"] == (1, "episode") and hp["n_timesteps"] == 100_000
        assert type(kwargs["action_noise"]).__name__ == "OrnsteinUhlenbeckActionNoise"
    if algo == "a2c":
        assert hp["normalize"] is True            # an empty mapping normalizes (as RL Zoo does)


def test_file_entry_errors_name_the_file_and_entry(tmp_path):
    """A file in the old layout (env entry without n_timesteps: RL Zoo's KeyError) is refused naming it."""
    data = yaml.safe_load(hyperparams_path("ppo").read_text())
    data[ENV] = {"env_kwargs": {"episode_length": 24}}
    bad = tmp_path / "ppo.yml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(HyperparamError, match=r"n_timesteps.*ppo\.yml.*EquitableGLB-v0"):
        load_hyperparams("ppo", ENV, path=bad)
    data[ENV] = {**data["default"], "n_steps": 0}
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(HyperparamError, match=r"n_steps must be an integer >= 1, got 0 \(.*ppo\.yml, entry"):
        load_hyperparams("ppo", ENV, path=bad)
    (tmp_path / "list.yml").write_text("- 1\n- 2\n")
    with pytest.raises(HyperparamError, match="list.yml"):
        load_hyperparams("ppo", ENV, path=tmp_path / "list.yml")


def test_unlisted_id_without_default_lists_the_entries(tmp_path):
    data = yaml.safe_load(hyperparams_path("ppo").read_text())
    del data["default"]
    f = tmp_path / "ppo.yml"
    f.write_text(yaml.safe_dump(data))
    with pytest.raises(HyperparamError, match=r"no entry for 'other/Env-v0'.*EquitableGLB-residual-v0"):
        load_hyperparams("ppo", "other/Env-v0", path=f)


@pytest.mark.parametrize("algo", ["ppo", "a2c", "sac", "td3", "ddpg"])
def test_every_shipped_entry_is_valid(algo):
    for env_id in yaml.safe_load(Path(hyperparams_path(algo)).read_text()):
        load_hyperparams(algo, env_id)


@pytest.mark.parametrize("device", ["tpu", "cuda:7", "gpu0"])
def test_device_that_does_not_exist_is_refused(device):
    with pytest.raises(HyperparamError, match=device):
        check_device(device)
    assert check_device("cpu") == "cpu" and check_device("auto") == "auto"
