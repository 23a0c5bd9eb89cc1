/**
 * The rule files a session's turns read (the user's rules and the nearest
 * AGENTS.md), as the `rules` event and `GET sessions/{id}/rules` describe
 * them: paths, scopes and sizes, never the text. Pure (no JupyterLab
 * imports), so the parsing and the indicator's wording are unit tested.
 */

export type RuleScope = 'user' | 'project';

export interface IRuleFile {
  /** Root-relative for the project rule, absolute for the user's files. */
  path: string;
  scope: RuleScope;
  tokens: number;
  /** Cut by the per-file cap or the rules' share of the context (0 tokens: left out). */
  truncated: boolean;
  /** A root-relative path JupyterLab can open; null for files outside the root. */
  openPath: string | null;
}

export interface IActiveRules {
  files: IRuleFile[];
  totalTokens: number;
  /** The most all rules may take together. */
  budgetTokens: number;
  /** Something was cut or left out to keep to that budget. */
  capped: boolean;
  /** Files skipped (unreadable, not UTF-8, a symlink out of the root). */
  warnings: string[];
  /** The event's seq; 0 for a REST answer. */
  seq: number;
}

function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

function parseFile(raw: unknown): IRuleFile | null {
  if (!raw || typeof raw !== 'object') {
    return null;
  }
  const r = raw as Record<string, unknown>;
  if (typeof r.path !== 'string' || !r.path) {
    return null;
  }
  return {
    path: r.path,
    scope: r.scope === 'project' ? 'project' : 'user',
    tokens: num(r.tokens),
    truncated: r.truncated === true,
    openPath: typeof r.open_path === 'string' && r.open_path ? r.open_path : null
  };
}

/** A `rules` event or REST answer as view data; null when it is not one. */
export function parseRules(data: unknown, seq = 0): IActiveRules | null {
  if (!data || typeof data !== 'object' || !Array.isArray((data as Record<string, unknown>).rules)) {
    return null;
  }
  const d = data as Record<string, unknown>;
  const files = (d.rules as unknown[]).map(parseFile).filter((f): f is IRuleFile => f !== null);
  return {
    files,
    totalTokens: typeof d.total_tokens === 'number' ? num(d.total_tokens) : files.reduce((n, f) => n + f.tokens, 0),
    budgetTokens: num(d.budget_tokens),
    capped: d.capped === true,
    warnings: Array.isArray(d.warnings) ? d.warnings.filter((w): w is string => typeof w === 'string') : [],
    seq
  };
}

/** The files that reach the prompt (a file left out by the budget has 0 tokens). */
export function activeFiles(rules: IActiveRules | null | undefined): IRuleFile[] {
  return rules ? rules.files.filter(f => f.tokens > 0) : [];
}

/** "Rules: 2", or null when there is nothing to show (no rule file, no warning). */
export function rulesLabel(rules: IActiveRules | null | undefined): string | null {
  if (!rules || (!rules.files.length && !rules.warnings.length)) {
    return null;
  }
  return `Rules: ${activeFiles(rules).length}`;
}

/** One line per file and warning, for the indicator's tooltip. */
export function rulesTooltip(rules: IActiveRules | null | undefined): string {
  if (!rules) {
    return '';
  }
  const lines = rules.files.map(f => {
    const note = f.tokens === 0 ? ', left out' : f.truncated ? ', truncated' : '';
    return `${f.scope}: ${f.path} (${f.tokens.toLocaleString()} tokens${note})`;
  });
  if (rules.capped) {
    lines.push(`Rules are capped at ${rules.budgetTokens.toLocaleString()} tokens of the context.`);
  }
  return [...lines, ...rules.warnings.map(w => `⚠ ${w}`)].join('\n');
}
