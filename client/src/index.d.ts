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
    maybeApplied?: boolean;
  });
  /** Positive: the module refused (show `msg`). Negative: a host code (-3: log in again). */
  readonly ret: number;
  /** The reply's command when the host gave one, else the request's. */
  readonly cmd: string;
  /** Words for a person. */
  readonly msg: string;
  /** The HTTP status; 0 when no reply came, or when the reply came over the socket. */
  readonly status: number;
  readonly kind: GameErrorKind;
  /** A write (not a read command) that was sent and whose outcome is unknown: no reply came
   * (the connection or the socket closed, the client's timeout) or the host answered -6, and
   * its retries under its key are used up (or it timed out, and the host may still run it).
   * It may have been applied: read the state (`1203`) before sending it again, or send it
   * again yourself under a new call. False otherwise. */
  readonly maybeApplied: boolean;
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
  /** Keep a socket (GET /ws) open while logged in: calls go over it while it is open (over
   * HTTP otherwise), and the host's pushes arrive as "push" events (default false). Throws a
   * TypeError at once when there is no WebSocket class, or no address for the socket. */
  socket?: boolean;
  /** The WebSocket class (default globalThis.WebSocket; Node before 22 has none: pass the
   * `ws` package's `WebSocket`). */
  WebSocket?: WebSocketClass;
  /** The socket's address (default: `/ws` of baseUrl, ws: for http: and wss: for https:). */
  socketUrl?: string;
  /** Send writes over the socket too (default true), each with its Idempotency-Key (the
   * socket's `key` field): one whose socket closed before its reply is sent again under its
   * key (`writeRetries`), over whichever is up, and applied once. false keeps writes on HTTP
   * and sends only reads over the socket. */
  socketWrites?: boolean;
  /** The first wait before opening the socket again after it closed, in milliseconds, doubled
   * after each failed attempt; each wait is drawn between its half and all of it (default 500). */
  reconnectMs?: number;
  /** The longest wait between attempts to open the socket, in milliseconds (default 30000). */
  reconnectMaxMs?: number;
}

/** What the client needs of a WebSocket: the browser's, or the `ws` package's. The client
 * sets the handlers; it reads `data` of a message, `code` and `reason` of a close, and
 * `message` of an error when there is one. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  // `any`: each class has its own event types, which the client's handlers accept.
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
}

export type WebSocketClass = new (url: string) => WebSocketLike;

/** The socket's state: "off" when not used (no `socket` option, or after `disconnect()`). */
export type SocketState = "off" | "closed" | "connecting" | "open";

/** A push from the host: its kind, its id (growing for a player), its data. */
export interface Push<T = Record<string, unknown>> {
  kind: string;
  id: number;
  data: T;
}

/** The socket closed, or could not be opened. */
export interface SocketClose {
  /** The close code: the host's (1001 stopping, 4001 session over... docs/PROTOCOL.md), 1006
   * for a connection lost or refused, or 1000 when the client closed it (logout, disconnect). */
  code: number;
  reason: string;
  /** The wait before the next attempt to open it, or null when there is none (4000, 4001,
   * logged out, disconnected). */
  reconnectMs: number | null;
}

/** The events of a GameClient and what their listeners get. */
export interface GameClientEvents {
  /** A push, each id at most once, in the order received. */
  push: Push;
  /** The socket is open: the host accepted the token. */
  open: { playerId: string };
  close: SocketClose;
  /** The host ended the session (a call answered -3, or the socket closed with 4001); the
   * session is forgotten: log in again. Not after logout(). */
  loggedout: GameError;
}

/** The socket's address for baseUrl: `/ws` beside the API, http: becoming ws: and https:
 * wss:. A relative baseUrl is taken relative to `page` (default location.href); without a page
 * it throws a TypeError. */
export function socketUrlFor(baseUrl: string, page?: string): string;

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
  /** The socket's state. */
  readonly socketState: SocketState;
  /** The id of the last push handed to the app (sent as `since` on reconnecting), or null. */
  readonly lastPushId: number | null;
  /** Logs in; with the socket, opens it for the new session (without waiting for it). */
  login(account: string, profile?: Profile): Promise<Session>;
  /** Resolves to the reply's `data`; rejects with a GameError. Over the socket while it is
   * open, else over HTTP. */
  call<T = Record<string, unknown>>(cmd: string, data?: Record<string, unknown>): Promise<T>;
  /** Ends the session and closes the socket, which stays closed until the next login. */
  logout(): Promise<void>;
  health(): Promise<{ ret: number; status: string }>;
  on<E extends keyof GameClientEvents>(event: E, listener: (value: GameClientEvents[E]) => void): this;
  off<E extends keyof GameClientEvents>(event: E, listener: (value: GameClientEvents[E]) => void): this;
  /** Uses the socket from now on (what the `socket` option does): opens it now if logged in,
   * else at the next login. */
  connect(): void;
  /** Closes the socket and stops using it until connect(); calls go over HTTP. */
  disconnect(): void;
}
