"""rlfrontier/CartPoleFixedHorizon-v0 for the `imitation` side venv (gymnasium 0.29).

The `imitation` library (1.0.1) pins gymnasium 0.29; this project runs
gymnasium 1.2, so the benchmark's `imitation` contender lives in
`.venv-imitation` and cannot import `rlfrontier.envs`. This module is the
same task written again for that venv, importing only numpy and gymnasium's
CartPoleEnv (for its spaces, constants, seeding and reset), never ray or
rlfrontier.

Equivalence with rlfrontier/envs/cartpole_fixed.py (CartPoleFixedHorizonEnv):

- reset: gymnasium's CartPoleEnv.reset, which draws the four state variables
  uniformly in [-0.05, 0.05] from the env's seeded generator in both
  gymnasium 0.29 and 1.2, so one reset seed gives one start state in both;
- step: gymnasium 1.2's CartPole physics (Euler integration, np.cos / np.sin /
  np.square on float64; 0.29 uses math.cos and ** instead, which could differ
  in the last bit), then the same hard stops at the observation space's bounds
  (|x| = 4.8, |theta| = 24 degrees; position clipped, its velocity zeroed),
  reward 1.0 when |x| <= 2.4 and |theta| <= 12 degrees after the step else
  0.0, never terminated, truncated exactly at `horizon` (500) steps, an empty
  info dict and a float32 observation;
- spaces: CartPole's own (Box(4,) and Discrete(2)).

So identical reset seeds and actions give identical observations, rewards and
truncation flags: tests/unit/test_imitation_gail_bench.py checks this by
running `gail_cartpole.py rollout` in `.venv-imitation` against rlfrontier's
env (skipped where that venv is missing).
"""

from __future__ import annotations

import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

DEFAULT_HORIZON = 500


class FixedHorizonCartPole(CartPoleEnv):
    """CartPole without termination, truncated at `horizon` (the module docstring says how it matches ours)."""

    def __init__(self, horizon: int = DEFAULT_HORIZON, render_mode: str | None = None):
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon={horizon!r} must be a positive integer")
        super().__init__(render_mode=render_mode)
        self.horizon = horizon
        self._x_stop = float(self.observation_space.high[0])
        self._theta_stop = float(self.observation_space.high[2])
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self._t = 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"{action!r} ({type(action)}) is not an action of {self.action_space}")
        x, x_dot, theta, theta_dot = (float(v) for v in self.state)
        force = self.force_mag if int(action) == 1 else -self.force_mag
        cos, sin = np.cos(theta), np.sin(theta)
        temp = (force + self.polemass_length * np.square(theta_dot) * sin) / self.total_mass
        theta_acc = (self.gravity * sin - cos * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * np.square(cos) / self.total_mass))
        x_acc = temp - self.polemass_length * theta_acc * cos / self.total_mass
        # Euler, CartPole's default integrator (kinematics_integrator == "euler").
        x, x_dot = x + self.tau * x_dot, x_dot + self.tau * x_acc
        theta, theta_dot = theta + self.tau * theta_dot, theta_dot + self.tau * theta_acc
        if abs(x) > self._x_stop:
            x, x_dot = float(np.sign(x)) * self._x_stop, 0.0
        if abs(theta) > self._theta_stop:
            theta, theta_dot = float(np.sign(theta)) * self._theta_stop, 0.0
        self.state = np.array((x, x_dot, theta, theta_dot), dtype=np.float64)
        up = abs(x) <= self.x_threshold and abs(theta) <= self.theta_threshold_radians
        self._t += 1
        if self.render_mode == "human":
            self.render()
        return np.array(self.state, dtype=np.float32), float(up), False, self._t >= self.horizon, {}
