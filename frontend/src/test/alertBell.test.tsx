import { screen, waitFor } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { AlertBell, unseenCount, type AlertEvent } from '../components/AlertBell'
import { jsonResponse, renderWithClient } from './utils'

const alerts: AlertEvent[] = [
  { event: 'risk_event', key: 'risk:kill', title: 'Risk kill_switch: kill_switch', body: 'pulled by user', level: 'critical', time: 2_000 },
  { event: 'cycle_closed', key: 'closed:cy-1', title: 'Cycle completed: BTCUSDT ema_cross', body: 'PnL 12.5 (0.5%)', level: 'info', time: 1_000 },
]

describe('unseenCount', () => {
  it('counts alerts newer than the last one seen', () => {
    expect(unseenCount(alerts, 0)).toBe(2)
    expect(unseenCount(alerts, 1_000)).toBe(1)
    expect(unseenCount(alerts, 2_000)).toBe(0)
  })
})

describe('AlertBell', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('shows how many alerts are new, lists them, and clears the count once opened', async () => {
    const fetchMock = vi.fn(async (url: string) =>
      url.startsWith('/api/notify/events') ? jsonResponse(alerts) : jsonResponse({ detail: 'not found' }, 404))
    vi.stubGlobal('fetch', fetchMock)
    renderWithClient(<AlertBell />)
    const button = await screen.findByRole('button', { name: 'alerts (2 new)' })
    await userEvent.click(button)
    const list = screen.getByRole('dialog', { name: 'recent alerts' })
    expect(list).toHaveTextContent('Risk kill_switch: kill_switch')
    expect(list).toHaveTextContent('PnL 12.5 (0.5%)')
    await waitFor(() => expect(screen.getByRole('button', { name: 'alerts (0 new)' })).toBeInTheDocument())
  })

  it('is absent when no notify service answers', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => jsonResponse({ detail: 'no such API route' }, 404)))
    renderWithClient(<AlertBell />)
    await waitFor(() => expect(screen.queryByTestId('alert-bell')).not.toBeInTheDocument())
  })
})
