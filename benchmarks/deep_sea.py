#!/usr/bin/env python
"""DeepSea benchmark: boot_dqn against epsilon-greedy DQN (same code) and RLlib's DQN.

For each size N and seed, each contender trains until its greedy policy finds
the treasure (one greedy episode returns >= 0.98; the optimum is 0.99) or its
step budget runs out. The greedy episode is played every --eval-every env
steps on a fresh DeepSea of the same size and action mapping (the run's
own: each seed draws its own mapping, so seeds are different MDPs); training wall
clock excludes it. Reported: seeds solved, episodes (= env steps / N) and wall
clock to the first solve (median over seeds, a run that never solves counted
as slowest), and env steps/s.

    python benchmarks/deep_sea.py --sizes 10 16 --seeds 3
    python benchmarks/deep_sea.py --from-json benchmarks/results/deep_sea/results.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cartpole_soft_q import TrainingClock, _median_censored, log, machine_info, write_json  # noqa: E402

ENV_ID = "rlfrontier/DeepSea-v0"
SOLVED = 0.98
CONTENDERS = ("boot_dqn", "eps_dqn", "rllib_dqn")
LABELS = {
    "boot_dqn": "boot_dqn (rlfrontier: 10 heads, priors)",
    "eps_dqn": "epsilon-greedy DQN (same code: 1 head, no prior)",
    "rllib_dqn": "RLlib DQN (epsilon-greedy)",
}
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "deep_sea"


def _epsilon(budget: int) -> list[list[float]]:
    return [[0, 1.0], [budget // 2, 0.05]]


def build(contender: str, size: int, seed: int, budget: int):
    from rlfrontier.configure import build_config

    if contender == "boot_dqn":
        algo, overrides = "boot_dqn", {}
    elif contender == "eps_dqn":
        algo = "boot_dqn"
        overrides = {"num_heads": 1, "prior_scale": 0.0, "mask_prob": 1.0, "epsilon": _epsilon(budget)}
    else:
        # RLlib's DQN draws its random actions from the actions whose Q is not
        # exactly 0; with the zero bias init of its tuned CartPole settings,
        # DeepSea's all-zero terminal observation gives Q = 0 everywhere and
        # torch.multinomial fails ("invalid multinomial distribution"). Default
        # (non-zero) bias init avoids it.
        algo = "dqn"
        overrides = {"epsilon": _epsilon(budget),
                     "model_config": {"fcnet_bias_initializer": None, "head_fcnet_bias_initializer": None}}
    _, config, _ = build_config(algo=algo, env=ENV_ID, env_config={"size": size}, seed=seed,
                                overrides=overrides, evaluation_interval=0)
    return config.build_algo()


def greedy_return(module, env_config: dict[str, Any]) -> float:
    """One greedy episode on the run's own DeepSea (env_config holds its mapping_seed)."""
    import numpy as np

    from rlfrontier.envs.deep_sea import DeepSeaEnv
    from rlfrontier.evaluation import act

    env = DeepSeaEnv(**env_config)
    obs, _ = env.reset(seed=0)
    total, done = 0.0, False
    while not done:
        action = int(np.asarray(act(module, obs[None], explore=False)).reshape(-1)[0])
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        done = terminated or truncated
    return total


def run_one(contender: str, size: int, seed: int, *, budget: int, eval_every: int) -> dict[str, Any]:
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

    t0 = time.perf_counter()
    algo = build(contender, size, seed, budget)
    setup_s = time.perf_counter() - t0
    env_config = dict(algo.config.env_config)
    clock = TrainingClock()
    env_steps, next_eval = 0, eval_every
    steps_to_solve = wall_to_solve = None
    last_return = None
    try:
        clock.start()
        while env_steps < budget:
            result = algo.train()
            env_steps = int(result[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME])
            if env_steps >= next_eval or env_steps >= budget:
                with clock.paused():
                    last_return = greedy_return(algo.get_module(), env_config)
                next_eval = env_steps + eval_every
                if last_return >= SOLVED:
                    steps_to_solve, wall_to_solve = env_steps, clock.elapsed()
                    break
        train_s = clock.elapsed()
    finally:
        algo.stop()
    log(f"{contender} N={size} seed {seed}: {env_steps} steps, {train_s:.1f} s, greedy return {last_return}"
        + (f", solved at {steps_to_solve}" if steps_to_solve else ", not solved"))
    return {
        "contender": contender, "size": size, "seed": seed, "mapping_seed": env_config.get("mapping_seed"),
        "budget": budget,
        "steps_to_solve": steps_to_solve, "episodes_to_solve": steps_to_solve // size if steps_to_solve else None,
        "wall_s_to_solve": wall_to_solve, "env_steps": env_steps, "train_wall_s": train_s,
        "env_steps_per_s": env_steps / train_s if train_s > 0 else None, "setup_s": setup_s,
        "final_greedy_return": last_return,
    }


def render_markdown(data: dict[str, Any]) -> str:
    meta = data["meta"]
    lines = [
        "# DeepSea: deep exploration",
        "",
        f"{meta['date']}, {meta['cpu_model']} ({meta['cpus_usable']} usable cores), CPU only, "
        f"commit {str(meta['git_commit'])[:10]}. Budget per run: {data['settings']['steps_per_size']} x N env steps; "
        f"greedy episode every {data['settings']['eval_every']} steps; solved = greedy return >= {SOLVED}.",
        "",
        "| N | contender | solved | median episodes to solve | median wall-clock to solve (s) | env steps/s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for run in data["runs"]:
        groups.setdefault((run["size"], run["contender"]), []).append(run)
    for (size, contender), runs in sorted(groups.items(), key=lambda kv: (kv[0][0], CONTENDERS.index(kv[0][1]))):
        ok = [r for r in runs if not r.get("error")]
        solved = sum(r.get("steps_to_solve") is not None for r in runs)
        episodes = _median_censored([r.get("episodes_to_solve") for r in runs])
        wall = _median_censored([r.get("wall_s_to_solve") for r in runs])
        speed = statistics.median([r["env_steps_per_s"] for r in ok if r.get("env_steps_per_s")] or [0])
        lines.append(
            f"| {size} | {LABELS[contender]} | {solved}/{len(runs)} | "
            f"{'never' if episodes is None else f'{episodes:,.0f}'} | {'—' if wall is None else f'{wall:.1f}'} | "
            f"{speed:,.0f} |"
        )
    lines += ["", "Per run (episodes to solve; — = not within the budget):", ""]
    for (size, contender), runs in sorted(groups.items()):
        per = ", ".join(f"s{r['seed']}: {r['episodes_to_solve'] if r.get('episodes_to_solve') else '—'}"
                        for r in sorted(runs, key=lambda r: r["seed"]))
        lines.append(f"- N={size}, {contender}: {per}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 16])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    parser.add_argument("--steps-per-size", type=int, default=1000, help="budget = this x N env steps")
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--from-json", type=Path, help="re-render a results.json, run nothing")
    args = parser.parse_args(argv)

    if args.from_json:
        data = json.loads(args.from_json.read_text())
    else:
        import ray

        ray.init(address="local", include_dashboard=False, log_to_driver=False)
        data = {"meta": machine_info(), "settings": {"steps_per_size": args.steps_per_size,
                                                     "eval_every": args.eval_every, "sizes": args.sizes}, "runs": []}
        args.out.mkdir(parents=True, exist_ok=True)
        try:
            for size in args.sizes:
                for contender in args.contenders:
                    for seed in range(args.seeds):
                        try:
                            run = run_one(contender, size, seed, budget=args.steps_per_size * size,
                                          eval_every=args.eval_every)
                        except Exception as exc:  # noqa: BLE001 - recorded, the benchmark goes on
                            traceback.print_exc()
                            run = {"contender": contender, "size": size, "seed": seed, "error": repr(exc)}
                        data["runs"].append(run)
                        write_json(args.out / "results.json", data)
        finally:
            ray.shutdown()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(render_markdown(data))
    print(render_markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
