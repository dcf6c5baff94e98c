"""The experiment config: typed dataclasses whose every field carries its help text, their YAML / command-line
layer, the named presets and the checks of their values. It imports nothing heavier than the particle table."""
