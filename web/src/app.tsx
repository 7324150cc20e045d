import { useCallback, useState } from "preact/hooks";
import { ChatView } from "./chat-view.js";
import { KeyPrompt } from "./key-prompt.js";
import { ServerView } from "./server-view.js";

type Tab = "chat" | "server";

export function App() {
  const [tab, setTab] = useState<Tab>("chat");
  const [needKey, setNeedKey] = useState(false);
  // Bumped when a key is entered, so that views fetch again with it.
  const [keyVersion, setKeyVersion] = useState(0);
  const onUnauthorized = useCallback(() => setNeedKey(true), []);
  const tabButton = (id: Tab, label: string) => (
    <button type="button" role="tab" aria-selected={tab === id} class={tab === id ? "active" : undefined} onClick={() => setTab(id)}>
      {label}
    </button>
  );
  return (
    <div class="app">
      <header>
        <h1>Shimmy</h1>
        <div role="tablist">
          {tabButton("chat", "Chat")}
          {tabButton("server", "Server")}
        </div>
      </header>
      {/* Hidden, not unmounted: an answer keeps streaming while the Server tab is shown. */}
      <div class="tab" hidden={tab !== "chat"}>
        <ChatView keyVersion={keyVersion} onUnauthorized={onUnauthorized} />
      </div>
      <div class="tab" hidden={tab !== "server"}>
        <ServerView shown={tab === "server"} keyVersion={keyVersion} onUnauthorized={onUnauthorized} />
      </div>
      {needKey && (
        <KeyPrompt
          onSaved={() => {
            setNeedKey(false);
            setKeyVersion((v) => v + 1);
          }}
        />
      )}
    </div>
  );
}
