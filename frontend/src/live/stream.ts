/**
 * The one WebSocket to /api/stream/ws. Reconnects with exponential backoff (0.5 s doubling to 15 s,
 * with jitter) and reports its state for the header badge.
 */
import { getToken } from '../api/client'
import type { Frame } from '../api/types'

export type StreamState = 'connecting' | 'open' | 'closed'

export interface StreamOptions {
  /** A function is called at every (re)connection, so a token entered later is used by the next attempt. */
  url: string | (() => string)
  onFrame: (f: Frame) => void
  onOpen?: (reconnected: boolean) => void
  onState?: (s: StreamState) => void
  makeSocket?: (url: string) => WebSocket
  minDelayMs?: number
  maxDelayMs?: number
}

export function backoffDelay(attempt: number, min = 500, max = 15_000, rand = Math.random): number {
  const base = Math.min(max, min * 2 ** attempt)
  return Math.round(base * (0.75 + rand() * 0.5))
}

/** Browsers cannot set headers on a WebSocket: the stored token goes in `?token=` (a server bound beyond
 * loopback refuses the stream without it). */
export function defaultStreamUrl(loc: Location = window.location, token: string = getToken()): string {
  const url = `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/api/stream/ws`
  return token ? `${url}?token=${encodeURIComponent(token)}` : url
}

export class Stream {
  private socket: WebSocket | null = null
  private attempt = 0
  private timer: ReturnType<typeof setTimeout> | null = null
  private stopped = false
  private everOpened = false
  state: StreamState = 'closed'

  constructor(private opts: StreamOptions) {}

  start(): void { this.stopped = false; this.connect() }

  stop(): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.socket?.close()
    this.socket = null
    this.setState('closed')
  }

  private setState(s: StreamState): void { this.state = s; this.opts.onState?.(s) }

  private connect(): void {
    this.setState('connecting')
    const make = this.opts.makeSocket ?? ((u: string) => new WebSocket(u))
    let ws: WebSocket
    const url = typeof this.opts.url === 'function' ? this.opts.url() : this.opts.url
    try { ws = make(url) } catch { this.retry(); return }
    this.socket = ws
    ws.onopen = () => {
      this.attempt = 0
      this.setState('open')
      this.opts.onOpen?.(this.everOpened)
      this.everOpened = true
    }
    ws.onmessage = (ev: MessageEvent) => {
      let frame: Frame
      try { frame = JSON.parse(String(ev.data)) as Frame } catch { return }
      if (frame && typeof frame.topic === 'string') this.opts.onFrame(frame)
    }
    ws.onclose = () => { if (this.socket === ws) { this.socket = null; this.retry() } }
    ws.onerror = () => { ws.close() }
  }

  private retry(): void {
    if (this.stopped) return
    this.setState('closed')
    const delay = backoffDelay(this.attempt++, this.opts.minDelayMs, this.opts.maxDelayMs)
    this.timer = setTimeout(() => { this.timer = null; if (!this.stopped) this.connect() }, delay)
  }
}
