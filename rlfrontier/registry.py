"""What `rlfrontier algos` lists and `rlfrontier train ALGO` builds.

Each entry returns a fresh AlgorithmConfig with the project's defaults, and
says what the rest of the runtime needs to know about the algorithm:

- `needs`: what a run must provide beyond an env with the right action space
  (demonstrations, a tabular MDP with known dynamics, a task distribution),
  checked by `check_needs` before Ray starts;
- `accepts`: what a run may provide without needing it (maxent_irl takes
  demonstrations, else the tabular world's exact expert occupancies);
- `policy_module_id`: the module that acts (evaluation, export); the others
  are learner-only (a predictor, a discriminator, an encoder);
- `primary_metric` and `mode`: what a search optimises and what "best" means
  by default (the greedy evaluation return, maximised, unless the algorithm
  has a better measure: reward correlation, adaptation gain);
- `evaluation_hook`: called with the Algorithm after each evaluation; the
  numbers it returns go into the result under `EVALUATION_METRICS`, hence the
  JSON line's "metrics", MLflow and Tune's metric.

RLlib's own DQN, SAC and PPO are here as baselines, with the settings RLlib
tunes them to for CartPole (rllib/tuned_examples in the Ray repository).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core import DEFAULT_MODULE_ID

from rlfrontier.trainable import EVAL_RETURN_MEAN
from rlfrontier.validation import BadInput

# What an algorithm can need from a run (AlgoSpec.needs).
DEMONSTRATIONS = "demonstrations"
TABULAR_MDP = "tabular_mdp"
TASK_DISTRIBUTION = "task_distribution"
# What an env must expose to count as one (methods or attributes of env.unwrapped).
# A tabular MDP never terminates (the messages have no absorbing state): its episodes run the horizon.
TABULAR_MDP_API = ("transition_tensor", "state_features", "true_reward", "initial_distribution", "horizon")
TASK_DISTRIBUTION_API = ("sample_tasks", "set_task")
_NEED_TEXT = {
    DEMONSTRATIONS: "demonstrations (--demos DIR)",
    TABULAR_MDP: f"a tabular MDP with known dynamics (an env with {', '.join(TABULAR_MDP_API)})",
    TASK_DISTRIBUTION: f"a task distribution (an env with {', '.join(TASK_DISTRIBUTION_API)})",
}

# The result key under which an evaluation hook's numbers are reported.
EVALUATION_METRICS = "metrics"


@dataclass(frozen=True)
class AlgoSpec:
    name: str
    summary: str
    source: str  # "rlfrontier" or "rllib" (a baseline)
    action_spaces: tuple[str, ...]
    make_config: Callable[[], AlgorithmConfig]
    # Metrics under learners/<policy module> that `train --json` reports in "metrics".
    reported_metrics: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    accepts: tuple[str, ...] = ()
    policy_module_id: str = DEFAULT_MODULE_ID
    primary_metric: str = EVAL_RETURN_MEAN
    mode: str = "max"
    evaluation_hook: Callable[[Any], dict[str, float]] | None = None
    # Exploration bonus kinds (rlfrontier.bonuses) the algorithm can take.
    bonuses: tuple[str, ...] = ()

    def __post_init__(self):
        unknown = sorted((set(self.needs) | set(self.accepts)) - set(_NEED_TEXT))
        if unknown:
            raise ValueError(f"{self.name}: unknown needs {unknown}; known: {sorted(_NEED_TEXT)}")
        if self.mode not in ("max", "min"):
            raise ValueError(f"{self.name}: mode must be 'max' or 'min', got {self.mode!r}")


def _soft_q() -> AlgorithmConfig:
    from rlfrontier.algorithms.soft_q import SoftQConfig

    return SoftQConfig()


def _boot_dqn() -> AlgorithmConfig:
    from rlfrontier.algorithms.boot_dqn import BootDQNConfig

    return BootDQNConfig()


def _maxent_irl() -> AlgorithmConfig:
    from rlfrontier.algorithms.maxent_irl import MaxEntIRLConfig

    return MaxEntIRLConfig()


def _reward_metrics(algo: Any) -> dict[str, float]:
    """The learned reward's measures (maxent_irl, gcl: their `reward_metrics`)."""
    return algo.reward_metrics()


def _bc() -> AlgorithmConfig:
    from rlfrontier.algorithms.bc import BCConfig

    return BCConfig()


def _ppo_tuned(config):
    """`config` (a PPOConfig) with the settings `_ppo()` tunes."""
    tuned = _ppo()
    return config.training(lr=tuned.lr, num_epochs=tuned.num_epochs, vf_loss_coeff=tuned.vf_loss_coeff)


def _gail() -> AlgorithmConfig:
    from rlfrontier.algorithms.adversarial import GAILConfig

    return _ppo_tuned(GAILConfig())


def _airl() -> AlgorithmConfig:
    from rlfrontier.algorithms.adversarial import AIRLConfig

    return _ppo_tuned(AIRLConfig())


def _gcl() -> AlgorithmConfig:
    from rlfrontier.algorithms.gcl import GCLConfig

    return GCLConfig()


def _expert_return_ratio(algo: Any) -> dict[str, float]:
    return algo.expert_return_ratio()


def _maml() -> AlgorithmConfig:
    from rlfrontier.algorithms.maml import MAMLConfig

    return MAMLConfig()


def _maml_held_out(algo: Any) -> dict[str, float]:
    return algo.held_out_metrics()


def _rl2() -> AlgorithmConfig:
    from rlfrontier.algorithms.rl2 import RL2Config

    return RL2Config()


def _rl2_held_out(algo: Any) -> dict[str, float]:
    return algo.held_out_metrics()


def _pearl() -> AlgorithmConfig:
    from rlfrontier.algorithms.pearl import PEARLConfig

    return PEARLConfig()


def _pearl_held_out(algo: Any) -> dict[str, float]:
    return algo.held_out_metrics()


def _dqn() -> AlgorithmConfig:
    from ray.rllib.algorithms.dqn import DQNConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from rlfrontier.baselines import EpsilonGreedyDQNModule

    # RLlib's tuned_examples/dqn/cartpole_dqn.py (new API stack).
    return (
        DQNConfig()
        .training(
            lr=0.0005,
            train_batch_size_per_learner=32,
            replay_buffer_config={
                "type": "PrioritizedEpisodeReplayBuffer",
                "capacity": 50000,
                "alpha": 0.6,
                "beta": 0.4,
            },
            n_step=(2, 5),
            double_q=True,
            num_atoms=1,
            noisy=False,
            dueling=True,
            epsilon=[(0, 1.0), (10000, 0.02)],
        )
        .rl_module(
            # RLlib's module, with an exploration that works on all-zero observations (rlfrontier.baselines).
            rl_module_spec=RLModuleSpec(module_class=EpsilonGreedyDQNModule),
            model_config=DefaultModelConfig(
                fcnet_hiddens=[256],
                fcnet_activation="tanh",
                fcnet_bias_initializer="zeros_",
                head_fcnet_bias_initializer="zeros_",
                head_fcnet_hiddens=[256],
            )
        )
    )


def _sac() -> AlgorithmConfig:
    from ray.rllib.algorithms.sac import SACConfig

    return SACConfig()


def _ppo() -> AlgorithmConfig:
    from rlfrontier.ppo_bonus import PPOBonusConfig

    # RLlib's tuned_examples/ppo/cartpole_ppo.py; RLlib's PPO, plus the
    # reward_transform field (rlfrontier.rewards) and the bonus field (rlfrontier.ppo_bonus).
    return PPOBonusConfig().training(lr=0.0003, num_epochs=6, vf_loss_coeff=0.01)


# Reported when a reward transform is configured (rlfrontier.rewards); absent otherwise.
_REWARDS = ("reward_extrinsic_mean", "reward_transformed_mean")

ALGORITHMS: dict[str, AlgoSpec] = {
    spec.name: spec
    for spec in (
        AlgoSpec(
            "soft_q",
            "Soft Q-learning: soft Bellman backup, Boltzmann policy, fixed or learnt temperature; --demos as DQfD",
            "rlfrontier",
            ("Discrete",),
            _soft_q,
            # demo_loss and demo_fraction_sampled with --demos only (DQfD).
            ("alpha", "policy_entropy", "q_mean", "qf_loss", *_REWARDS, "demo_loss", "demo_fraction_sampled"),
            accepts=(DEMONSTRATIONS,),
            bonuses=("count", "rnd"),
        ),
        AlgoSpec(
            "boot_dqn",
            "Bootstrapped DQN with randomised priors: K Q-heads, one sampled per episode (posterior sampling)",
            "rlfrontier",
            ("Discrete",),
            _boot_dqn,
            ("qf_loss", "q_mean", "head_disagreement", "head_q_std", *_REWARDS),
            bonuses=("count", "rnd"),
        ),
        AlgoSpec(
            "maxent_irl",
            "MaxEnt inverse RL on tabular worlds: exact forward/backward messages, linear or deep reward",
            "rlfrontier",
            ("Discrete",),
            _maxent_irl,
            ("expert_nll", "feature_expectation_gap", "learned_reward_mean", "learned_reward_std"),
            needs=(TABULAR_MDP,),
            accepts=(DEMONSTRATIONS,),
            primary_metric=f"{EVALUATION_METRICS}/expected_value_difference",
            mode="min",
            evaluation_hook=_reward_metrics,
        ),
        AlgoSpec(
            "bc",
            "Behavioural cloning of demonstrations into another algorithm's module (module_of), to --restore there",
            "rlfrontier",
            ("Discrete", "Box"),
            _bc,
            ("bc_loss", "action_accuracy"),
            needs=(DEMONSTRATIONS,),
        ),
        AlgoSpec(
            "gail",
            "GAIL on RLlib's PPO: a discriminator of --demos against the policy, reward -log(1 - D(s, a))",
            "rlfrontier",
            ("Discrete", "Box"),
            _gail,
            ("imitation_reward_mean", *_REWARDS),
            needs=(DEMONSTRATIONS,),
            primary_metric=f"{EVALUATION_METRICS}/expert_return_ratio",
            evaluation_hook=_expert_return_ratio,
        ),
        AlgoSpec(
            "airl",
            "AIRL on RLlib's PPO: f = g(s) + gamma h(s') - h(s) against --demos, reward f - log pi",
            "rlfrontier",
            ("Discrete", "Box"),
            _airl,
            ("imitation_reward_mean", *_REWARDS),
            needs=(DEMONSTRATIONS,),
            primary_metric=f"{EVALUATION_METRICS}/expert_return_ratio",
            evaluation_hook=_expert_return_ratio,
        ),
        AlgoSpec(
            "gcl",
            "Guided cost learning: sample-based MaxEnt IRL, Z by importance sampling of soft_q's trajectories "
            "with --demos mixed in; soft_q learns on the current reward",
            "rlfrontier",
            ("Discrete",),
            _gcl,
            ("alpha", "policy_entropy", "q_mean", "qf_loss", *_REWARDS),
            needs=(DEMONSTRATIONS,),
            primary_metric=f"{EVALUATION_METRICS}/expert_return_ratio",
            evaluation_hook=_reward_metrics,
        ),
        AlgoSpec(
            "maml",
            "MAML (Finn et al. 2017) on a task distribution: per-task inner policy-gradient steps, PPO-clip meta-step",
            "rlfrontier",
            ("Box",),
            _maml,
            ("pre_adaptation_return_mean", "post_adaptation_return_mean", "adaptation_gain", "inner_loss",
             "outer_loss", "outer_clip_fraction", "adapted_logp_mismatch"),
            needs=(TASK_DISTRIBUTION,),
            primary_metric=f"{EVALUATION_METRICS}/held_out_post_adaptation_return_mean",
            evaluation_hook=_maml_held_out,
        ),
        AlgoSpec(
            "rl2",
            "RL² (Duan et al. 2016) on a task distribution: an LSTM policy trained with PPO over trials of one task",
            "rlfrontier",
            ("Discrete", "Box"),
            _rl2,
            ("policy_loss", "vf_loss", "entropy", "mean_kl_loss"),
            needs=(TASK_DISTRIBUTION,),
            primary_metric=f"{EVALUATION_METRICS}/held_out_trial_return_mean",
            evaluation_hook=_rl2_held_out,
        ),
        AlgoSpec(
            "pearl",
            "PEARL (Rakelly et al. 2019) on a task distribution: a context encoder q(z|c) and a soft actor-critic "
            "on z, per-task replay",
            "rlfrontier",
            ("Box",),
            _pearl,
            ("qf_loss", "vf_loss", "policy_loss", "kl_divergence", "q_mean", "log_pi_mean", "z_var_mean"),
            needs=(TASK_DISTRIBUTION,),
            primary_metric=f"{EVALUATION_METRICS}/held_out_adapted_return_mean",
            evaluation_hook=_pearl_held_out,
        ),
        AlgoSpec("dqn", "RLlib DQN (baseline; tuned CartPole settings)", "rllib", ("Discrete",), _dqn),
        AlgoSpec("sac", "RLlib SAC (baseline)", "rllib", ("Box", "Discrete"), _sac),
        AlgoSpec("ppo", "RLlib PPO (baseline; tuned CartPole settings; takes reward_transform)", "rllib",
                 ("Box", "Discrete"), _ppo, (*_REWARDS, "vf_loss_intrinsic"), bonuses=("count", "rnd")),
    )
}


def get_algorithm(name: str) -> AlgoSpec:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise BadInput(
            f"unknown algorithm {name!r}: choose one of {', '.join(sorted(ALGORITHMS))}"
        ) from None


def check_needs(spec: AlgoSpec, env: Any, *, env_id: str, demos: str | None = None) -> None:
    """BadInput naming the first thing `spec` needs that the run does not give.

    Args:
        env: an instance of the run's env (its `unwrapped` is inspected).
        env_id: its id, for the message.
        demos: the run's demonstrations folder, if any.
    """
    base = getattr(env, "unwrapped", env)
    for need in spec.needs:
        if need == DEMONSTRATIONS:
            missing = [] if demos else ["--demos"]
        else:
            api = TABULAR_MDP_API if need == TABULAR_MDP else TASK_DISTRIBUTION_API
            missing = [name for name in api if not hasattr(base, name)]
        if missing:
            raise BadInput(f"{spec.name} needs {_NEED_TEXT[need]}; {env_id} lacks {', '.join(missing)}"
                           if need != DEMONSTRATIONS else f"{spec.name} needs {_NEED_TEXT[need]}")


def takes_demos(spec: AlgoSpec) -> bool:
    """Whether `spec` learns from demonstrations (`--demos`, `demos:` in a tune file)."""
    return DEMONSTRATIONS in spec.needs or DEMONSTRATIONS in spec.accepts


def check_bonus(spec: AlgoSpec, kind: str, *, where: str) -> None:
    """BadInput unless `spec` can take an exploration bonus of `kind`; `where` names the setting."""
    if kind in spec.bonuses:
        return
    takers = [name for name, s in ALGORITHMS.items() if kind in s.bonuses]
    can = f"{kind} goes with {', '.join(takers)}" if takers else f"no algorithm takes {kind}"
    if spec.bonuses:
        raise BadInput(f"{where} {kind}: {spec.name} takes {', '.join(spec.bonuses)} ({can})")
    raise BadInput(f"{where} {kind}: {spec.name} cannot take an exploration bonus ({can})")


def evaluation_metrics(spec: AlgoSpec, algo: Any) -> dict[str, float]:
    """The numbers `spec.evaluation_hook` reports for `algo` ({} without a hook).

    Raises ValueError when the hook returns a non-number, so a broken hook
    fails the run with its name instead of logging garbage.
    """
    if spec.evaluation_hook is None:
        return {}
    out: dict[str, float] = {}
    for key, value in spec.evaluation_hook(algo).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{spec.name} evaluation hook returned {key}={value!r}, not a number")
        out[str(key)] = float(value) if math.isfinite(value) else float("nan")
    return out

