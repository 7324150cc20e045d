import type { AnswerStats } from "./chat-stream.js";

/** Conversations and settings, kept in this browser's localStorage only. */

export interface StoredMessage {
  role: "user" | "assistant";
  content: string;
  /** What the server measured for an answer; absent while streaming, when stopped, or on failure. */
  stats?: AnswerStats;
  stopped?: boolean;
  error?: string;
}

export interface Conversation {
  id: string;
  title: string;
  model: string;
  messages: StoredMessage[];
  updatedAt: number;
}

export interface Settings {
  model: string;
  system: string;
  temperature: number | null;
  maxTokens: number | null;
}

const CONVERSATIONS = "shimmy.conversations";
const SETTINGS = "shimmy.settings";
const DEFAULT_SETTINGS: Settings = { model: "", system: "", temperature: 0.7, maxTokens: 512 };

function read<T>(key: string, fallback: T): T {
  try {
    const text = localStorage.getItem(key);
    return text === null ? fallback : (JSON.parse(text) as T);
  } catch {
    return fallback;
  }
}

function write(key: string, value: unknown): void {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch (e) {
    // A full or disabled storage loses history, not the conversation on screen.
    console.warn(`could not save ${key}:`, e);
  }
}

/** Newest first. */
export function loadConversations(): Conversation[] {
  const list = read<Conversation[]>(CONVERSATIONS, []);
  return Array.isArray(list) ? list.sort((a, b) => b.updatedAt - a.updatedAt) : [];
}

export function saveConversations(list: Conversation[]): void {
  write(CONVERSATIONS, list);
}

export function loadSettings(): Settings {
  return { ...DEFAULT_SETTINGS, ...read<Partial<Settings>>(SETTINGS, {}) };
}

export function saveSettings(settings: Settings): void {
  write(SETTINGS, settings);
}

export function newConversation(model: string): Conversation {
  // Not crypto.randomUUID(): a page served over plain HTTP to another machine is no secure context.
  const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  return { id, title: "New chat", model, messages: [], updatedAt: Date.now() };
}

/** A conversation's name in the list: the start of its first question. */
export function titleFrom(text: string): string {
  const line = text.trim().split("\n", 1)[0]!;
  return line.length > 48 ? `${line.slice(0, 47)}…` : line || "New chat";
}
