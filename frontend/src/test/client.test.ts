import { afterEach, describe, expect, it, vi } from 'vitest'
import { api, ApiError, getToken, setToken } from '../api/client'
import { jsonResponse } from './utils'

describe('api client', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('sends the stored token as a bearer header on every request (reads need it beyond loopback)', async () => {
    const fetchMock = vi.fn(async () => jsonResponse({ ok: true }))
    vi.stubGlobal('fetch', fetchMock)
    setToken('  tok-123 ')
    expect(getToken()).toBe('tok-123')
    expect(localStorage.getItem('roottrading.apiToken')).toBe('tok-123')
    await api('/api/trader/config/pause', { method: 'POST' })
    await api('/api/health')
    const headers = fetchMock.mock.calls.map((c) => new Headers((c as unknown as [string, RequestInit])[1].headers))
    expect(headers[0].get('Authorization')).toBe('Bearer tok-123')
    expect(headers[1].get('Authorization')).toBe('Bearer tok-123')
    setToken('')
    await api('/api/health')
    expect(new Headers((fetchMock.mock.calls[2] as unknown as [string, RequestInit])[1].headers).get('Authorization')).toBeNull()
  })

  it('turns a 401 into an ApiError with the server detail', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => jsonResponse({ detail: 'missing or invalid bearer token' }, 401)))
    const err = (await api('/api/trader/config/pause', { method: 'POST' }).catch((e: unknown) => e)) as ApiError
    expect(err).toBeInstanceOf(ApiError)
    expect(err.unauthorized).toBe(true)
    expect(err.message).toBe('missing or invalid bearer token')
  })

  it('treats the SPA fallback page as a missing API route', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response('<!doctype html><html></html>', { status: 200, headers: { 'content-type': 'text/html' } })))
    const err = (await api('/api/market/symbols').catch((e: unknown) => e)) as ApiError
    expect(err).toBeInstanceOf(ApiError)
    expect(err.missing).toBe(true)
  })
})
