// CloudWatch Logs filter patterns for unstructured events (the "basic" term syntax):
//   ERROR Exception        both terms (AND)
//   "Failed to process"    a phrase (needed for anything but letters, digits and _)
//   ?ERROR ?WARN           either term (OR over the ?-terms)
//   ERROR -Exception       ERROR but not Exception
//   %[0-9]{3}%             a regular expression term
// Matching is case-sensitive, as in CloudWatch. An empty pattern matches every event.
// JSON (`{ $.x = 1 }`) and space-delimited (`[ip, user, ...]`) patterns are refused.
import { invalidParameter } from '../api/errors.js';

export type Term = { text: string } | { re: RegExp };

export interface FilterPattern {
  /** Every one must occur. */
  all: Term[];
  /** At least one must occur (when there are any). */
  any: Term[];
  /** None may occur. */
  none: Term[];
}

const bad = (pattern: string, why: string) =>
  invalidParameter(`Invalid filter pattern '${pattern.slice(0, 200)}': ${why}`);

export function parseFilterPattern(pattern: string): FilterPattern {
  const out: FilterPattern = { all: [], any: [], none: [] };
  const src = pattern;
  const first = src.trimStart()[0];
  if (first === '{' || first === '[') {
    throw bad(pattern, 'Berth supports the term syntax (terms, "phrases", ?term, -term, %regex%); JSON and space-delimited patterns are not supported.');
  }
  let i = 0;
  const n = src.length;
  while (i < n) {
    while (i < n && /\s/.test(src[i]!)) i++;
    if (i >= n) break;
    let kind: 'all' | 'any' | 'none' = 'all';
    if ((src[i] === '?' || src[i] === '-') && i + 1 < n && !/\s/.test(src[i + 1]!)) {
      kind = src[i] === '?' ? 'any' : 'none';
      i++;
    }
    let term: Term;
    const open = src[i]!;
    if (open === '"' || open === '%') {
      // A quoted phrase ("a \"b\"") or a regular expression (%re%), up to the closing mark.
      let text = '';
      i++;
      let closed = false;
      while (i < n) {
        const c = src[i]!;
        if (c === '\\' && i + 1 < n && (src[i + 1] === open || (open === '"' && src[i + 1] === '\\'))) { text += src[i + 1]; i += 2; continue; }
        if (c === open) { closed = true; i++; break; }
        text += c;
        i++;
      }
      if (!closed) throw bad(pattern, open === '"' ? 'a quoted phrase is not closed with "' : 'a regular expression is not closed with %');
      if (open === '"') term = { text };
      else {
        if (text === '') throw bad(pattern, 'a regular expression term is empty');
        try { term = { re: new RegExp(text) }; } catch (e) { throw bad(pattern, `the regular expression %${text}% is invalid (${(e as Error).message})`); }
      }
    } else {
      let text = '';
      while (i < n && !/\s/.test(src[i]!)) { text += src[i]; i++; }
      term = { text };
    }
    out[kind].push(term);
  }
  return out;
}

const has = (message: string, t: Term) => ('text' in t ? message.includes(t.text) : t.re.test(message));

export function matchesPattern(p: FilterPattern, message: string): boolean {
  for (const t of p.all) if (!has(message, t)) return false;
  for (const t of p.none) if (has(message, t)) return false;
  if (p.any.length > 0 && !p.any.some((t) => has(message, t))) return false;
  return true;
}

export function isMatchAll(p: FilterPattern): boolean {
  return p.all.length === 0 && p.any.length === 0 && p.none.length === 0;
}
