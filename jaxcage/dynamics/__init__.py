"""Scenario2 dynamics: pure functions ``(state, ...) -> state`` for each agent's phase of a step."""
