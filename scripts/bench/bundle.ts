// The devnet entry (src/devnet/main.ts) bundled as the production entry is (scripts/build.ts `bundleOptions`: pure
// JavaScript dependencies bundled and minified, native addons and the light client's family external), for the footprint
// bench: a devnet node runs the simulated TEE, which the production entry refuses, so this is how a devnet node shows the
// production bundle's start and memory. It sits in dist/ beside the production bundle, so the
// paths our modules take relative to their own location (package.json, measured.json) resolve as they do from src/.
import { build } from 'esbuild'
import { rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { bundleOptions } from '../build.ts'

/** Bundles the devnet entry into `<root>/dist` (entry and chunks named `bench-*`); returns the entry and a cleanup. */
export async function bundleDevnetEntry(root: string): Promise<{ entry: string; remove(): void }> {
  const outdir = join(root, 'dist')
  const result = await build({
    ...bundleOptions(root),
    entryPoints: { 'bench-keymanager-devnet': join(root, 'src', 'devnet', 'main.ts') },
    outdir,
    chunkNames: 'bench-chunk-[hash]',
    metafile: true,
  })
  const files = Object.keys(result.metafile.outputs).map((output) => resolve(root, output))
  return { entry: join(outdir, 'bench-keymanager-devnet.js'), remove: () => files.forEach((file) => rmSync(file, { force: true })) }
}
