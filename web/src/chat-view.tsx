import { useEffect, useRef, useState } from "preact/hooks";
import { UnauthorizedError, getJson } from "./api.js";
import { type ChatMessage, streamChat } from "./chat-stream.js";
import { MessageView } from "./message-view.js";
import { type Conversation, type Settings, type StoredMessage, loadConversations, loadSettings, newConversation, saveConversations, saveSettings, titleFrom } from "./store.js";

interface ModelList {
  data: { id: string; capabilities?: string[] }[];
}

/** Embedding models are listed too, but cannot chat. */
const canChat = (m: ModelList["data"][number]): boolean => !(m.capabilities ?? []).includes("embedding");

/** A number field's value, or null when left empty (the server's default then applies). */
function numberOrNull(text: string): number | null {
  if (text.trim() === "") return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

function SettingsPanel({ models, modelsError, settings, onChange, disabled }: { models: string[]; modelsError: string | null; settings: Settings; onChange: (s: Settings) => void; disabled: boolean }) {
  const set = <K extends keyof Settings>(key: K, value: Settings[K]) => onChange({ ...settings, [key]: value });
  return (
    <aside class="settings" aria-label="Settings">
      <label>
        Model
        <select value={settings.model} disabled={disabled || models.length === 0} onChange={(e) => set("model", e.currentTarget.value)}>
          {models.map((id) => (
            <option key={id} value={id}>
              {id}
            </option>
          ))}
        </select>
      </label>
      {modelsError !== null && <p class="error" role="alert">{modelsError}</p>}
      {modelsError === null && models.length === 0 && <p class="hint">No chat model found.</p>}
      <label>
        System prompt
        <textarea rows={4} value={settings.system} disabled={disabled} onInput={(e) => set("system", e.currentTarget.value)} />
      </label>
      <label>
        Temperature
        <input type="number" min={0} max={2} step={0.1} value={settings.temperature ?? ""} disabled={disabled} onInput={(e) => set("temperature", numberOrNull(e.currentTarget.value))} />
      </label>
      <label>
        Max tokens
        <input type="number" min={1} step={1} value={settings.maxTokens ?? ""} disabled={disabled} onInput={(e) => set("maxTokens", numberOrNull(e.currentTarget.value))} />
      </label>
    </aside>
  );
}

function ConversationList({ conversations, activeId, onSelect, onNew, onDelete, disabled }: { conversations: Conversation[]; activeId: string | null; onSelect: (id: string) => void; onNew: () => void; onDelete: (id: string) => void; disabled: boolean }) {
  return (
    <nav class="history" aria-label="Conversations">
      <button type="button" class="new" onClick={onNew} disabled={disabled}>
        New chat
      </button>
      <ul>
        {conversations.map((c) => (
          <li key={c.id} class={c.id === activeId ? "active" : undefined}>
            <button type="button" class="open" onClick={() => onSelect(c.id)} disabled={disabled} aria-current={c.id === activeId ? "true" : undefined}>
              {c.title}
            </button>
            <button type="button" class="delete" onClick={() => onDelete(c.id)} disabled={disabled} aria-label={`Delete ${c.title}`} title="Delete">
              ×
            </button>
          </li>
        ))}
      </ul>
    </nav>
  );
}

export function ChatView({ keyVersion, onUnauthorized }: { keyVersion: number; onUnauthorized: () => void }) {
  const [models, setModels] = useState<string[]>([]);
  const [modelsError, setModelsError] = useState<string | null>(null);
  const [settings, setSettings] = useState(loadSettings);
  const [conversations, setConversations] = useState(loadConversations);
  const [activeId, setActiveId] = useState<string | null>(() => conversations[0]?.id ?? null);
  const [input, setInput] = useState("");
  const [running, setRunning] = useState<AbortController | null>(null);
  const end = useRef<HTMLDivElement>(null);
  const active = conversations.find((c) => c.id === activeId) ?? null;

  useEffect(() => {
    getJson<ModelList>("/v1/models")
      .then((list) => {
        const ids = list.data.filter(canChat).map((m) => m.id);
        setModels(ids);
        setModelsError(null);
        setSettings((s) => (ids.includes(s.model) || ids.length === 0 ? s : { ...s, model: ids[0]! }));
      })
      .catch((e: Error) => (e instanceof UnauthorizedError ? onUnauthorized() : setModelsError(`Could not list models: ${e.message}`)));
  }, [keyVersion, onUnauthorized]);

  useEffect(() => saveSettings(settings), [settings]);
  // While an answer streams it changes with every token; it is saved once it ends.
  useEffect(() => {
    if (running === null) saveConversations(conversations);
  }, [conversations, running]);
  useEffect(() => end.current?.scrollIntoView({ block: "end" }), [active?.messages]);

  const send = async () => {
    const text = input.trim();
    if (text === "" || running !== null || settings.model === "") return;
    const base = active ?? newConversation(settings.model);
    const history: ChatMessage[] = base.messages.filter((m) => m.error === undefined && m.content !== "").map((m) => ({ role: m.role, content: m.content }));
    const question: StoredMessage = { role: "user", content: text };
    const conversation: Conversation = {
      ...base,
      model: settings.model,
      title: base.messages.length === 0 ? titleFrom(text) : base.title,
      messages: [...base.messages, question, { role: "assistant", content: "" }],
      updatedAt: Date.now(),
    };
    const id = conversation.id;
    setConversations((list) => [conversation, ...list.filter((c) => c.id !== id)]);
    setActiveId(id);
    setInput("");
    const controller = new AbortController();
    setRunning(controller);
    const updateAnswer = (change: (m: StoredMessage) => StoredMessage) =>
      setConversations((list) => list.map((c) => (c.id === id ? { ...c, messages: [...c.messages.slice(0, -1), change(c.messages.at(-1)!)] } : c)));
    const messages: ChatMessage[] = [...(settings.system.trim() === "" ? [] : [{ role: "system" as const, content: settings.system }]), ...history, { role: "user", content: text }];
    try {
      const result = await streamChat({ model: settings.model, messages, temperature: settings.temperature, maxTokens: settings.maxTokens }, controller.signal, (piece) =>
        updateAnswer((m) => ({ ...m, content: m.content + piece })),
      );
      updateAnswer((m) => ({ ...m, ...(result.stats ? { stats: result.stats } : {}) }));
    } catch (e) {
      if (controller.signal.aborted) {
        updateAnswer((m) => ({ ...m, stopped: true }));
      } else if (e instanceof UnauthorizedError) {
        // Nothing was answered: take the question back, ask for the key, and let it be sent again.
        setConversations((list) => list.map((c) => (c.id === id ? { ...c, messages: c.messages.slice(0, -2) } : c)).filter((c) => c.messages.length > 0));
        setInput(text);
        onUnauthorized();
      } else {
        updateAnswer((m) => ({ ...m, error: (e as Error).message }));
      }
    } finally {
      setRunning(null);
    }
  };

  const remove = (id: string) => {
    setConversations((list) => list.filter((c) => c.id !== id));
    if (id === activeId) setActiveId(null);
  };

  return (
    <div class="chat">
      <ConversationList conversations={conversations} activeId={activeId} onSelect={setActiveId} onNew={() => setActiveId(null)} onDelete={remove} disabled={running !== null} />
      <main class="conversation">
        <div class="messages" aria-live="polite">
          {active === null || active.messages.length === 0 ? (
            <p class="empty">Ask {settings.model || "a model"} something.</p>
          ) : (
            active.messages.map((m, i) => <MessageView key={i} message={m} streaming={running !== null && i === active.messages.length - 1} />)
          )}
          <div ref={end} />
        </div>
        <form
          class="composer"
          onSubmit={(e) => {
            e.preventDefault();
            void send();
          }}
        >
          <textarea
            aria-label="Message"
            placeholder="Message (Enter sends, Shift+Enter for a new line)"
            rows={3}
            value={input}
            onInput={(e) => setInput(e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
                e.preventDefault();
                void send();
              }
            }}
          />
          {running === null ? (
            <button type="submit" disabled={input.trim() === "" || settings.model === ""}>
              Send
            </button>
          ) : (
            <button type="button" class="stop" onClick={() => running.abort()}>
              Stop
            </button>
          )}
        </form>
      </main>
      <SettingsPanel models={models} modelsError={modelsError} settings={settings} onChange={setSettings} disabled={running !== null} />
    </div>
  );
}
