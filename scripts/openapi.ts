// Writes docs/openapi/pod.json and docs/openapi/host.json from src/app/openapi.ts (src/app/openapi.test.ts checks that
// the committed files are current).
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { hostOpenApiDocument, podOpenApiDocument } from '../src/app/openapi.ts'

const dir = join(import.meta.dirname, '..', 'docs', 'openapi')
for (const [name, doc] of [['pod', podOpenApiDocument()], ['host', hostOpenApiDocument()]] as const) {
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(doc, null, 2) + '\n')
  process.stdout.write(`wrote docs/openapi/${name}.json\n`)
}
