"""What the agent's workspace holds beyond files: background processes (processes.py) and the state summary."""
