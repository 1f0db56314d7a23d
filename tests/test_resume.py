"""Exact interruption and resumption of ``train.py``.

A ``train.py`` subprocess gets a real SIGINT, SIGTERM or SIGKILL at a chosen moment (mid-rollout,
mid-evaluation, right after a checkpoint); ``--resume`` then finishes the run, and the final
environment-step count, gradient-update count, model parameters, normalization statistics and
periodic-evaluation history must equal those of an uninterrupted run with the same seed, bit for
bit (one torch thread, seeded episodes, restored random states).

Budgets are tiny (400 to 1536 steps, 16-unit networks, a 288-hour synthetic scenario whose test
window is 48 h); the subprocesses' start-up (importing torch and cvxpy) dominates the file's ~3 min
on two busy cores. TD3 and A2C are interrupted in-process (a real SIGTERM to the test process).
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from stable_baselines3 import A2C, PPO, SAC, TD3

from equiglb.agents.cli import main

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"   # the package (src/ layout)
COMMON = ["--env-kwargs", "episode_length=24", "scenario_options={hours: 288}", "--no-progress", "--baselines",
          "--seed", "3"]
PPO_ARGS = ["--algo", "ppo", "-n", "1536", "--n-envs", "2", "--eval-freq", "320", "--save-freq", "512", *COMMON,
            "--hyperparams", "n_steps=64", "batch_size=64", "n_epochs=2", "policy_kwargs={net_arch: [16]}"]
SAC_ARGS = ["--algo", "sac", "-n", "600", "--n-envs", "1", "--eval-freq", "250", "--save-freq", "200", *COMMON,
            "--hyperparams", "learning_starts=100", "batch_size=32", "policy_kwargs={net_arch: [16]}"]
CLS = {"ppo": PPO, "sac": SAC}


def _run_dir(root: Path, algo: str) -> Path:
    (run,) = (root / algo).iterdir()
    return run


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs (in-process), one per (algorithm, eval episodes)."""
    cache: dict[tuple[str, ...], Path] = {}

    def get(argv: list[str]) -> Path:
        key = tuple(argv)
        if key not in cache:
            root = tmp_path_factory.mktemp("reference")
            assert main(["-f", str(root), *argv]) == 0
            cache[key] = _run_dir(root, argv[1])
        return cache[key]

    return get


def _interrupt(root: Path, argv: list[str], trigger: str, sig: int) -> tuple[int, str, Path]:
    """Run train.py, send ``sig`` when a stdout line starts with ``trigger``; return (exit code,
    merged output, run folder)."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), "-f", str(root), *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, bufsize=1)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(trigger):
            proc.send_signal(sig)
            break
    rest, _ = proc.communicate(timeout=300)
    out = "".join(lines) + rest
    assert any(ln.startswith(trigger) for ln in lines), f"never saw {trigger!r}:\n{out}"
    return proc.returncode, out, _run_dir(root, argv[1])


def _resume(run: Path) -> None:
    assert main(["--resume", str(run), "--no-progress"]) == 0


def _assert_same_run(run: Path, ref: Path, algo: str) -> None:
    a, b = CLS[algo].load(run / "model.zip"), CLS[algo].load(ref / "model.zip")
    assert a.num_timesteps == b.num_timesteps
    assert a._n_updates == b._n_updates and a._n_updates > 0
    sa, sb = a.policy.state_dict(), b.policy.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), f"parameter {k} differs"
    with open(run / "vecnormalize.pkl", "rb") as f, open(ref / "vecnormalize.pkl", "rb") as g:
        va, vb = pickle.load(f), pickle.load(g)
    np.testing.assert_array_equal(va.obs_rms.mean, vb.obs_rms.mean)
    np.testing.assert_array_equal(va.ret_rms.var, vb.ret_rms.var)
    assert va.obs_rms.count == vb.obs_rms.count
    ha, hb = np.load(run / "eval" / "evaluations.npz"), np.load(ref / "eval" / "evaluations.npz")
    np.testing.assert_array_equal(ha["timesteps"], hb["timesteps"])    # none lost, none twice
    np.testing.assert_array_equal(ha["results"], hb["results"])
    ca, cb = (yaml.safe_load((d / "config.yml").read_text()) for d in (run, ref))
    assert ca["num_timesteps"] == cb["num_timesteps"] and ca["n_updates"] == cb["n_updates"]
    assert ca["n_timesteps"] == cb["n_timesteps"]                         # the recorded budget is untouched
    if algo in ("sac",):
        a.load_replay_buffer(run / "replay_buffer.pkl")
        b.load_replay_buffer(ref / "replay_buffer.pkl")
        assert a.replay_buffer.size() == b.replay_buffer.size() == a.num_timesteps
        np.testing.assert_array_equal(a.replay_buffer.observations, b.replay_buffer.observations)


def _tb_steps(run: Path, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: PLC0415

    (tb,) = (run / "tb").iterdir()                     # one TensorBoard run, continued by --resume
    steps = []
    for ev in sorted(tb.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(ev))
        acc.Reload()
        if tag in acc.Tags()["scalars"]:
            steps += [e.step for e in acc.Scalars(tag)]
    return steps


def test_ppo_sigint_mid_rollout(tmp_path, reference):
    """SIGINT right after a periodic evaluation (which runs mid-rollout): the run stops at the start
    of the next rollout, no step is dropped or counted twice, and --resume matches the reference."""
    code, out, run = _interrupt(tmp_path, PPO_ARGS, "Periodic evaluation at step 320:", signal.SIGINT)
    assert code == 128 + signal.SIGINT, out
    assert "Resume with: python train.py --resume" in out
    ckpts = sorted(int(p.name.split("_")[1]) for p in (run / "checkpoints").glob("ckpt_*_steps.zip"))
    assert all(c % 128 == 0 for c in ckpts), ckpts          # rollout boundaries (64 steps x 2 envs)
    assert 320 < ckpts[-1] < 1536
    _resume(run)
    ref = reference(PPO_ARGS)
    _assert_same_run(run, ref, "ppo")
    steps = _tb_steps(run, "train/n_updates")
    assert steps == sorted(set(steps)), "one continuous TensorBoard curve"
    assert len(yaml.safe_load((run / "config.yml").read_text())["resumed"]) == 1


def test_ppo_sigterm_mid_evaluation(tmp_path, reference):
    """SIGTERM while a (long) periodic evaluation runs: the evaluation ends and is kept, the run
    stops at the next consistent point, and --resume matches the reference."""
    argv = [*PPO_ARGS, "--eval-episodes", "25"]
    code, out, run = _interrupt(tmp_path, argv, "Periodic evaluation at step 640 ...", signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, out
    start, got, done = (out.index("Periodic evaluation at step 640 ..."), out.index("SIGTERM received"),
                        out.index("Periodic evaluation at step 640:"))
    assert start < got < done, out                            # the signal came during the evaluation
    hist = np.load(run / "eval" / "evaluations.npz")
    assert 640 in hist["timesteps"]
    _resume(run)
    _assert_same_run(run, reference(argv), "ppo")


def test_ppo_sigint_right_after_a_checkpoint(tmp_path, reference):
    code, out, run = _interrupt(tmp_path, PPO_ARGS, "Checkpoint saved at step 512", signal.SIGINT)
    assert code == 128 + signal.SIGINT, out
    _resume(run)
    _assert_same_run(run, reference(PPO_ARGS), "ppo")


def test_sac_sigterm_mid_run(tmp_path, reference):
    """Off-policy: the replay buffer, the entropy coefficient's optimizer and the action sampling
    continue exactly; the buffer holds every counted step once."""
    code, out, run = _interrupt(tmp_path, SAC_ARGS, "Checkpoint saved at step 200", signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, out
    _resume(run)
    _assert_same_run(run, reference(SAC_ARGS), "sac")


def test_sigkill_redoes_only_the_work_since_the_last_checkpoint(tmp_path, reference):
    """SIGKILL (no chance to save): --resume starts from the latest complete checkpoint, keeps the
    recorded save frequency, evaluation frequency and device, and still matches the reference."""
    code, out, run = _interrupt(tmp_path, PPO_ARGS, "Checkpoint saved at step 512", signal.SIGKILL)
    assert code == -signal.SIGKILL
    before = yaml.safe_load((run / "config.yml").read_text())
    ckpts = sorted(int(p.name.split("_")[1]) for p in (run / "checkpoints").glob("ckpt_*_steps.zip"))
    assert ckpts[-1] >= 512 and not (run / "model.zip").exists()
    res = subprocess.run([sys.executable, str(REPO / "train.py"), "--resume", str(run), "--no-progress"],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"from step {ckpts[-1]} (checkpoint)" in res.stdout
    # the resumed run keeps its recorded frequencies and device: checkpoints at the same steps
    after = yaml.safe_load((run / "config.yml").read_text())
    for key in ("save_freq", "eval_freq", "device", "n_timesteps", "seed", "n_envs"):
        assert after[key] == before[key], key
    again = sorted(int(p.name.split("_")[1]) for p in (run / "checkpoints").glob("ckpt_*_steps.zip"))
    assert again == [512, 1024]            # every 512 steps; none at 1536, where training ends
    if ckpts[-1] == 512:
        assert "Checkpoint saved at step 1024" in res.stdout
    _assert_same_run(run, reference(PPO_ARGS), "ppo")


def test_resume_refuses_to_change_the_recorded_configuration(tmp_path, capsys):
    """A resumable run (a checkpoint, training not finished): other flags are refused, config.yml is kept."""
    argv = [*PPO_ARGS[:2], "-n", "256", *PPO_ARGS[4:]]
    assert main(["-f", str(tmp_path), *argv, "--save-freq", "128"]) == 0
    run = _run_dir(tmp_path, "ppo")
    cfg = yaml.safe_load((run / "config.yml").read_text())
    for k in ("trained_utc", "finished_utc"):
        cfg.pop(k)
    (run / "config.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    before = (run / "config.yml").read_text()
    capsys.readouterr()
    for flags, words in ((["-n", "4096"], ["--n-timesteps", "4096", "n_timesteps: 256"]),
                         (["--device", "cuda"], ["--device", "'cuda'", "'cpu'"]),
                         (["--save-freq", "64"], ["--save-freq", "64"]),
                         (["--eval-freq", "64"], ["--eval-freq", "64"]),
                         (["--hyperparams", "gamma=0.5"], ["--hyperparams", "-i"])):
        assert main(["--resume", str(run), *flags]) == 2
        err = capsys.readouterr().err
        assert all(w in err for w in words), (flags, err)
    assert (run / "config.yml").read_text() == before


class _SignalOnLine:
    """A stdout that sends ``sig`` to this process when a line starting with ``trigger`` is printed."""

    def __init__(self, out, trigger: str, sig: int):
        self.out, self.trigger, self.sig, self.sent = out, trigger, sig, False

    def write(self, text: str) -> int:
        if not self.sent and text.startswith(self.trigger):
            self.sent = True
            os.kill(os.getpid(), self.sig)
        return self.out.write(text)

    def flush(self) -> None:
        self.out.flush()


@pytest.mark.parametrize("algo, vec_env", [("td3", "dummy"), ("a2c", "subproc")])
def test_other_algorithms_and_vector_envs_in_process(algo, vec_env, tmp_path, monkeypatch):
    """TD3 with the in-process vector env and A2C with one worker process per copy: a real SIGTERM
    to this process right after the first checkpoint, then --resume, equals the uninterrupted run."""
    hp = {"td3": ["learning_starts=100", "batch_size=32"], "a2c": ["n_steps=8"]}[algo]
    argv = ["--algo", algo, "-n", "400", "--n-envs", "1" if algo == "td3" else "2", "--vec-env", vec_env,
            "--eval-freq", "0", "--save-freq", "100", *COMMON, "--hyperparams", *hp, "policy_kwargs={net_arch: [16]}"]
    ref_root, root = tmp_path / "ref", tmp_path / "run"
    assert main(["-f", str(ref_root), *argv]) == 0
    monkeypatch.setattr(sys, "stdout", _SignalOnLine(sys.stdout, "Checkpoint saved at step", signal.SIGTERM))
    assert main(["-f", str(root), *argv]) == 128 + signal.SIGTERM
    monkeypatch.undo()
    run, ref = _run_dir(root, algo), _run_dir(ref_root, algo)
    _resume(run)
    cls = {"td3": TD3, "a2c": A2C}[algo]
    a, b = cls.load(run / "model.zip"), cls.load(ref / "model.zip")
    assert a.num_timesteps == b.num_timesteps == 400 and a._n_updates == b._n_updates > 0
    for k, v in a.policy.state_dict().items():
        assert torch.equal(v, b.policy.state_dict()[k]), k
