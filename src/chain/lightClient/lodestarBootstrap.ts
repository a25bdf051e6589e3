// The bootstrap check (header root = trusted root, committee branch, execution branch) is the library's own; its
// package exports it only through the `Lightclient` class we avoid, so it is loaded from the pinned file directly. The
// production bundle replaces this module with a static import of that same file (scripts/build.ts
// `lodestarBootstrapFile`), so that the check is bundled with the one copy of lodestar's types it compares against.
import type { BeaconConfig } from '@lodestar/config'
import type { LightClientBootstrap } from '@lodestar/types'

export const { validateLightClientBootstrap } = (await import(new URL('./spec/validateLightClientBootstrap.js', import.meta.resolve('@lodestar/light-client')).href)) as {
  validateLightClientBootstrap(config: BeaconConfig, trustedBlockRoot: Uint8Array, bootstrap: LightClientBootstrap): void
}
