// Just enough Markdown for the documentation checks (test/docs.test.ts, test/docsApps.test.ts): headings and their
// GitHub anchors, links, fenced code blocks, and test citations. Fenced code and code spans are never read as links.

export type FencedBlock = { lang: string; info: string; code: string; line: number }

/** The fenced code blocks of a document, in order: ```lang info…\ncode\n```. */
export function fencedBlocks(markdown: string): FencedBlock[] {
  const blocks: FencedBlock[] = []
  const lines = markdown.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^`\s]*)\s*(.*)$/.exec(lines[i]!)
    if (!open) continue
    const fence = open[2]!
    const body: string[] = []
    let j = i + 1
    for (; j < lines.length; j++) {
      if (lines[j]!.trim().startsWith(fence[0]!.repeat(fence.length)) && lines[j]!.trim().replace(/[`~]/g, '') === '') break
      body.push(lines[j]!)
    }
    blocks.push({ lang: open[3]!.toLowerCase(), info: open[4]!.trim(), code: body.join('\n') + '\n', line: i + 1 })
    i = j
  }
  return blocks
}

/** The document with fenced blocks blanked (line numbers kept) and code spans removed: the prose a reader follows. */
export function proseText(markdown: string): string {
  const lines = markdown.split('\n')
  for (const block of fencedBlocks(markdown)) {
    const count = block.code.split('\n').length + 1
    for (let k = block.line - 1; k < block.line - 1 + count && k < lines.length; k++) lines[k] = ''
  }
  return lines.map((line) => line.replace(/(?<!`)(`+)(?!`).*?(?<!`)\1(?!`)/g, '')).join('\n')
}

/**
 * GitHub's heading anchor (github-slugger): lowercase, drop every character that is not a letter, mark, number,
 * connector punctuation, space or hyphen, then each space becomes a hyphen. Duplicates are numbered by the caller.
 */
export function githubSlug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-')
}

/** Heading text as GitHub renders it: inline markup removed (code ticks, links, emphasis, HTML tags). */
function renderedHeading(raw: string): string {
  return raw
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/`+/g, '')
    .replace(/(\*\*|__)(.+?)\1/g, '$2')
    .replace(/(^|\W)[*_](\S.*?\S|\S)[*_](?=\W|$)/g, '$1$2')
    .trim()
}

/** Every anchor a document offers: its headings (numbered -1, -2… when repeated) and explicit `<a id|name="…">`. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  for (const line of proseTextKeepingSpans(markdown).split('\n')) {
    const heading = /^ {0,3}#{1,6}\s+(.*?)(\s+#+)?\s*$/.exec(line)
    if (heading) {
      const slug = githubSlug(renderedHeading(heading[1]!))
      const count = seen.get(slug) ?? 0
      seen.set(slug, count + 1)
      anchors.add(count === 0 ? slug : `${slug}-${count}`)
    }
    for (const explicit of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(explicit[1]!)
  }
  return anchors
}

/** Fenced blocks blanked, code spans kept (a heading's code span is part of its text). */
function proseTextKeepingSpans(markdown: string): string {
  const lines = markdown.split('\n')
  for (const block of fencedBlocks(markdown)) {
    const count = block.code.split('\n').length + 1
    for (let k = block.line - 1; k < block.line - 1 + count && k < lines.length; k++) lines[k] = ''
  }
  return lines.join('\n')
}

export type MarkdownLink = { target: string; line: number }

/** Inline links and images `[text](target)` and reference definitions `[label]: target`, outside code. */
export function markdownLinks(markdown: string): MarkdownLink[] {
  const links: MarkdownLink[] = []
  for (const [index, line] of proseText(markdown).split('\n').entries()) {
    for (const match of line.matchAll(/!?\[(?:[^\]]|\][^(])*?\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) links.push({ target: match[1]!, line: index + 1 })
    const definition = /^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(\s+".*")?\s*$/.exec(line)
    if (definition) links.push({ target: definition[1]!, line: index + 1 })
  }
  return links
}

export type TestCitation = { file: string; name: string; line: number }

/**
 * Tests a document cites, written `` `path/to/file.test.ts` › "test name" `` (the path may be a link:
 * ``[`path`](../path) › "name"``), for node:test files (`.test.ts`) and forge files (`.t.sol`).
 */
export function testCitations(markdown: string): TestCitation[] {
  const pattern = /`([\w./-]+\.(?:test\.ts|t\.sol))`(?:\]\([^)\s]*\))?\s*›\s*"([^"\n]+)"/g
  return [...markdown.matchAll(pattern)].map((match) => ({
    file: match[1]!,
    name: match[2]!,
    line: markdown.slice(0, match.index).split('\n').length,
  }))
}
