"""jupyterlab-ide-agent: an autonomous IDE agent inside JupyterLab."""

from __future__ import annotations

__version__ = "0.1.0"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyterlab-ide-agent"}]


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    from .extension import IDEAgentExtension

    return [{"module": "jupyterlab_ide_agent", "app": IDEAgentExtension}]


def __getattr__(name: str):  # lazy so importing the package for the labextension path stays cheap
    if name == "IDEAgent":
        from .agent.loop import IDEAgent

        return IDEAgent
    raise AttributeError(name)


__all__ = ["IDEAgent", "__version__"]
