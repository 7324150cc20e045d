import { useEffect, useState } from "preact/hooks";
import { UnauthorizedError, getJson } from "./api.js";

/** The parts of /health, /slots and /api/ps this tab shows (docs/api.md). */
interface Health {
  version: string;
  uptime_seconds: number;
  models: { discovered: number; available: number; loaded: number };
  in_flight: number;
  compute: { threads: number };
  limits: { max_loaded_models: number; max_queue: number; keep_alive_ms: number };
  loaded: { name: string; context_per_slot: number; slots: number; busy_slots: number; queued: number; in_flight: number; memory_bytes: number }[];
}
interface Slots {
  models: { model: string; slots: { id: number; busy: boolean; cached_tokens: number }[] }[];
}
interface Running {
  models: { name: string; expires_at: string }[];
}
interface Snapshot {
  health: Health;
  slots: Slots;
  running: Running;
}

const POLL_MS = 2000;
/** Ollama's /api/ps says "kept loaded" with an expiry centuries away. */
const FOREVER_AFTER = Date.UTC(2200, 0, 1);

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const [h, m, sec] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}` : `${m}:${String(sec).padStart(2, "0")}`;
}

function keepAlive(inFlight: number, expiresAt: string | undefined, now: number): string {
  if (inFlight > 0) return "in use";
  if (expiresAt === undefined) return "—";
  const at = Date.parse(expiresAt);
  return at >= FOREVER_AFTER ? "kept loaded" : `unloads in ${duration(at - now)}`;
}

function Overview({ health }: { health: Health }) {
  const rows: [string, string][] = [
    ["Version", health.version],
    ["Up", duration(health.uptime_seconds * 1000)],
    ["Models", `${health.models.available} available, ${health.models.loaded} loaded`],
    ["Generating", String(health.in_flight)],
    ["Threads", String(health.compute.threads)],
    ["Keep-alive", health.limits.keep_alive_ms < 0 ? "forever" : duration(health.limits.keep_alive_ms)],
  ];
  return (
    <dl class="overview">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

function LoadedModels({ snapshot, now }: { snapshot: Snapshot; now: number }) {
  const { health, slots, running } = snapshot;
  if (health.loaded.length === 0) return <p class="empty">No model is loaded. A model loads on its first request.</p>;
  return (
    <table class="loaded" aria-label="Loaded models">
      <thead>
        <tr>
          <th>Model</th>
          <th>Memory</th>
          <th>Context per slot</th>
          <th>Slots</th>
          <th>Queued</th>
          <th>Keep-alive</th>
        </tr>
      </thead>
      <tbody>
        {health.loaded.map((m) => {
          const modelSlots = slots.models.find((s) => s.model === m.name)?.slots ?? [];
          return (
            <tr key={m.name}>
              <td class="name">{m.name}</td>
              <td>{mib(m.memory_bytes)}</td>
              <td>{m.context_per_slot}</td>
              <td>
                <span>
                  {m.busy_slots} / {m.slots} busy
                </span>
                <span class="slots">
                  {modelSlots.map((s) => (
                    <span key={s.id} class={s.busy ? "slot busy" : "slot"} title={`slot ${s.id}${s.busy ? " (busy)" : ""}: ${s.cached_tokens} tokens of its context cached`}>
                      {s.cached_tokens} cached
                    </span>
                  ))}
                </span>
              </td>
              <td>{m.queued}</td>
              <td>{keepAlive(m.in_flight, running.models.find((r) => r.name === m.name)?.expires_at, now)}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/** The Server tab: polls while shown; the keep-alive countdowns tick between polls. */
export function ServerView({ shown, keyVersion, onUnauthorized }: { shown: boolean; keyVersion: number; onUnauthorized: () => void }) {
  const [snapshot, setSnapshot] = useState<Snapshot | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [now, setNow] = useState(Date.now());

  useEffect(() => {
    if (!shown) return;
    let stopped = false;
    const poll = async () => {
      try {
        const [health, slots, running] = await Promise.all([getJson<Health>("/health"), getJson<Slots>("/slots"), getJson<Running>("/api/ps")]);
        if (stopped) return;
        setNow(Date.now());
        setSnapshot({ health, slots, running });
        setError(null);
      } catch (e) {
        if (stopped) return;
        if (e instanceof UnauthorizedError) {
          stopped = true;
          onUnauthorized();
        } else setError(`Could not read the server's state: ${(e as Error).message}`);
      }
    };
    void poll();
    const pollTimer = setInterval(() => void (stopped || poll()), POLL_MS);
    const clock = setInterval(() => setNow(Date.now()), 1000);
    return () => {
      stopped = true;
      clearInterval(pollTimer);
      clearInterval(clock);
    };
  }, [shown, keyVersion, onUnauthorized]);

  return (
    <main class="server">
      {error !== null && <p class="error" role="alert">{error}</p>}
      {snapshot === null ? (
        <p class="empty">Reading the server's state…</p>
      ) : (
        <>
          <Overview health={snapshot.health} />
          <h2>Loaded models</h2>
          <LoadedModels snapshot={snapshot} now={now} />
        </>
      )}
    </main>
  );
}
