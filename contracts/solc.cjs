// solc command-line shim over npm `solc` (solcjs): answers the two calls forge makes,
// `solc --version` and `solc --standard-json [--base-path P] [--include-path P]... [--allow-paths ...]`.
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const solc = require('solc')

const args = process.argv.slice(2)

if (args.includes('--version')) {
  // forge reads the semver after "Version:", as printed by the native binary.
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`)
  process.exit(0)
}

if (!args.includes('--standard-json')) {
  process.stderr.write('solc shim: only --version and --standard-json are supported\n')
  process.exit(2)
}

const roots = []
for (let i = 0; i < args.length; i++) {
  if ((args[i] === '--base-path' || args[i] === '--include-path') && args[i + 1] !== undefined) {
    roots.push(path.resolve(args[++i]))
  }
}
roots.push(process.cwd())

/** Import callback: source unit names are resolved against --base-path, each --include-path, then the cwd. */
function findImports(unitName) {
  const candidates = path.isAbsolute(unitName) ? [unitName] : roots.map((root) => path.join(root, unitName))
  for (const candidate of candidates) {
    try {
      return { contents: fs.readFileSync(candidate, 'utf8') }
    } catch {
      // try the next root
    }
  }
  return { error: `File not found: ${unitName}` }
}

const input = fs.readFileSync(0, 'utf8')
process.stdout.write(solc.compile(input, { import: findImports }))
