import { lazy } from 'react'
import { QueryClient, QueryClientProvider } from '@tanstack/react-query'
import { BrowserRouter, Route, Routes } from 'react-router-dom'
import { queryDefaults } from './api/hooks'
import { Layout } from './components/Layout'
import { LiveProvider } from './live/LiveProvider'
import { Overview } from './pages/Overview'
import { Signals } from './pages/Signals'
import { Cycles } from './pages/Cycles'
import { Orders } from './pages/Orders'
import { Strategies } from './pages/Strategies'
import { Risk } from './pages/Risk'
import { UniversePage } from './pages/Universe'
import { System } from './pages/System'

// lightweight-charts is the heaviest dependency: only the Market and Backtests pages load it (lazily).
const Market = lazy(() => import('./pages/Market'))
const Backtests = lazy(() => import('./pages/Backtests'))
const Optimise = lazy(() => import('./pages/Optimise'))

export function makeQueryClient(): QueryClient {
  return new QueryClient({ defaultOptions: { queries: { ...queryDefaults } } })
}

export function App({ client = makeQueryClient() }: { client?: QueryClient }) {
  return (
    <QueryClientProvider client={client}>
      <LiveProvider>
        <BrowserRouter>
          <Routes>
            <Route element={<Layout />}>
              <Route index element={<Overview />} />
              <Route path="market" element={<Market />} />
              <Route path="signals" element={<Signals />} />
              <Route path="cycles" element={<Cycles />} />
              <Route path="cycles/:id" element={<Cycles />} />
              <Route path="orders" element={<Orders />} />
              <Route path="strategies" element={<Strategies />} />
              <Route path="risk" element={<Risk />} />
              <Route path="universe" element={<UniversePage />} />
              <Route path="backtests" element={<Backtests />} />
              <Route path="optimise" element={<Optimise />} />
              <Route path="system" element={<System />} />
              <Route path="*" element={<div className="text-slate-400">Page not found.</div>} />
            </Route>
          </Routes>
        </BrowserRouter>
      </LiveProvider>
    </QueryClientProvider>
  )
}
