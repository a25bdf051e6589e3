#!/usr/bin/env node
// The devnet entry (docs/protocol.md#measured-settings): the only way to run a sidecar in devnet mode (simulated TEE,
// devnet root CA, dev-file seal, pod names from a header, test hooks). Production images do not contain it.
import { register } from 'tsx/esm/api'
register()
await import('../src/devnet/main.ts')
