/**
 * Requests to this same server. With API keys on, every API route needs the key: it is kept in
 * localStorage and sent as `Authorization: Bearer`; a 401 tells the page to ask for it.
 */

const KEY_STORAGE = "shimmy.apiKey";

/** The server refused the key (or got none): the page asks for one. */
export class UnauthorizedError extends Error {}

export function storedApiKey(): string | null {
  return localStorage.getItem(KEY_STORAGE);
}

export function storeApiKey(key: string): void {
  localStorage.setItem(KEY_STORAGE, key);
}

/** The message of an OpenAI (`{error: {message}}`) or Ollama (`{error: "…"}`) error body. */
export function errorMessage(body: unknown, fallback: string): string {
  const error = (body as { error?: unknown } | null)?.error;
  if (typeof error === "string") return error;
  const message = (error as { message?: unknown } | undefined)?.message;
  return typeof message === "string" ? message : fallback;
}

/** fetch() with the key; throws UnauthorizedError on 401, and an Error with the server's message on any other failure. */
export async function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const key = storedApiKey();
  if (key !== null && key !== "") headers.set("authorization", `Bearer ${key}`);
  const response = await fetch(path, { ...init, headers });
  if (response.status === 401) throw new UnauthorizedError(errorMessage(await response.json().catch(() => null), "This server needs an API key."));
  if (!response.ok) throw new Error(errorMessage(await response.json().catch(() => null), `${response.status} ${response.statusText}`));
  return response;
}

export async function getJson<T>(path: string): Promise<T> {
  return (await apiFetch(path)).json() as Promise<T>;
}
