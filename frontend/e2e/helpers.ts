import { expect, type Page } from '@playwright/test'

export const TOKEN = 'e2e-token'

/** Store the API token the way a user does: through the header field. */
export async function setToken(page: Page, token = TOKEN): Promise<void> {
  await page.getByLabel('API token').fill(token)
  await page.getByRole('button', { name: 'Save' }).click()
}

export async function waitLive(page: Page): Promise<void> {
  await expect(page.getByTestId('status-strip').getByText('LIVE')).toBeVisible()
}

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `test-results/${name}.png`, fullPage: true })
}
