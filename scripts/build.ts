// `npm run build`: the production entry (src/main.ts) as one ES module, dist/keymanager.js, run with plain `node`
// (the image's entry, sidecar.Dockerfile; docs/performance.md#footprint). No tsx loader at run time, and one file to
// parse instead of about 900 modules (viem alone is 350), which is most of a restart's time.
//
// - The pure JavaScript dependencies (viem, hono, zod, noble, pino, prom-client, dcap-qvl, the light client's
//   @lodestar/* and @chainsafe/ssz family, …) are bundled, minified with their names kept (error classes and logs keep
//   them). Left external, resolved from node_modules at run time (`EXTERNAL_PACKAGES`): the native addons
//   (better-sqlite3, c-kzg, @chainsafe/blst with @chainsafe/bls over it, @chainsafe/hashtree, bigint-buffer), which load
//   their binaries relative to their own files. The light client loads one file of the pinned @lodestar/light-client
//   that the package does not export (src/chain/lightClient/lodestarBootstrap.ts); the bundle imports that same file
//   statically (`lodestarBootstrapFile`), so there is one copy of lodestar's types, the bundled one. Bundling the
//   light client's ~270 files, instead of resolving them at start, cut a restart's CPU time by about a sixth
//   (docs/performance.md#footprint).
// - The bundle (the entry and its chunks, all in dist/) sits one level under the package root, as src/*.ts do, so the
//   paths our modules take relative to their own location (measured.json, package.json: src/config.ts `PACKAGE_ROOT`)
//   resolve to the same files.
// - The devnet stays out (docs/protocol.md#measured-settings): nothing under src/devnet/ goes into the bundle; the
//   `devnet` verb of the production entry then says the devnet is not part of this build. The build fails if any
//   devnet, test or tsx module is among the bundle's inputs.
//
// `--prune` (the image's builder stage) then deletes from node_modules every package the bundle does not load: what
// stays is the closure of `EXTERNAL_PACKAGES` under their dependencies.
import { build, type BuildOptions, type Plugin } from 'esbuild'
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'

/** Packages the bundle imports at run time from node_modules (see above). */
export const EXTERNAL_PACKAGES = ['better-sqlite3', 'c-kzg', 'bigint-buffer', '@chainsafe/blst', '@chainsafe/bls', '@chainsafe/bls/*', '@chainsafe/hashtree', '@chainsafe/hashtree-*']

/**
 * How production runs the bundle (sidecar.Dockerfile's ENTRYPOINT and ENV; the footprint bench starts it the same way):
 * - `--max-semi-space-size=4`: V8's young generation grows to 2 × 16 MB under the allocation bursts of judging and
 *   answering and keeps it; 2 × 4 MB costs a few more scavenges of short-lived objects and about 25 MB less RSS.
 * - `--max-old-space-size=128`: a help round leaves tens of MB of garbage (blobs as hex, collateral, certificates), and
 *   V8 lets the old generation grow to about four times the live set before it collects, to 120 MB and more here. The
 *   live set of a helping node is 30-40 MB (heap snapshots over 600 decisions, flat); a 128 MB limit makes V8 collect
 *   sooner and leaves three times the live set. Past it the process exits (V8's out-of-memory), and restarts from its
 *   sealed state like after any crash.
 * - `MALLOC_ARENA_MAX=2`: glibc gives each thread that allocates (libuv's pool, the native addons) an arena of its own,
 *   and their fragments stay resident; two arenas keep a sidecar's native memory near what it uses.
 * Measured on a one-node devnet (docs/performance.md#footprint): after 200 decisions, RSS 181 → 141 MB with the first and
 * the last; after 250, 215 → 138 MB (peak 237 → 149 MB) with all three. A restart's CPU time went 1.43 → 1.27 s.
 */
export const PRODUCTION_RUNTIME = { nodeFlags: ['--max-semi-space-size=4', '--max-old-space-size=128'], env: { MALLOC_ARENA_MAX: '2' } } as const

/** src/chain/lightClient/lodestarBootstrap.ts becomes a static import of the file it loads by path, bundled like the rest. */
function lodestarBootstrapFile(root: string): Plugin {
  return {
    name: 'lodestar-bootstrap-file',
    setup(b) {
      b.onResolve({ filter: /\/lodestarBootstrap\.ts$/ }, (args) => ({ path: resolve(args.resolveDir, args.path), namespace: 'lodestar-bootstrap' }))
      b.onLoad({ filter: /.*/, namespace: 'lodestar-bootstrap' }, () => ({
        contents: `export { validateLightClientBootstrap } from ${JSON.stringify(join(root, 'node_modules', '@lodestar', 'light-client', 'lib', 'spec', 'validateLightClientBootstrap.js'))}`,
        loader: 'js',
        resolveDir: root,
      }))
    },
  }
}

/** Every import that resolves into src/devnet/ becomes a module that refuses, as a missing src/devnet does. */
function leaveOutDevnet(srcDir: string): Plugin {
  const devnetDir = join(srcDir, 'devnet') + sep
  return {
    name: 'leave-out-devnet',
    setup(b) {
      b.onResolve({ filter: /devnet\// }, (args) => {
        if (args.kind === 'entry-point' || !args.path.startsWith('.')) return undefined
        const target = resolve(args.resolveDir, args.path)
        if (!target.startsWith(devnetDir)) return undefined
        return { path: relative(srcDir, target), namespace: 'devnet-left-out' }
      })
      b.onLoad({ filter: /.*/, namespace: 'devnet-left-out' }, (args) => ({
        contents: `throw Object.assign(new Error(${JSON.stringify(`${args.path} is not part of this build (production builds leave out src/devnet)`)}), { code: 'ERR_MODULE_NOT_FOUND' })`,
        loader: 'js',
      }))
    },
  }
}

/**
 * Bundles the production entry of the repository at `root` into `outdir` (`<root>/dist`; another package root's `dist`
 * lays out an image elsewhere): `keymanager.js` and its `chunk-*.js`. Returns the entry's path and the files it holds.
 */
export async function buildProductionBundle(root: string, outdir = join(root, 'dist')): Promise<{ outfile: string; inputs: string[] }> {
  const srcDir = join(root, 'src')
  if (existsSync(outdir)) for (const name of readdirSync(outdir)) if (/^chunk-.*\.js$/.test(name)) rmSync(join(outdir, name))
  const result = await build({
    ...bundleOptions(root),
    entryPoints: { keymanager: join(srcDir, 'main.ts') },
    outdir,
    chunkNames: 'chunk-[hash]',
    plugins: [leaveOutDevnet(srcDir), lodestarBootstrapFile(root)],
    metafile: true,
  })
  const outfile = join(outdir, 'keymanager.js')
  const inputs = Object.keys(result.metafile.inputs).sort()
  const refused = inputs.filter((input) => /^src\/devnet\/|\.test\.ts$|^test\/|(^|\/)node_modules\/tsx\//.test(input))
  if (refused.length > 0) throw new Error(`the production bundle must not contain ${refused.join(', ')}`)
  return { outfile, inputs }
}

/** How the production entry is bundled; the footprint bench bundles the devnet entry the same way (scripts/bench/bundle.ts). */
export function bundleOptions(root: string): BuildOptions {
  return {
    bundle: true,
    platform: 'node',
    format: 'esm',
    // What a verb imports dynamically is a chunk of its own, loaded when it runs: `serve` loads the light client's
    // modules after it listens (src/cli/serve.ts), other verbs never load the node.
    splitting: true,
    target: 'node20',
    external: EXTERNAL_PACKAGES,
    plugins: [lodestarBootstrapFile(root)],
    minify: true,
    keepNames: true,
    legalComments: 'none',
    tsconfig: join(root, 'tsconfig.json'),
    logLevel: 'error',
    // Bundled CommonJS dependencies call require(); an ES module has none of its own.
    banner: {
      js: [
        '// keymanager, bundled by scripts/build.ts.',
        "import { createRequire as __keymanagerCreateRequire } from 'node:module'; const require = __keymanagerCreateRequire(import.meta.url);",
      ].join('\n'),
    },
  }
}

/** The package directory `name` resolves to from `fromDir`, as node looks it up (nearest node_modules first). */
function packageDir(name: string, fromDir: string, root: string): string | undefined {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name)
    if (existsSync(join(candidate, 'package.json'))) return candidate
    if (dir === root || dir === dirname(dir)) return undefined
  }
}

/** Deletes from `<root>/node_modules` every package outside the closure of `EXTERNAL_PACKAGES`; returns what it kept. */
export function pruneToExternals(root: string): string[] {
  const modules = join(root, 'node_modules')
  const topLevel = readdirSync(modules).flatMap((entry) =>
    entry.startsWith('@') ? readdirSync(join(modules, entry)).map((name) => `${entry}/${name}`) : entry.startsWith('.') ? [] : [entry],
  )
  const matches = (name: string) => EXTERNAL_PACKAGES.some((p) => (p.endsWith('/*') ? name.startsWith(p.slice(0, -1)) : name === p))
  const keep = new Set<string>()
  const queue = topLevel.filter(matches).map((name) => join(modules, name))
  while (queue.length > 0) {
    const dir = queue.pop()!
    if (keep.has(dir)) continue
    keep.add(dir)
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.peerDependencies })) {
      const found = packageDir(dep, dir, root)
      if (found) queue.push(found)
    }
  }
  const kept = topLevel.filter((name) => keep.has(join(modules, name)))
  for (const name of topLevel) if (!keep.has(join(modules, name))) rmSync(join(modules, name), { recursive: true, force: true })
  rmSync(join(modules, '.bin'), { recursive: true, force: true })
  // A native addon needs its build/Release/*.node at run time, not node-gyp's object files beside it.
  for (const dir of keep) {
    const build = join(dir, 'build')
    if (!existsSync(join(dir, 'binding.gyp')) || !existsSync(build)) continue
    for (const entry of readdirSync(build)) if (entry !== 'Release') rmSync(join(build, entry), { recursive: true, force: true })
    const release = join(build, 'Release')
    if (existsSync(release)) for (const entry of readdirSync(release)) if (!entry.endsWith('.node')) rmSync(join(release, entry), { recursive: true, force: true })
  }
  return kept
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = join(import.meta.dirname, '..')
  const { outfile, inputs } = await buildProductionBundle(root)
  const packages = new Set(inputs.flatMap((i) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(i)?.[1] ?? []))
  process.stdout.write(
    `${relative(root, outfile)}: ${inputs.filter((i) => i.startsWith('src/')).length} modules of src/ (src/devnet left out), ${packages.size} packages bundled, ${EXTERNAL_PACKAGES.join(' ')} external\n`,
  )
  if (process.argv.includes('--prune')) process.stdout.write(`node_modules pruned to ${pruneToExternals(root).length} packages\n`)
}
