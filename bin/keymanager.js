#!/usr/bin/env node
// Entry point for `npx keymanager …` in a clone: TypeScript runs through tsx's loader, so there is no build step.
import { register } from 'tsx/esm/api'
register()
await import('../src/main.ts')
