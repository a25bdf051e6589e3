// Runs every TypeScript test with node's test runner. Node 20 does not expand globs after --test, so the files are
// listed here: unit tests beside the code in src/, then cross-module and end-to-end tests in test/.
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..')
const testsUnder = (dir: string) =>
  readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.test.ts') && !file.split('/').includes('node_modules'))
    .map((file) => join(dir, file))
    .sort()

const files = [...testsUnder('src'), ...testsUnder('test')]
const args = ['--import', 'tsx', '--test', '--test-concurrency=1', ...process.argv.slice(2), ...files]
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' })
process.exit(result.status ?? 1)
