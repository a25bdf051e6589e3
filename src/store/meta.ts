import type { Db } from './database.ts'

/** Small key/value settings of the node (its state, the chain it is bound to). */
export function createMetaStore(db: Db) {
  const get = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?')
  const put = db.prepare<[string, string]>(
    'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
  )
  return {
    get(key: string): string | undefined {
      return get.get(key)?.value
    },
    put(key: string, value: string): void {
      put.run(key, value)
    },
  }
}
export type MetaStore = ReturnType<typeof createMetaStore>
