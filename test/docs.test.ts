// The documentation checks itself against the repository: every relative link and #anchor in README.md and docs/
// resolves, every docs/…md#anchor cited from code resolves, every test a doc cites exists in the suite, and no file
// points at a specification outside the repository. Markdown is read by the small parser in test/markdown.ts.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { githubSlug, headingAnchors, markdownLinks, proseText, testCitations } from './markdown.ts'
import { testNamesIn } from './testNames.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const SKIP_DIRS = new Set(['node_modules', '.git', 'out', 'cache', 'lib', '.keymanager', 'broadcast'])

/** Files under `dir` (relative to the repository root), skipping dependencies and build outputs. */
function filesUnder(dir: string, keep: (path: string) => boolean = () => true): string[] {
  const base = join(ROOT, dir)
  if (!existsSync(base)) return []
  if (statSync(base).isFile()) return keep(dir) ? [dir] : []
  const out: string[] = []
  for (const entry of readdirSync(base, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name)) out.push(...filesUnder(join(dir, entry.name), keep))
    } else if (keep(join(dir, entry.name))) out.push(join(dir, entry.name))
  }
  return out.sort()
}

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8')
const MARKDOWN = ['README.md', ...filesUnder('docs', (p) => p.endsWith('.md'))]
const anchorCache = new Map<string, Set<string>>()
function anchorsOf(path: string): Set<string> {
  let anchors = anchorCache.get(path)
  if (!anchors) anchorCache.set(path, (anchors = headingAnchors(read(path))))
  return anchors
}

/** Where a link or citation leads: an error message, or null when the file (and the anchor, if any) exist. */
function brokenTarget(fromFile: string, target: string): string | null {
  const [pathPart, anchor] = target.split('#', 2) as [string, string | undefined]
  const file = pathPart === '' ? fromFile : relative(ROOT, resolve(dirname(join(ROOT, fromFile)), decodeURI(pathPart)))
  if (file.startsWith('..')) return `${target} leaves the repository`
  if (!existsSync(join(ROOT, file))) return `${target}: no file ${file}`
  if (anchor === undefined) return null
  if (!file.endsWith('.md')) return /^L\d+(-L\d+)?$/.test(anchor) ? null : `${target}: an anchor into a file that is not markdown`
  return anchorsOf(file).has(anchor) ? null : `${target}: ${file} has no heading with the anchor #${anchor}`
}

describe('docs: links and anchors', () => {
  test('default: GitHub anchor rules (lowercase, punctuation dropped, spaces to hyphens, duplicates numbered)', () => {
    assert.equal(githubSlug('Keys and derivations'), 'keys-and-derivations')
    assert.equal(githubSlug('Measurements and TCB policy'), 'measurements-and-tcb-policy')
    assert.equal(githubSlug('`GET /sealkey`: a key per pod'), 'get-sealkey-a-key-per-pod')
    assert.equal(githubSlug('ECIES v1 (wire format)'), 'ecies-v1-wire-format')
    assert.equal(githubSlug('A & B'), 'a--b')
    assert.equal(githubSlug('snake_case stays'), 'snake_case-stays')
    const anchors = headingAnchors('# Title\n## Setup\n```sh\n# not a heading\n```\n## Setup\n### [Link](x.md) **bold**\n## Setup')
    assert.deepEqual([...anchors], ['title', 'setup', 'setup-1', 'link-bold', 'setup-2'])
  })

  test('default: the parser finds inline links and reference definitions, and skips code', () => {
    const links = markdownLinks('see [a](docs/a.md#x) and `[b](no.md)`\n```\n[c](no.md)\n```\n[d]: ./d.md\n![img](i.png) <https://x.org>')
    assert.deepEqual(links.map((l) => l.target), ['docs/a.md#x', './d.md', 'i.png'])
  })

  test('default: the checker reports a missing file, a missing anchor and a link out of the repository', () => {
    assert.equal(brokenTarget('README.md', 'docs/protocol.md#keys-and-derivations'), null)
    assert.match(brokenTarget('README.md', 'docs/nothing-here.md') ?? '', /no file/)
    assert.match(brokenTarget('README.md', 'docs/protocol.md#no-such-section') ?? '', /no heading/)
    assert.match(brokenTarget('docs/protocol.md', '../../elsewhere.md') ?? '', /leaves the repository/)
  })

  for (const file of MARKDOWN) {
    test(`default: every relative link and anchor in ${file} resolves`, () => {
      const broken: string[] = []
      for (const link of markdownLinks(read(file))) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(link.target)) continue // http:, https:, mailto:
        const problem = brokenTarget(file, link.target)
        if (problem) broken.push(`${file}:${link.line}: ${problem}`)
      }
      assert.deepEqual(broken, [])
    })
  }

  test('default: every docs/…md#anchor cited in code, contracts, scripts and prose resolves', () => {
    const cite = /\bdocs\/([\w.-]+\.md)(#[\w-]+)?/g
    const sources = ['src', 'scripts', 'contracts', 'bin', 'test', 'deploy', 'sidecar.Dockerfile', '.ci'].flatMap((dir) =>
      // This file's own examples name files and anchors that do not exist on purpose.
      filesUnder(dir, (p) => !p.endsWith('.md') && !p.endsWith('keyManagerArtifact.ts') && p !== 'test/docs.test.ts'),
    )
    const broken: string[] = []
    let citations = 0
    const check = (file: string, text: string) => {
      for (const [lineIndex, line] of text.split('\n').entries()) {
        for (const match of line.matchAll(cite)) {
          citations++
          const problem = brokenTarget('README.md', `docs/${match[1]}${match[2] ?? ''}`)
          if (problem) broken.push(`${file}:${lineIndex + 1}: ${problem}`)
        }
      }
    }
    for (const file of sources) check(file, read(file))
    // Prose outside code: `docs/protocol.md#section` in a code span is an example, not a citation.
    for (const file of MARKDOWN) check(file, proseText(read(file)))
    assert.deepEqual(broken, [])
    assert.ok(citations > 100, `only ${citations} citations found: the pattern no longer matches how code cites the docs`)
  })
})

describe('docs: cited tests exist', () => {
  test('default: test names are read from node:test and forge sources', () => {
    const names = testNamesIn('x.test.ts', [
      "describe('suite', () => {",
      "  test('default: it works', async () => {})",
      '  test(`error: a ${"template"} is not citable`, () => {})',
      "  it(\"quotes 'inside'\", () => {})",
      "  test(\n    'wrapped \\'name\\'',",
      '  test(`literal template`, () => {})',
      '})',
    ].join('\n'))
    assert.deepEqual([...names].sort(), ["default: it works", 'literal template', "quotes 'inside'", 'suite', "wrapped 'name'"])
    const forge = testNamesIn('X.t.sol', 'function test_Default() public {}\n  function testFuzz_X(uint256 a) external {}\nfunction helper() {}')
    assert.deepEqual([...forge].sort(), ['testFuzz_X', 'test_Default'])
  })

  test('default: citations are read as `file` › "name", linked or not', () => {
    const text = 'shown by [`test/a.test.ts`](../test/a.test.ts) › "error: refused" and `contracts/test/B.t.sol` › "test_X".'
    assert.deepEqual(testCitations(text), [
      { file: 'test/a.test.ts', name: 'error: refused', line: 1 },
      { file: 'contracts/test/B.t.sol', name: 'test_X', line: 1 },
    ])
  })

  const docs = filesUnder('docs', (p) => p.endsWith('.md'))
  for (const file of docs) {
    test(`default: every test cited in ${file} exists in the suite`, () => {
      const missing: string[] = []
      const citations = testCitations(read(file))
      // › in prose is kept for citations (code spans may show the form): one that the pattern does not read (a wrapped name, a missing quote) is an error.
      const arrows = proseText(read(file)).split('›').length - 1
      if (arrows !== citations.length) missing.push(`${file}: ${arrows} › but ${citations.length} citations read as \`file\` › "name"`)
      for (const citation of citations) {
        if (!existsSync(join(ROOT, citation.file))) missing.push(`${file}:${citation.line}: no test file ${citation.file}`)
        else if (!testNamesIn(citation.file, read(citation.file)).has(citation.name))
          missing.push(`${file}:${citation.line}: ${citation.file} has no test named "${citation.name}"`)
      }
      assert.deepEqual(missing, [])
    })
  }
})

describe('docs: the repository speaks for itself', () => {
  // Spelled in two parts so that this file does not match its own search.
  const outside = ['DESIGN' + '.md', 'DESIGN' + ' §', 'TOOLCHAIN' + '.md', 'LIGHT-CLIENT' + '.md', 'STYLE' + '.md', '../' + 'shared', '/work/' + 'shared', '`' + 'shared/']
  // Work tracking and reports that a reader of the repository cannot see.
  const tracking = [/\bissues? #?\d+/i, new RegExp('closing ' + 'report', 'i')]
  test('default: no file points at a specification outside the repository, or at issues and reports', () => {
    const files = ['src', 'scripts', 'contracts', 'bin', 'test', 'deploy', 'docs', 'README.md', 'sidecar.Dockerfile', 'package.json'].flatMap((d) =>
      filesUnder(d),
    )
    assert.ok(files.length > 100)
    const found: string[] = []
    for (const file of files) {
      const text = read(file)
      for (const needle of outside) if (text.includes(needle)) found.push(`${file}: ${needle}`)
      for (const pattern of tracking) if (pattern.test(text)) found.push(`${file}: ${pattern.exec(text)![0]}`)
    }
    assert.deepEqual(found, [])
  })
})

describe('docs: command lines', () => {
  /** Verb → every flag its entry in `keymanager help` names (an entry: a line at two spaces, then its indented lines). */
  function helpFlags(usage: string): Map<string, Set<string>> {
    const entries = new Map<string, Set<string>>()
    let verbs: string[] = []
    for (const line of usage.split('\n')) {
      if (/^ {2}\S/.test(line)) verbs = line.trim().split(/\s+/)[0]!.split('|')
      else if (!/^ {3,}\S/.test(line)) continue
      for (const verb of verbs) {
        const flags = entries.get(verb) ?? new Set<string>()
        for (const flag of line.match(/--[a-z][a-z0-9-]*/g) ?? []) flags.add(flag)
        entries.set(verb, flags)
      }
    }
    return entries
  }

  /** `keymanager VERB …` lines of the fenced code blocks (continuations joined), with their flags. */
  function commandLines(markdown: string): { verb: string; flags: string[]; line: string }[] {
    const out: { verb: string; flags: string[]; line: string }[] = []
    for (const block of markdown.matchAll(/```[a-z]*\n([\s\S]*?)```/g)) {
      for (const line of block[1]!.replace(/\\\n\s*/g, ' ').split('\n')) {
        const m = /^\s*(?:\$ )?keymanager\s+(\S+)(.*)$/.exec(line)
        if (!m) continue
        const rest = m[2]!.split(' #')[0]!
        out.push({ verb: m[1]!, flags: [...rest.matchAll(/(?:^|\s)(--[a-z][a-z0-9-]*)/g)].map((f) => f[1]!), line: line.trim() })
      }
    }
    return out
  }

  test('default: every keymanager command line in the README, deploy/README.md and docs/ uses a verb and flags that keymanager help names', () => {
    const usage = execFileSync(process.execPath, [join(ROOT, 'bin/keymanager.js'), 'help'], { encoding: 'utf8' })
    const known = helpFlags(usage)
    assert.ok(known.get('policy')?.has('--unsigned') && known.get('audit')?.has('--archive'), 'the help text parses')
    const lines = [...MARKDOWN, 'deploy/README.md'].flatMap((file) => commandLines(read(file)).map((c) => ({ ...c, file })))
    assert.ok(lines.length > 30, `${lines.length} command lines`)
    const unknown: string[] = []
    for (const { file, verb, flags, line } of lines) {
      const allowed = known.get(verb)
      if (!allowed) unknown.push(`${file}: unknown verb '${verb}': ${line}`)
      else for (const flag of flags) if (!allowed.has(flag)) unknown.push(`${file}: keymanager ${verb} has no ${flag}: ${line}`)
    }
    assert.deepEqual(unknown, [])
  })

  test('error: a flag or a verb the help does not name is caught', () => {
    const known = helpFlags('  audit --rpc URL [--archive DIR]\n       [--json]\n  status|bootstrap ADDR --node HOST_URL\n')
    assert.deepEqual([...known.get('audit')!].sort(), ['--archive', '--json', '--rpc'])
    assert.deepEqual([...known.get('bootstrap')!], ['--node'])
    const found = commandLines('```sh\nkeymanager audit --rpc URL \\\n  --archiv DIR   # typo\nkeymanager audti --rpc URL\n```\n')
    assert.deepEqual(found.map((c) => [c.verb, c.flags]), [['audit', ['--rpc', '--archiv']], ['audti', ['--rpc']]])
    assert.equal(known.get('audit')!.has('--archiv'), false)
    assert.equal(known.has('audti'), false)
  })
})
