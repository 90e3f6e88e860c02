/**
 * Ignore rules of path settings, with the Python distbackup's meanings. A rule is matched
 * against the base name of a file or folder:
 *
 * - leading `!`s: none = ignore the entry; n = include it at priority n;
 * - then a type prefix: `:` literal name, `?` glob, `/` regular expression (searched, not
 *   anchored); with no prefix, a glob when the text has one of `*?[`, else a literal;
 * - within one folder's list the first matching rule wins; lists are consulted nearest folder
 *   first, so a folder's rules come before the ones it inherits.
 *
 * Pure functions and immutable values; safe to share.
 */
import { UsageError } from '../core/errors.js';

/** How a rule's pattern is read. */
export type RuleKind = 'literal' | 'glob' | 'regex';

/** One parsed rule. `priority` 0 means "ignore"; n > 0 means "include at priority n". */
export interface IgnoreRule {
  readonly text: string;
  readonly priority: number;
  readonly kind: RuleKind;
  readonly pattern: string;
  /** True when `name` (a base name) matches. */
  test(name: Buffer | string): boolean;
}

const RULE_SHAPE = /^(!*)\s*([:?/]?)([\s\S]*)$/;

/** Parse one rule; a malformed glob or regular expression is a UsageError naming the rule. */
export function parseRule(text: string): IgnoreRule {
  const m = RULE_SHAPE.exec(text);
  const bangs = m?.[1] ?? '';
  const prefix = m?.[2] ?? '';
  const pattern = m?.[3] ?? '';
  const priority = bangs.length;
  let kind: RuleKind;
  if (prefix === ':') kind = 'literal';
  else if (prefix === '?') kind = 'glob';
  else if (prefix === '/') kind = 'regex';
  else kind = /[*?[]/.test(pattern) ? 'glob' : 'literal';
  if (kind === 'literal') {
    const bytes = Buffer.from(pattern, 'utf8');
    return {
      text,
      priority,
      kind,
      pattern,
      test: (name) => (typeof name === 'string' ? name === pattern : bytes.equals(name)),
    };
  }
  let re: RegExp;
  try {
    re = kind === 'glob' ? new RegExp(globToRegexSource(pattern), 's') : new RegExp(pattern, 's');
  } catch (err) {
    throw new UsageError(`ignore rule '${text}': invalid ${kind}: ${(err as Error).message}`);
  }
  return {
    text,
    priority,
    kind,
    pattern,
    test: (name) => re.test(typeof name === 'string' ? name : name.toString('utf8')),
  };
}

/** Parse a folder's list of rules (in order). */
export function parseRules(texts: readonly string[]): IgnoreRule[] {
  return texts.map(parseRule);
}

/**
 * Result of matching a name against a chain of rule lists (nearest folder first): the priority
 * of the first matching rule (0 = ignore), or undefined when no rule matches.
 */
export function matchChain(chain: readonly (readonly IgnoreRule[])[], name: Buffer | string): number | undefined {
  for (const rules of chain) {
    for (const r of rules) if (r.test(name)) return r.priority;
  }
  return undefined;
}

/**
 * The first matching rule in a chain, for explaining a decision (`debug info`), or undefined.
 */
export function firstMatch(
  chain: readonly (readonly IgnoreRule[])[],
  name: Buffer | string,
): { rule: IgnoreRule; level: number } | undefined {
  for (let level = 0; level < chain.length; level++) {
    for (const r of chain[level] ?? []) if (r.test(name)) return { rule: r, level };
  }
  return undefined;
}

/**
 * A shell glob (fnmatch) as an anchored regular expression source: `*` any run of characters,
 * `?` one character, `[...]` a class (`[!...]` negated, `]` first is literal); a `[` with no
 * closing `]` is literal. Everything else is literal.
 */
export function globToRegexSource(glob: string): string {
  let out = '';
  let i = 0;
  const n = glob.length;
  while (i < n) {
    const c = glob[i++] ?? '';
    if (c === '*') {
      while (glob[i] === '*') i++;
      out += '.*';
    } else if (c === '?') {
      out += '.';
    } else if (c === '[') {
      let j = i;
      if (glob[j] === '!') j++;
      if (glob[j] === ']') j++;
      while (j < n && glob[j] !== ']') j++;
      if (j >= n) {
        out += '\\[';
      } else {
        let body = glob.slice(i, j).replace(/\\/g, '\\\\');
        i = j + 1;
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        else if (body.startsWith('^')) body = `\\${body}`;
        body = body.replace(/\[/g, '\\[').replace(/^(\^?)\]/, '$1\\]');
        out += `[${body}]`;
      }
    } else {
      out += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    }
  }
  return `^(?:${out})$`;
}
