"""Every ``c.IDEAgent.*`` option, in one place.

:class:`~.loop.IDEAgent` subclasses this, and traitlets applies a config section to a class and its
subclasses, so ``c.IDEAgent.main_model = ...`` configures the agent in the server, the CLI and the
Python API alike, while the loop module stays about the loop.
"""

from __future__ import annotations

from traitlets import Bool, Dict, Enum, Float, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from .approval import MODES


class AgentSettings(LoggingConfigurable):
    main_model = Unicode(
        "openai:gpt-5", help="The main model, '<provider>:<model>' (see `providers`)."
    ).tag(config=True)
    reasoning_effort = Unicode(
        "medium", allow_none=True, help="Reasoning effort of the main model (low/medium/high)."
    ).tag(config=True)
    thinking_budget = Int(
        4096, help="Thinking token budget when the main model is an Anthropic or Gemini model."
    ).tag(config=True)
    providers = Dict(
        help="Provider endpoints by name, merged onto openai/anthropic/gemini/xai defaults. "
        "Fields: kind, api (openai kind: 'responses' or 'chat_completions'), api_key, api_key_env, base_url, "
        "base_url_env, timeout, max_retries, options.",
    ).tag(config=True)
    model_prices = Dict(
        help="Extra or overriding prices: {model_prefix: {input, output, cached_input}} in USD/1M tokens."
    ).tag(config=True)
    max_steps = Int(50, help="Most model steps in one turn before it stops with max_steps.").tag(
        config=True
    )
    max_output_tokens = Int(
        None, allow_none=True, help="Cap on output tokens per model call."
    ).tag(config=True)
    tool_output_limit = Int(
        30_000, help="Characters of one tool result sent to the model; the rest is cut with a note."
    ).tag(config=True)
    script_grace = Float(
        5.0, help="Seconds InterruptProcess waits after SIGINT before SIGTERM, and after SIGTERM before SIGKILL "
        "(a script that saves a checkpoint on KeyboardInterrupt may need longer).",
    ).tag(config=True)
    delta_window = Float(
        0.016,
        help="Seconds within which streamed text deltas are joined into one event (0 sends each delta). "
        "A delta arriving after a quiet spell is always sent at once.",
    ).tag(config=True)
    tool_timeout = Float(3600.0, help="Seconds before one tool call is stopped.").tag(config=True)
    cell_timeout = Float(60.0, help="Default seconds a notebook cell may run before it is interrupted.").tag(
        config=True
    )
    max_cell_timeout = Float(3600.0, help="Longest per-call cell timeout the model may ask for.").tag(config=True)
    ensemble_enabled = Bool(True, help="Offer the ConsultEnsemble tool to the main model.").tag(config=True)
    ensemble_members = List(
        None, allow_none=True,
        help="Ensemble members: [{name, model '<provider>:<model>', effort, budget_tokens, timeout, ...}]; "
        "None = the four default members (see ensemble/config.py).",
    ).tag(config=True)
    ensemble_synthesizer = Dict(
        None, allow_none=True, help="The synthesizer spec (same keys as a member); None = the default."
    ).tag(config=True)
    ensemble_timeout = Float(None, allow_none=True, help="Seconds per member (None = the default).").tag(
        config=True
    )
    send_images_to_model = Bool(
        False, help="Attach images from executed cells (plots) to tool results for models that read images."
    ).tag(config=True)
    summarizer_model = Unicode("openai:o3", help="Model that summarizes old history when compacting.").tag(
        config=True
    )
    context_budget = Int(
        None, allow_none=True,
        help="Prompt tokens the main model may be sent; None = its context window less the output cap.",
    ).tag(config=True)
    compaction_threshold = Float(0.75, help="Compact when the next prompt passes this share of the budget.").tag(
        config=True
    )
    keep_recent = Int(20, help="Messages kept verbatim when compacting.").tag(config=True)
    compression_ratio = Float(0.25, help="Summary size / size of what it summarizes.").tag(config=True)
    max_summary_tokens = Int(4000, help="Longest summary.").tag(config=True)
    approval_mode = Enum(
        list(MODES), "never", help="'code': ask the user before tools that run code or scripts."
    ).tag(config=True)
    approval_timeout = Float(1800.0, help="Seconds to wait for the user's approval before skipping.").tag(
        config=True
    )
    rules_dir = Unicode(
        None, allow_none=True,
        help="Folder of the user's rule files (every *.md in it goes into the system prompt); "
        "None = <jupyter_config_dir()>/ide_agent/rules.",
    ).tag(config=True)
    rule_files = List(
        Unicode(), help="More user rule files (absolute, or relative to the workspace root)."
    ).tag(config=True)
    project_rules = Bool(
        True, help="Read the AGENTS.md nearest to the prompt's notebook or file (up to the workspace root)."
    ).tag(config=True)
    rules_file_max_tokens = Int(8000, help="Tokens of one rule file sent to the model; the rest is cut.").tag(
        config=True
    )
    rules_budget_share = Float(
        0.25, help="Most of the context budget all rule files may take together."
    ).tag(config=True)
    ray_address = Unicode(
        None, allow_none=True,
        help="Ray Jobs API address (the Ray dashboard, e.g. 'http://ray-head:8265'): ExecuteScript offers "
        "target='ray'. Needs `pip install \"jupyterlab-ide-agent[ray]\"`.",
    ).tag(config=True)
    ray_upload_working_dir = Bool(
        True, help="Upload the script's cwd to the cluster with each Ray job (Ray's package limit applies); "
        "False: the cluster sees this file system at the same path (same machine, NFS) and nothing is uploaded.",
    ).tag(config=True)
    ray_excludes = List(
        Unicode(), help="More gitignore-style patterns left out of the uploaded working directory "
        "(.git, node_modules, virtualenvs and caches always are; Ray also reads .gitignore and .rayignore).",
    ).tag(config=True)
    ray_timeout = Float(10.0, help="Seconds one request to the Ray cluster may take.").tag(config=True)
    ray_upload_timeout = Float(
        300.0, help="Seconds a Ray job submission may take, uploading its working directory included."
    ).tag(config=True)
    mcp_servers = Dict(
        help="MCP servers by name, the editors' `mcpServers` shape: {command, args, env, cwd} (stdio) or "
        "{url, headers} (streamable HTTP), plus optional timeout (seconds) and enabled. Merged with "
        "`mcp_config_file`; this wins a name clash.",
    ).tag(config=True)
    mcp_config_file = Unicode(
        None, allow_none=True,
        help='Per-user MCP file, {"mcpServers": {...}}; None = <jupyter_config_dir()>/ide_agent_mcp.json, '
        "'' = none. Read again when it changes.",
    ).tag(config=True)
    mcp_state_file = Unicode(
        None, allow_none=True,
        help="Where the sidebar's on/off switch per MCP server is kept; None = "
        "<jupyter_data_dir()>/ide_agent/mcp_state.json, '' = not kept.",
    ).tag(config=True)
    mcp_timeout = Float(60.0, help="Seconds an MCP server may take to start or to answer one call "
                        "(per-server `timeout` overrides).").tag(config=True)
