// Types for the game-host client (src/index.js). The wire contract is docs/PROTOCOL.md v1.

/** The key under which the session is kept in storage. */
export const SESSION_KEY: "game-host.session";

/** Commands the client may send again after a failure: they only read. */
export const READ_COMMANDS: readonly string[];

/** Where a call failed. */
export type GameErrorKind = "refused" | "host" | "network" | "timeout";

export class GameError extends Error {
  constructor(fields: {
    ret: number;
    cmd: string;
    msg: string;
    status?: number;
    kind?: GameErrorKind;
  });
  /** Positive: the module refused (show `msg`). Negative: a host code (-3: log in again). */
  readonly ret: number;
  /** The reply's command when the host gave one, else the request's. */
  readonly cmd: string;
  /** Words for a person. */
  readonly msg: string;
  /** The HTTP status; 0 when no reply came. */
  readonly status: number;
  readonly kind: GameErrorKind;
  /** A game-level refusal. */
  readonly refused: boolean;
  /** The session is unknown or expired. */
  readonly loggedOut: boolean;
}

/** The part of the Web Storage API the client uses. */
export interface SessionStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export function memoryStorage(): SessionStorage;

export interface Session {
  token: string;
  playerId: string;
  account: string;
}

export interface Profile {
  name?: string;
  head_img?: string;
}

export interface GameClientOptions {
  /** The host's address; "" (default) is the page's own origin. */
  baseUrl?: string;
  /** Keeps the session across page reloads (default: localStorage, else memory). */
  storage?: SessionStorage;
  /** Per request, in milliseconds (default 10000). */
  timeoutMs?: number;
  /** Extra attempts for read commands (default 3). */
  retries?: number;
  /** Extra attempts for any other command, under the call's Idempotency-Key, after a network
   * error or -6 (default 1; 0 sends each write once). */
  writeRetries?: number;
  /** The first retry's wait in milliseconds, doubled each time (default 200). */
  backoffMs?: number;
  /** Commands safe to send again (default READ_COMMANDS). */
  readCommands?: Iterable<string>;
  fetch?: typeof fetch;
}

/** A player record, as the player module's commands reply it. */
export interface Player {
  player_id: string;
  name: string;
  head_img: string;
  gold: number;
  diamond: number;
  items: Record<string, number>;
}

/** A new Idempotency-Key: a random UUID (one per call; `call` makes its own). */
export function newIdempotencyKey(): string;

export class GameClient {
  constructor(options?: GameClientOptions);
  readonly session: Session | null;
  readonly loggedIn: boolean;
  login(account: string, profile?: Profile): Promise<Session>;
  /** Resolves to the reply's `data`; rejects with a GameError. */
  call<T = Record<string, unknown>>(cmd: string, data?: Record<string, unknown>): Promise<T>;
  logout(): Promise<void>;
  health(): Promise<{ ret: number; status: string }>;
}
