import { useEffect, useState } from 'react'
import { getToken, onTokenChange, setToken } from '../api/client'
import { inputBase } from './ui'

/** The API token for mutating actions, kept in localStorage and sent as `Authorization: Bearer ...`. */
export function TokenField() {
  const [value, setValue] = useState(getToken())
  const [saved, setSaved] = useState(getToken() !== '')
  useEffect(() => onTokenChange(() => { setValue(getToken()); setSaved(getToken() !== '') }), [])
  return (
    <form className="flex items-center gap-1.5" onSubmit={(e) => { e.preventDefault(); setToken(value) }}>
      <label htmlFor="api-token" className="sr-only">API token</label>
      <span className={`h-2 w-2 shrink-0 rounded-full ${saved ? 'bg-emerald-400' : 'bg-amber-400'}`} title={saved ? 'token set' : 'no token: actions will be refused'} />
      <input id="api-token" type="password" autoComplete="off" placeholder="API token" value={value}
        onChange={(e) => setValue(e.target.value)} className={`${inputBase} w-32 py-1 text-xs sm:w-40`} />
      <button type="submit" className="rounded-md bg-slate-800 px-2 py-1 text-xs text-slate-200 ring-1 ring-slate-700 hover:bg-slate-700">Save</button>
    </form>
  )
}
