/**
 * fetch wrapper: JSON in/out, the bearer token on every request when one is stored (a server bound beyond
 * loopback wants it on reads too; on loopback only writes need it), and typed errors so the UI can
 * tell "not built yet" (404) from "bad token" (401) from "server down".
 */
const TOKEN_KEY = 'roottrading.apiToken'
const listeners = new Set<() => void>()

export function getToken(): string {
  try { return localStorage.getItem(TOKEN_KEY) ?? '' } catch { return '' }
}

export function setToken(token: string): void {
  const t = token.trim()
  if (t) localStorage.setItem(TOKEN_KEY, t)
  else localStorage.removeItem(TOKEN_KEY)
  listeners.forEach((l) => l())
}

export function onTokenChange(fn: () => void): () => void {
  listeners.add(fn)
  return () => { listeners.delete(fn) }
}

export class ApiError extends Error {
  constructor(public status: number, message: string, public path: string) {
    super(message)
    this.name = 'ApiError'
  }
  get unauthorized(): boolean { return this.status === 401 }
  get missing(): boolean { return this.status === 404 }
}

/** A human sentence for any error thrown by `api`. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 401) return 'Refused (401): set a valid API token in the header to perform actions.'
    if (err.status === 404) return `Not available (404): ${err.message}`
    return `${err.status}: ${err.message}`
  }
  if (err instanceof Error) return err.message
  return String(err)
}

export async function api<T>(path: string, init: RequestInit & { json?: unknown } = {}): Promise<T> {
  const method = (init.method ?? 'GET').toUpperCase()
  const headers = new Headers(init.headers)
  headers.set('Accept', 'application/json')
  if (init.json !== undefined) headers.set('Content-Type', 'application/json')
  const token = getToken()
  if (token) headers.set('Authorization', `Bearer ${token}`)
  let res: Response
  try {
    res = await fetch(path, { ...init, method, headers, body: init.json !== undefined ? JSON.stringify(init.json) : init.body })
  } catch (e) {
    throw new ApiError(0, `network error: ${(e as Error).message}`, path)
  }
  const text = await res.text()
  let body: unknown = undefined
  if (text) {
    try { body = JSON.parse(text) } catch { body = text }
  }
  if (!res.ok) {
    const detail = typeof body === 'object' && body && 'detail' in body ? (body as { detail: unknown }).detail : body
    const msg = typeof detail === 'string' ? detail : detail ? JSON.stringify(detail) : res.statusText
    throw new ApiError(res.status, msg || `HTTP ${res.status}`, path)
  }
  // The server's SPA fallback answers unknown paths with index.html: for the API that means "no such route".
  const type = res.headers.get('content-type') ?? ''
  if (text && !type.includes('json')) throw new ApiError(404, 'route not found on this server', path)
  return body as T
}

/** Build a query string, dropping empty values. */
export function qs(params: Record<string, string | number | undefined | null>): string {
  const p = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v))
  const s = p.toString()
  return s ? `?${s}` : ''
}
