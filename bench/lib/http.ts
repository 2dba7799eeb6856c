/** One request with fetch, JSON in and the body as text out: the bench's set-up calls, not its load. */
export async function http (base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await res.text()
  return { status: res.status, text, json: () => JSON.parse(text), retryAfter: res.headers.get('retry-after') }
}
