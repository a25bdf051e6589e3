// The devnet entry as one bundled ES module (esbuild, the compiler tsx itself runs on), for the footprint bench to
// compare a sidecar's start without tsx's loader. Dependencies stay external (resolved from node_modules as usual);
// the bundle sits two levels under the repository root so that the paths our modules take relative to their own
// location (package.json, native addons) resolve as they do from src/.
import { build } from 'esbuild'
import { join } from 'node:path'

export async function bundleDevnetEntry(root: string): Promise<string> {
  const outfile = join(root, 'dist', 'bench', 'keymanager-devnet.mjs')
  await build({
    entryPoints: [join(root, 'src', 'devnet', 'main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'error',
  })
  return outfile
}
