import { defineConfig, devices } from '@playwright/test'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * e2e against a real `roottrading demo`: Playwright starts the platform itself (fresh temp data dir and
 * SQLite file each run, known API token) and the Python server serves the built dashboard
 * (roottrading/web, so run `npm run build` first; `make test` does).
 */
export const PORT = Number(process.env.E2E_PORT ?? 8765) // E2E_PORT: another port when 8765 is taken
export const API_TOKEN = 'e2e-token'
const dataDir = process.env.E2E_DATA_DIR ?? mkdtempSync(join(tmpdir(), 'rt-e2e-'))
process.env.E2E_DATA_DIR = dataDir // the config is evaluated again in workers: keep one dir

export default defineConfig({
  testDir: './e2e',
  globalSetup: './e2e/global-setup.ts',
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1, // one shared platform: pause/resume must not race other tests
  retries: 0,
  reporter: [['list']],
  outputDir: 'test-results/artifacts',
  use: {
    baseURL: `http://127.0.0.1:${PORT}`,
    trace: 'retain-on-failure',
    viewport: { width: 1440, height: 900 },
    colorScheme: 'dark',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    },
  },
  projects: [{ name: 'chromium', use: { ...devices['Desktop Chrome'], viewport: { width: 1440, height: 900 } } }],
  webServer: {
    // a slower replay than the default 20 candles/s, so the first trades land after the dashboard is open
    command: `.venv/bin/roottrading demo --port ${PORT} --speed 6`,
    cwd: '..',
    url: `http://127.0.0.1:${PORT}/api/health`,
    // E2E_REUSE_SERVER=1: test a platform you started yourself on the same port (same token)
    reuseExistingServer: !!process.env.E2E_REUSE_SERVER,
    timeout: 90_000,
    stdout: 'ignore',
    stderr: 'ignore',
    env: {
      DATA_DIR: dataDir,
      DATABASE_URL: `sqlite+aiosqlite:///${dataDir}/e2e.db`,
      ROOTTRADING_RULES: fileURLToPath(new URL('./e2e/rules.yaml', import.meta.url)),
      // the demo's own entries take 200 USDT each, so the manual LIMIT order test always finds funds
      COORDINATOR_STAKE_QUOTE: '200',
      API_TOKEN,
    },
  },
})
