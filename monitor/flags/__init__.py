"""Flag rules (rules/flags/*.yaml): validation, sandboxed evaluation, and the flags table with history."""
