import { afterEach, describe, expect, it } from 'vitest'
import { setToken } from '../api/client'
import { defaultStreamUrl, Stream } from '../live/stream'

const loc = (protocol: string, host: string) => ({ protocol, host }) as Location

describe('stream URL', () => {
  afterEach(() => setToken(''))

  it('carries the stored token as ?token= (a WebSocket cannot carry a header)', () => {
    expect(defaultStreamUrl(loc('http:', 'h:8000'), '')).toBe('ws://h:8000/api/stream/ws')
    expect(defaultStreamUrl(loc('https:', 'h'), 'a b/c')).toBe('wss://h/api/stream/ws?token=a%20b%2Fc')
    setToken('tok-9')
    expect(defaultStreamUrl(loc('http:', 'h'))).toBe('ws://h/api/stream/ws?token=tok-9')
  })

  it('asks a URL function again at every connection, so a token entered later is used', () => {
    const urls: string[] = []
    let token = ''
    const s = new Stream({
      url: () => defaultStreamUrl(loc('http:', 'h'), token),
      onFrame: () => {},
      makeSocket: (u) => { urls.push(u); throw new Error('refused') },
      minDelayMs: 0,
      maxDelayMs: 0,
    })
    s.start()
    token = 'late'
    s.stop()
    s.start()
    s.stop()
    expect(urls).toEqual(['ws://h/api/stream/ws', 'ws://h/api/stream/ws?token=late'])
  })
})
