import { fireEvent, screen, waitFor } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { setToken } from '../api/client'
import { OrderForm } from '../components/OrderForm'
import { onStep, parseFilters, validateOrder, type OrderDraft } from '../lib/filters'
import { jsonResponse, renderWithClient } from './utils'

const binanceInfo = {
  symbol: 'BTCUSDT',
  filters: [
    { filterType: 'PRICE_FILTER', minPrice: '0.01', maxPrice: '1000000.00', tickSize: '0.01' },
    { filterType: 'LOT_SIZE', minQty: '0.00001', maxQty: '9000.00000', stepSize: '0.00001' },
    { filterType: 'NOTIONAL', minNotional: '5.00' },
  ],
}
const f = parseFilters(binanceInfo)
const draft = (d: Partial<OrderDraft>): OrderDraft => ({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: '', quote_quantity: '', price: '', ...d })

describe('order validation against symbol filters', () => {
  it('parses Binance-style and flat filters alike', () => {
    expect(f).toMatchObject({ minQty: 0.00001, stepSize: 0.00001, tickSize: 0.01, minNotional: 5 })
    expect(parseFilters({ symbol: 'X', min_qty: '0.1', step_size: '0.1', tick_size: '0.5', min_notional: '10' }))
      .toMatchObject({ minQty: 0.1, stepSize: 0.1, tickSize: 0.5, minNotional: 10 })
  })

  it('checks step and tick sizes without float error', () => {
    expect(onStep(0.3, 0.1)).toBe(true)
    expect(onStep(0.00123, 0.00001)).toBe(true)
    expect(onStep(0.000015, 0.00001)).toBe(false)
    expect(onStep(17000.015, 0.01)).toBe(false)
  })

  it('accepts a valid LIMIT order and reports each broken filter', () => {
    expect(validateOrder(draft({ quantity: '0.001', price: '17000.01' }), f)).toEqual({})
    expect(validateOrder(draft({ quantity: '0.000015', price: '17000' }), f).quantity).toMatch(/step size/)
    expect(validateOrder(draft({ quantity: '0.001', price: '17000.015' }), f).price).toMatch(/tick size/)
    expect(validateOrder(draft({ quantity: '0.0001', price: '1000' }), f).quantity).toMatch(/minimum notional/)
    expect(validateOrder(draft({ quantity: '0.000001', price: '17000' }), f).quantity).toMatch(/minimum quantity/)
    expect(validateOrder(draft({ price: '17000' }), f).quantity).toMatch(/quantity or a quote/)
    expect(validateOrder(draft({ quantity: '1' }), f).price).toMatch(/needs a price/)
  })

  it('checks a MARKET quote amount against min notional', () => {
    expect(validateOrder(draft({ type: 'MARKET', quote_quantity: '4' }), f).quote_quantity).toMatch(/minimum notional/)
    expect(validateOrder(draft({ type: 'MARKET', quote_quantity: '50' }), f)).toEqual({})
  })
})

describe('OrderForm', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('blocks an order that breaks the filters and sends a valid one with the token', async () => {
    const fetchMock = vi.fn(async () => jsonResponse({ client_order_id: 'rt1', status: 'NEW' }))
    vi.stubGlobal('fetch', fetchMock)
    setToken('secret')
    renderWithClient(<OrderForm symbols={['BTCUSDT']} filters={{ BTCUSDT: f }} />)
    const user = userEvent.setup()
    await user.selectOptions(screen.getByLabelText('Type'), 'LIMIT')
    await user.type(screen.getByLabelText('Quantity'), '0.000015')
    await user.type(screen.getByLabelText('Price'), '17000')
    await user.click(screen.getByRole('button', { name: 'Buy BTCUSDT' }))
    expect(await screen.findByText(/multiple of the step size 0.00001/)).toBeInTheDocument()
    expect(fetchMock).not.toHaveBeenCalled()

    fireEvent.change(screen.getByLabelText('Quantity'), { target: { value: '0.001' } })
    await user.click(screen.getByRole('button', { name: 'Buy BTCUSDT' }))
    await waitFor(() => expect(fetchMock).toHaveBeenCalledTimes(1))
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit]
    expect(url).toBe('/api/trader/order')
    expect(init.method).toBe('POST')
    expect(new Headers(init.headers).get('Authorization')).toBe('Bearer secret')
    expect(JSON.parse(String(init.body))).toEqual({ symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT', quantity: '0.001', price: '17000' })
    expect(await screen.findByText('Order rt1 NEW.')).toBeInTheDocument()
  })

  it('shows a clear message when the server answers 401', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => jsonResponse({ detail: 'missing or invalid bearer token' }, 401)))
    renderWithClient(<OrderForm symbols={['BTCUSDT']} filters={{}} />)
    const user = userEvent.setup()
    await user.type(screen.getByLabelText('Quote amount'), '100')
    await user.click(screen.getByRole('button', { name: 'Buy BTCUSDT' }))
    expect(await screen.findByRole('alert')).toHaveTextContent(/401.*API token/)
  })
})
