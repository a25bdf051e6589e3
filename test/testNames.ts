// The names of the tests a source file declares, read from its text: node:test `test`/`it`/`describe` with a literal
// name (a template with `${…}` is generated, so nothing can cite it), and forge `function test…`/`invariant…`.
// Reading the source rather than running the suite keeps the check fast and independent of anvil or a devnet.

const NODE_TEST = /\b(?:test|it|describe|suite)(?:\.(?:only|skip|todo))?\(\s*('(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\$]|\\.|\$(?!\{))*`)/g
const FORGE_TEST = /\bfunction\s+((?:test|invariant)\w*)\s*\(/g

export function testNamesIn(file: string, source: string): Set<string> {
  const names = new Set<string>()
  if (file.endsWith('.sol')) {
    for (const match of source.matchAll(FORGE_TEST)) names.add(match[1]!)
    return names
  }
  for (const match of source.matchAll(NODE_TEST)) names.add(match[1]!.slice(1, -1).replace(/\\(.)/g, '$1'))
  return names
}
