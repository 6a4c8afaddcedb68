"""CartPole on a fixed horizon: no termination, so imitating cannot pay off by merely surviving.

In CartPole-v1 a failed pole ends the episode. Adversarial imitation (GAIL,
AIRL) then learns from a survival bonus that it did not earn: any reward
that is positive on the states a policy visits makes a longer episode
better, whatever the expert did (Kostrikov et al. 2019, "Discriminator-Actor-
Critic", section 4.2). The `imitation` library's benchmarks use a fixed-
horizon CartPole for that reason; this is ours, written on gymnasium's
CartPoleEnv:

- the episode never terminates; it is truncated exactly at `horizon` steps;
- the reward is 1 for a step that ends with the pole up (|theta| <= 12
  degrees and |x| <= 2.4, CartPole's own thresholds) and 0 otherwise. It is a
  function of the state only, as an inverse-RL reward is: a pole that
  recovers earns reward again;
- the physics goes on past those thresholds, within hard stops at the edges
  of CartPole's own observation space: the cart meets an end of the track at
  |x| = 4.8 and the pole rests on a stop at |theta| = 24 degrees, each
  inelastic (position clipped, its velocity zeroed). So every observation is
  finite and inside the declared space, which is CartPole-v1's (the scripted
  expert, demonstrations and checkpoints of CartPole-v1 fit it as they are).
  The stops keep the velocities small (the unit tests measure them under
  random and bang-bang play); unlike `imitation`'s "seals" CartPole, whose
  state runs off unbounded, the pole cannot swing round and the cart cannot
  leave the track.
"""

from __future__ import annotations

import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

DEFAULT_HORIZON = 500


class CartPoleFixedHorizonEnv(CartPoleEnv):
    """CartPole without termination, truncated at `horizon` (see the module docstring).

    Args:
        horizon: steps per episode, a positive integer.
        render_mode: as CartPole's.
    """

    def __init__(self, horizon: int = DEFAULT_HORIZON, render_mode: str | None = None):
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon={horizon!r} must be a positive integer")
        super().__init__(render_mode=render_mode)
        self.horizon = horizon
        # The stops sit on the observation space's bounds (float32, as observations are).
        self._x_stop = float(self.observation_space.high[0])
        self._theta_stop = float(self.observation_space.high[2])
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self._t = 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        # CartPole counts steps past its termination only to warn about them; here there is none.
        self.steps_beyond_terminated = None
        super().step(action)
        x, x_dot, theta, theta_dot = self.state
        if abs(x) > self._x_stop:
            x, x_dot = float(np.sign(x)) * self._x_stop, 0.0
        if abs(theta) > self._theta_stop:
            theta, theta_dot = float(np.sign(theta)) * self._theta_stop, 0.0
        self.state = np.array((x, x_dot, theta, theta_dot), dtype=np.float64)
        up = abs(x) <= self.x_threshold and abs(theta) <= self.theta_threshold_radians
        self._t += 1
        return np.array(self.state, dtype=np.float32), float(up), False, self._t >= self.horizon, {}
