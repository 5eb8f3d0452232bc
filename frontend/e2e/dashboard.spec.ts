import { expect, test } from '@playwright/test'
import { setToken, shot, TOKEN, waitLive } from './helpers'

test('a new trade appears without reload (pushed over the WebSocket)', async ({ page }) => {
  await page.goto('/')
  await waitLive(page)
  // first test after the platform starts: the replay is young, the first trades are still to come
  const rows = page.getByTestId('recent-cycles').locator('tbody tr')
  await expect(page.getByTestId('recent-cycles').getByText(/No trade yet|BTCUSDT|ETHUSDT/).first()).toBeVisible()
  const before = await rows.evaluateAll((trs) => trs.map((t) => t.getAttribute('data-row')))
  await page.evaluate(() => { (window as unknown as { __noReload: boolean }).__noReload = true })
  await expect.poll(async () => {
    const now = await rows.evaluateAll((trs) => trs.map((t) => t.getAttribute('data-row')))
    return now.some((id) => !before.includes(id))
  }, { timeout: 45_000 }).toBe(true)
  expect(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload)).toBe(true)
})

test('overview fills from the running platform', async ({ page }) => {
  await page.goto('/')
  await waitLive(page)
  await expect(page.getByTestId('health-card').getByText('trader')).toBeVisible()
  // the demo replays candles fast: closed cycles (and so a PnL) appear within seconds
  await expect(page.getByTestId('recent-cycles').locator('tbody tr').first()).toBeVisible({ timeout: 30_000 })
  await expect(page.getByTestId('stat-pnl-total')).not.toContainText('—', { timeout: 30_000 })
  await expect(page.getByTestId('equity-curve')).toBeVisible({ timeout: 30_000 })
  await shot(page, 'overview')
})

test('a mutating request without the token is refused (401)', async ({ page, request }) => {
  const res = await request.post('/api/trader/config/pause')
  expect(res.status()).toBe(401)
  await page.goto('/risk')
  await expect(page.getByTestId('trader-state')).toBeVisible()
  await page.getByRole('button', { name: 'Pause new entries' }).click()
  await expect(page.getByRole('alert').filter({ hasText: '401' })).toBeVisible()
  const health = await (await request.get('/api/trader/health')).json()
  expect(health.paused).toBe(false)
})

test('pause and resume trading', async ({ page, request }) => {
  await page.goto('/risk')
  await setToken(page)
  const state = page.getByTestId('trader-state')
  await expect(state).toHaveText('RUNNING')
  await page.getByRole('button', { name: 'Pause new entries' }).click()
  await expect(state).toHaveText('PAUSED')
  expect((await (await request.get('/api/trader/health')).json()).paused).toBe(true)
  await expect(page.getByTestId('status-strip')).toContainText('TRADING PAUSED')
  await page.getByRole('button', { name: 'Resume' }).click()
  await expect(state).toHaveText('RUNNING')
  expect((await (await request.get('/api/trader/health')).json()).paused).toBe(false)
})

test('cycle detail shows orders and fills', async ({ page }) => {
  await page.goto('/cycles')
  const first = page.getByTestId('cycles-table').locator('tbody tr').first()
  await expect(first).toBeVisible({ timeout: 30_000 })
  await first.click()
  const detail = page.getByTestId('cycle-detail')
  await expect(detail).toBeVisible()
  await expect(detail.getByText('FILLED').first()).toBeVisible()
  await shot(page, 'cycles')
})

test('signals feed shows the coordinator decision', async ({ page }) => {
  await page.goto('/signals')
  const table = page.getByTestId('signals-table')
  await expect(table.locator('tbody tr').first()).toBeVisible({ timeout: 30_000 })
  // each signal shows the coordinator's verdict (with its reason) or "pending" while the coordinator catches up
  const decisions = await table.locator('tbody tr td:nth-child(8)').allInnerTexts()
  expect(decisions.length).toBeGreaterThan(0)
  for (const d of decisions) expect(d.trim()).toMatch(/^(accepted|rejected|skipped|pending|n\/a)$/i)
  await shot(page, 'signals')
})

test('system page: health, bus lag and log search', async ({ page }) => {
  await page.goto('/system')
  await expect(page.getByTestId('components').getByText('database')).toBeVisible()
  await expect(page.getByTestId('bus-lag')).not.toContainText('—')
  await page.getByLabel('search logs').fill('host started')
  await page.getByRole('button', { name: 'Search' }).click()
  await expect(page.getByTestId('logs').getByText('host started').first()).toBeVisible()
  await shot(page, 'system')
})

test('market chart draws live candles with overlays', async ({ page }) => {
  await page.goto('/market')
  await expect(page.getByTestId('candle-chart')).toBeVisible({ timeout: 30_000 })
  await expect(page.getByTestId('candle-chart').locator('canvas').first()).toBeVisible()
  await page.waitForTimeout(3000) // let a few more candles stream in for the screenshot
  await shot(page, 'market')
})

test('orders, strategies, risk and universe pages render', async ({ page }) => {
  for (const [path, name] of [['/orders', 'orders'], ['/strategies', 'strategies'], ['/risk', 'risk'], ['/universe', 'universe']] as const) {
    await page.goto(path)
    await expect(page.getByTestId(`page-${name}`)).toBeVisible()
    await expect(page.getByText('Loading…')).toHaveCount(0)
    await shot(page, name)
  }
})

test('phone layout: nav bar and overview', async ({ browser }) => {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true })
  const page = await ctx.newPage()
  await page.goto('/')
  await expect(page.getByRole('navigation', { name: 'Main mobile' })).toBeVisible()
  await expect(page.getByTestId('recent-cycles').locator('tbody tr').first()).toBeVisible({ timeout: 30_000 })
  await shot(page, 'overview-phone')
  await ctx.close()
})

test('token is sent as a bearer header on mutations', async ({ page }) => {
  await page.goto('/risk')
  await setToken(page, TOKEN)
  await expect(page.getByTestId('trader-state')).toBeVisible()
  const req = page.waitForRequest((r) => r.url().includes('/api/trader/config/') && r.method() === 'POST')
  // whichever control is enabled right now (the risk manager may have paused trading on its own)
  const pause = page.getByRole('button', { name: 'Pause new entries' })
  if (await pause.isEnabled()) await pause.click()
  else await page.getByRole('button', { name: 'Resume' }).click()
  const sent = await req
  expect(sent.headers()['authorization']).toBe(`Bearer ${TOKEN}`)
  expect((await sent.response())?.status()).toBe(200)
  if (sent.url().endsWith('/pause')) await page.getByRole('button', { name: 'Resume' }).click()
})

test('first load is under 1 s on localhost', async ({ page }) => {
  const t0 = Date.now()
  await page.goto('/')
  await expect(page.getByTestId('stat-pnl-total')).not.toContainText('—')
  const dataVisible = Date.now() - t0
  const nav = await page.evaluate(() => {
    const n = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming
    const fcp = performance.getEntriesByName('first-contentful-paint')[0]
    return { domContentLoaded: n.domContentLoadedEventEnd, load: n.loadEventEnd, fcp: fcp?.startTime ?? null }
  })
  console.log(`first load: DOMContentLoaded ${nav.domContentLoaded.toFixed(0)} ms, load ${nav.load.toFixed(0)} ms, ` +
    `FCP ${nav.fcp?.toFixed(0)} ms, data on screen ${dataVisible} ms`)
  expect(nav.load).toBeLessThan(1000) // the app itself; data time depends on how busy the demo's API is
  expect(dataVisible).toBeLessThan(3000)
})
