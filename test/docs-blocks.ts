/**
 * Reading the code blocks out of Markdown documentation, and applying the tour's `diff` blocks to a
 * copy of the sources. Used by `test/docs.test.ts`, which runs every block so the docs cannot rot.
 *
 * Conventions (written for authors in `docs/tour/README.md`):
 * - ```` ```ts ```` blocks are self-contained ES modules: they import what they use from
 *   `@fluxion/*` and run top to bottom (top-level `await` allowed) on the CPU backend.
 * - ```` ```ts no-run REASON ```` blocks are shown but not run; the reason is required.
 * - ```` ```ts patched ```` blocks run against a copy of the sources with the page's `diff` blocks
 *   applied (the worked example of adding an op).
 * - ```` ```ts excerpt PATH ```` blocks quote a source file: each run of lines between `// …` lines
 *   must occur in that file, consecutively (indentation and trailing spaces ignored).
 * - a ```` ```text output ```` block right after a runnable block is what that block prints with
 *   `console.log`, exactly (trailing spaces ignored).
 * - ```` ```diff ```` blocks are patches: a `+++ b/PATH` header, then hunks (`@@` lines) of context
 *   (` `), removed (`-`) and added (`+`) lines. Each hunk's context must occur exactly once in the
 *   file, so a patch that no longer applies fails the test.
 */

/** One fenced code block of a Markdown file. */
export interface CodeBlock {
  /** The file it came from (as given to {@link parseBlocks}). */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The language: the first word of the info string (`ts`, `diff`, `text`, …). */
  lang: string;
  /** The words after the language (`['no-run', 'needs', 'a', 'browser']`). */
  flags: string[];
  /** The block's text, without the fences and without the fence's indentation. */
  code: string;
  /** For a runnable block: the `text output` block that follows it, if any. */
  output?: string;
}

/**
 * The fenced code blocks of a Markdown text, each `text output` block attached to the code block
 * just before it (only blank lines may separate them).
 *
 * @example
 * ```ts
 * parseBlocks('x.md', '```ts\nconsole.log(1)\n```\n\n```text output\n1\n```\n')[0].output; // '1'
 * ```
 */
export function parseBlocks(file: string, markdown: string): CodeBlock[] {
  const lines = markdown.split('\n');
  const blocks: CodeBlock[] = [];
  let lastEnd = -2;
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*(.*)$/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, info] = open;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !new RegExp(`^\\s*${fence[0]}{${fence.length},}\\s*$`).test(lines[j])) {
      body.push(lines[j].startsWith(indent) ? lines[j].slice(indent.length) : lines[j].trimStart());
      j++;
    }
    if (j === lines.length) throw new Error(`${file}:${i + 1}: code fence is never closed`);
    const [lang = '', ...flags] = info.trim().split(/\s+/).filter(Boolean);
    const block: CodeBlock = { file, line: i + 1, lang, flags, code: body.join('\n') };
    const previous = blocks[blocks.length - 1];
    const onlyBlankBetween = lines.slice(lastEnd + 1, i).every((l) => l.trim() === '');
    if (lang === 'text' && flags[0] === 'output') {
      if (!previous || !onlyBlankBetween || !isRunnable(previous)) {
        throw new Error(`${file}:${i + 1}: a 'text output' block must follow a runnable ts block`);
      }
      previous.output = block.code;
    } else blocks.push(block);
    lastEnd = j;
    i = j;
  }
  return blocks;
}

/** Whether a block is TypeScript. */
export const isTypeScript = (b: CodeBlock) => b.lang === 'ts' || b.lang === 'typescript';

/** Whether a block quotes a source file (`excerpt PATH`); it is checked against the file, not run. */
export const isExcerpt = (b: CodeBlock) => b.flags[0] === 'excerpt';

/** Whether a block runs in the docs test (TypeScript, neither `no-run` nor an excerpt). */
export const isRunnable = (b: CodeBlock) => isTypeScript(b) && !b.flags.includes('no-run') && !isExcerpt(b);

/** The reason a `no-run` block gives (the words after `no-run`), or '' when it gives none. */
export const noRunReason = (b: CodeBlock) => b.flags.slice(b.flags.indexOf('no-run') + 1).join(' ');

/**
 * The parts of an excerpt block that are not found in its file (empty when the excerpt is
 * faithful). Parts are separated by lines that are just `// …` (or `…`).
 */
export function missingExcerptParts(block: CodeBlock, fileText: string): string[] {
  const file = fileText.split('\n').map((l) => l.trim());
  const parts: string[][] = [[]];
  for (const line of block.code.split('\n')) {
    if (/^\s*(\/\/\s*)?…\s*$/.test(line)) parts.push([]);
    else parts[parts.length - 1].push(line.trim());
  }
  return parts
    .map((part) => {
      while (part.length > 0 && part[0] === '') part.shift();
      while (part.length > 0 && part[part.length - 1] === '') part.pop();
      return part;
    })
    .filter((part) => part.length > 0)
    .filter((part) => !file.some((_, i) => part.every((line, k) => file[i + k] === line)))
    .map((part) => part.join('\n'));
}

/** One hunk of a {@link Patch}. */
export interface Hunk {
  /** Lines the file must contain, consecutively (context and removed lines). */
  before: string[];
  /** What they become (context and added lines). */
  after: string[];
}

/** A `diff` block: the file it patches and its hunks. */
export interface Patch {
  path: string;
  hunks: Hunk[];
}

/**
 * Reads a `diff` block: `--- a/PATH` / `+++ b/PATH` headers, then hunks started by `@@` lines.
 * An empty line inside a hunk is an empty context line.
 */
export function parsePatch(block: CodeBlock): Patch {
  const where = `${block.file}:${block.line}`;
  const lines = block.code.split('\n');
  const header = lines.find((l) => l.startsWith('+++ '));
  if (!header) throw new Error(`${where}: a diff block needs a '+++ b/PATH' header`);
  const path = header.slice(4).trim().replace(/^b\//, '');
  const hunks: Hunk[] = [];
  let hunk: Hunk | null = null;
  for (const line of lines) {
    if (line.startsWith('--- ') || line.startsWith('+++ ')) continue;
    if (line.startsWith('@@')) {
      hunk = { before: [], after: [] };
      hunks.push(hunk);
      continue;
    }
    if (!hunk) throw new Error(`${where}: text before the first '@@' line: ${JSON.stringify(line)}`);
    const body = line.slice(1);
    if (line === '' || line[0] === ' ') {
      hunk.before.push(body);
      hunk.after.push(body);
    } else if (line[0] === '-') hunk.before.push(body);
    else if (line[0] === '+') hunk.after.push(body);
    else throw new Error(`${where}: a hunk line must start with ' ', '-' or '+': ${JSON.stringify(line)}`);
  }
  if (hunks.length === 0) throw new Error(`${where}: no hunks`);
  return { path, hunks };
}

const normalise = (line: string) => line.trimEnd();

/**
 * Applies a patch to a file's text. Each hunk's `before` lines must occur exactly once
 * (consecutively; trailing spaces ignored), else the error says which hunk and why.
 *
 * @example
 * ```ts
 * applyPatch('a\nb\n', { path: 'x', hunks: [{ before: ['a'], after: ['a', 'a2'] }] }); // 'a\na2\nb\n'
 * ```
 */
export function applyPatch(text: string, patch: Patch): string {
  let lines = text.split('\n');
  patch.hunks.forEach((hunk, h) => {
    const want = hunk.before.map(normalise);
    const matches: number[] = [];
    for (let i = 0; i + want.length <= lines.length; i++) {
      if (want.every((w, k) => normalise(lines[i + k]) === w)) matches.push(i);
    }
    if (matches.length !== 1) {
      const why =
        matches.length === 0
          ? 'its context is not in the file'
          : `its context occurs ${matches.length} times`;
      throw new Error(`${patch.path}: hunk ${h + 1} does not apply: ${why}:\n${hunk.before.join('\n')}`);
    }
    lines = [...lines.slice(0, matches[0]), ...hunk.after, ...lines.slice(matches[0] + want.length)];
  });
  return lines.join('\n');
}

/**
 * The relative link targets of a Markdown text (`[text](target)` and `![alt](target)`), without
 * `#anchors`; absolute URLs and pure anchors are left out.
 */
export function relativeLinks(markdown: string): string[] {
  const withoutCode = markdown.replace(/(`{3,})[\s\S]*?\1/g, '').replace(/`[^`\n]*`/g, '');
  const targets = [...withoutCode.matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]);
  return targets
    .filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t) && !t.startsWith('#'))
    .map((t) => decodeURI(t.split('#')[0]));
}
