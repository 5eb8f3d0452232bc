import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** The server serves the built app; fail with a clear message instead of testing the "not built" page. */
export default function globalSetup(): void {
  const index = fileURLToPath(new URL('../../roottrading/web/index.html', import.meta.url))
  if (!existsSync(index)) throw new Error(`dashboard not built (${index} missing): run \`npm run build\` first`)
}
