"""The example plugin of docs/plugin-workflow.md: a NaN guard, a threshold guard and an
adapter skeleton."""
