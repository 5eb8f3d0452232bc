import { createContext, useContext, useEffect, useState, type ReactNode } from 'react'
import { useQueryClient } from '@tanstack/react-query'
import { FrameApplier } from './frames'
import { defaultStreamUrl, Stream, type StreamState } from './stream'

const StateCtx = createContext<StreamState>('closed')
export const useStreamState = () => useContext(StateCtx)

/** Opens the stream for the app's lifetime and feeds frames into the query cache. */
export function LiveProvider({ children, url }: { children: ReactNode; url?: string }) {
  const qc = useQueryClient()
  const [state, setState] = useState<StreamState>('connecting')
  useEffect(() => {
    const applier = new FrameApplier(qc)
    const stream = new Stream({
      url: url ?? (() => defaultStreamUrl()),
      onFrame: (f) => applier.apply(f),
      onOpen: (reconnected) => { if (reconnected) applier.refreshAll() },
      onState: setState,
    })
    stream.start()
    return () => { stream.stop(); applier.dispose() }
  }, [qc, url])
  return <StateCtx.Provider value={state}>{children}</StateCtx.Provider>
}
