"""The entry points: the agent API an automation sees, the runner, the command line and
``serve``."""
