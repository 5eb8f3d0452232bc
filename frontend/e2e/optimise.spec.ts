/**
 * The Optimise page against a running `roottrading demo`: a small walk-forward study is run with the real
 * command (`roottrading optimize`, bundled BTCUSDT 1h candles, the demo's own database), the page lists it
 * with its progress and walk-forward table, and Apply shows the diff, asks, and writes the chosen
 * parameters into the running platform (read back through the analyzer's API).
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect, test } from '@playwright/test'
import { setToken, shot, TOKEN } from './helpers'

const root = fileURLToPath(new URL('../..', import.meta.url))
const python = process.env.E2E_PYTHON ?? `${root}.venv/bin/python`

function runStudy(name: string): void {
  const dataDir = process.env.E2E_DATA_DIR ?? ''
  execFileSync(python, [
    '-m', 'roottrading', 'optimize', '--strategy', 'ema_cross', '--symbols', 'BTCUSDT', '--interval', '1h',
    '--data', 'bundled', '--start', '2018-05-01', '--end', '2018-05-06', '--stake', '100', '--trials', '4',
    '--walk-forward', 'train=2d,test=1d,step=1d', '--space', 'fast=3:8', '--space', 'slow=10:20',
    '--objective', 'profit', '--min-trades', '0', '--jobs', '1', '--no-verify', '--fallback', 'skip',
    '--sampler', 'random', '--seed', '3', '--study-name', name,
    '--set', 'risk.strategy_loss_streak.enabled=false', '--set', 'risk.daily_loss_limit.enabled=false',
  ], {
    cwd: root,
    env: { ...process.env, DATA_DIR: dataDir, DATABASE_URL: `sqlite+aiosqlite:///${dataDir}/e2e.db`, API_TOKEN: TOKEN },
    stdio: 'pipe',
    timeout: 240_000,
  })
}

test('a study run by the command shows on the Optimise page and Apply writes its parameters', async ({ page, request }) => {
  test.setTimeout(300_000)
  runStudy('e2e-study')
  await page.goto('/')
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Optimise' }).click()
  await expect(page.getByTestId('page-optimise')).toBeVisible()
  await setToken(page)
  const row = page.getByTestId('studies-table').getByText('e2e-study')
  await expect(row).toBeVisible()
  await expect(page.getByTestId('studies-table').getByText('12 / 12 trials')).toBeVisible()
  await row.click()
  const wf = page.getByTestId('walk-forward-table')
  await expect(wf.locator('tbody tr')).toHaveCount(3)
  await expect(page.getByTestId('study-result')).toContainText('Out-of-sample')

  const study = await (await request.get('/api/backtest/optimize/studies/e2e-study')).json() as { result: { chosen_params: Record<string, unknown> } }
  const chosen = study.result.chosen_params
  await page.getByRole('button', { name: 'Apply…' }).click()
  const diff = page.getByTestId('apply-diff')
  await expect(diff).toContainText(`ema_cross BTCUSDT fast:`)
  await expect(diff).toContainText(`→ ${String(chosen.fast)}`)
  await shot(page, 'optimise-diff')
  await page.getByRole('button', { name: 'Confirm apply' }).click()
  await expect(page.getByRole('status')).toContainText('Applied to ema_cross on 1 symbol(s)')
  const rows = await (await request.get('/api/analyzer/strategies?symbol=BTCUSDT')).json() as { name: string; params: Record<string, { value: unknown }> }[]
  const ema = rows.find((r) => r.name === 'ema_cross')
  for (const [k, v] of Object.entries(chosen)) expect(ema?.params[k].value).toBe(v)
})
