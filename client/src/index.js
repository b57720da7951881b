// game-host client: the browser side of docs/PROTOCOL.md v1 (POST /login, /logic, /logout),
// and optionally the socket (GET /ws, "The socket" in docs/PROTOCOL.md).
//
//   import { GameClient } from "./index.js";
//   const game = new GameClient({ baseUrl: "https://game.example.com" });
//   await game.login("alice", { name: "Alice" });
//   const { goods } = await game.call("1101");
//   try { await game.call("1103", { id: "potion", count: 2 }); }
//   catch (e) { if (e.refused) show(e.msg); else throw e; }
//
// With `socket: true` the client also keeps a WebSocket open while logged in: calls go over it
// while it is open (over HTTP otherwise), and the host's pushes arrive as "push" events.
//
// No framework, no build step: an ES module for browsers and Node 18+ (both have `fetch`; Node
// before 22 has no WebSocket: pass one, such as the `ws` package's, as `options.WebSocket`).

/** The key under which the session is kept in `storage`. */
export const SESSION_KEY = "game-host.session";

/** Commands that only read, so a failed attempt may be sent again freely, with backoff: the
 * mall's goods and the player's record. Other commands (a purchase, 1103; a sign-in, 1001) are
 * sent again at most `writeRetries` times, with the same `Idempotency-Key`, so that the host
 * applies them once (docs/PROTOCOL.md, "Safe retries"). */
export const READ_COMMANDS = Object.freeze(["1101", "1203"]);

/** A new idempotency key: a random UUID. `crypto.randomUUID` needs a secure context (https or
 * localhost) and Node 19+; elsewhere a version 4 UUID is made from `getRandomValues`, or, with
 * no Web Crypto at all, from `Math.random` (a key need only be unique per player and day). */
export function newIdempotencyKey() {
  const crypto = globalThis.crypto;
  if (typeof crypto?.randomUUID === "function") return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  if (typeof crypto?.getRandomValues === "function") crypto.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Why a call did not succeed. `ret` is the protocol's code: positive when the module refused
 * (a game answer to show the player), negative for the host's codes (docs/PROTOCOL.md): -3 means
 * log in again. Failures that never reached the host get the nearest host code: -6 for the
 * network, -7 for the client's own timeout, and `kind` says which.
 */
export class GameError extends Error {
  constructor({ ret, cmd, msg, status = 0, kind, maybeApplied = false }) {
    super(msg);
    this.name = "GameError";
    /** The protocol code. */
    this.ret = ret;
    /** The command: the reply's (`1104`) when the host answered with one, else the request's. */
    this.cmd = cmd;
    /** Words for a person, from the module or the host. */
    this.msg = msg;
    /** The HTTP status, 0 when there was no reply. */
    this.status = status;
    /** "refused" (a game answer), "host" (a host error code), "network" or "timeout". */
    this.kind = kind ?? (ret > 0 ? "refused" : "host");
    /** A write (not a read command) that was sent and whose outcome is unknown: no reply came
     * (the connection or the socket closed, the client's timeout) or the host answered -6, and
     * its retries under its key are used up (or it timed out: the host may still run it). It
     * may have been applied: read the state (`1203`) before sending it again. */
    this.maybeApplied = maybeApplied;
  }

  /** A game-level refusal (not enough gold...): show `msg`, nothing is wrong with the client. */
  get refused() {
    return this.kind === "refused";
  }

  /** The session is unknown or expired: log in again. */
  get loggedOut() {
    return this.ret === -3;
  }
}

/** Storage that lasts as long as the page: for Node, or when `localStorage` is unavailable. */
export function memoryStorage() {
  const items = new Map();
  return {
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => void items.set(key, String(value)),
    removeItem: (key) => void items.delete(key),
  };
}

function defaultStorage() {
  try {
    // Some browsers throw on access (storage disabled, private modes).
    if (globalThis.localStorage) return globalThis.localStorage;
  } catch {
    // fall through
  }
  return memoryStorage();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** `readyState` of an open socket, in browsers and in the `ws` package alike. */
const OPEN = 1;

/** The close codes that say "connect again later" (1011 the host failed, 1013 the host is
 * full): the first wait after one of them is that of the third failed attempt. */
const LATER_CLOSES = new Set([1011, 1013]);

/** How a command refused for the socket's rate begins its `msg` (docs/PROTOCOL.md, "The
 * socket", limits): -6, and the command was not run. */
const OVER_RATE = "too many commands on this socket";

/**
 * The socket's address for `baseUrl`: `/ws` beside the API, `http:` becoming `ws:` and `https:`
 * becoming `wss:`. A relative `baseUrl` ("" included) is taken relative to `page`.
 * @param {string} baseUrl
 * @param {string} [page] default: the page's own address (`location.href`).
 * @returns {string}
 */
export function socketUrlFor(baseUrl, page = globalThis.location?.href) {
  let url;
  try {
    url = new URL(`${baseUrl.replace(/\/+$/, "")}/ws`, page);
  } catch {
    throw new TypeError(
      `cannot make the socket's address from baseUrl "${baseUrl}" without a page to be relative to: pass an absolute baseUrl, or socketUrl`,
    );
  }
  if (url.protocol === "https:") url.protocol = "wss:";
  else if (url.protocol === "http:") url.protocol = "ws:";
  return url.href;
}

export class GameClient {
  /** Event name to its listeners. */
  #listeners = new Map();
  /** The WebSocket class, and whether the client keeps a socket open while logged in. */
  #WebSocket;
  #socketUrl;
  #useSocket = false;
  /** The socket of the moment (connecting or open), or null; the token it was opened with. */
  #ws = null;
  #wsToken = null;
  /** "closed", "connecting" (opened, the token sent, no welcome yet) or "open". */
  #socketState = "closed";
  /** Commands sent over the socket and not yet answered: cid to { settle, fail }. */
  #pending = new Map();
  #lastCid = 0;
  #welcomeTimer;
  #reconnectTimer;
  /** Failed attempts to open the socket since it was last open (a close that says "later"
   * counts three): the next wait grows with it. */
  #failures = 0;
  /** The last push id handed to the app, and the player whose it is. */
  #lastPushId = null;
  #pushPlayer = null;

  /**
   * @param {object} [options]
   * @param {string} [options.baseUrl] the host's address; "" (the default) is the page's own.
   * @param {Storage} [options.storage] where the session is kept across page reloads
   *   (default `localStorage`, or memory where there is none).
   * @param {number} [options.timeoutMs] per request (default 10 s); also per command over the
   *   socket, and for the host's welcome on a new socket.
   * @param {number} [options.retries] extra attempts for read commands (default 3).
   * @param {number} [options.writeRetries] extra attempts for any other command, with the same
   *   idempotency key, after a network error or -6 (default 1; 0 sends each write once).
   * @param {number} [options.backoffMs] the first retry's wait, doubled each time (default 200).
   * @param {string[]} [options.readCommands] commands safe to send again (default READ_COMMANDS).
   * @param {typeof fetch} [options.fetch] for tests or other environments.
   * @param {boolean} [options.socket] keep a socket (GET /ws) open while logged in: calls go
   *   over it while it is open, and the host's pushes arrive as "push" events (default false).
   * @param {typeof WebSocket} [options.WebSocket] the WebSocket class (default
   *   `globalThis.WebSocket`; Node before 22 has none: pass the `ws` package's).
   * @param {string} [options.socketUrl] the socket's address (default: `/ws` of `baseUrl`,
   *   ws: for http: and wss: for https:).
   * @param {boolean} [options.socketWrites] send writes over the socket too (default true, each
   *   with its idempotency key);
   *   false sends them over HTTP, where a write whose reply was lost is sent again safely.
   * @param {number} [options.reconnectMs] the first wait before opening the socket again after
   *   it closed, doubled after each failed attempt (default 500).
   * @param {number} [options.reconnectMaxMs] the longest such wait (default 30 s).
   */
  constructor(options = {}) {
    this.baseUrl = (options.baseUrl ?? "").replace(/\/+$/, "");
    this.storage = options.storage ?? defaultStorage();
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.retries = options.retries ?? 3;
    this.writeRetries = options.writeRetries ?? 1;
    this.backoffMs = options.backoffMs ?? 200;
    this.readCommands = new Set(options.readCommands ?? READ_COMMANDS);
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.socketWrites = options.socketWrites ?? true;
    this.reconnectMs = options.reconnectMs ?? 500;
    this.reconnectMaxMs = options.reconnectMaxMs ?? 30_000;
    this.#WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.#socketUrl = options.socketUrl;
    // A session kept by an earlier page opens the socket as a login does.
    if (options.socket) this.connect();
  }

  /** The kept session `{ token, playerId, account }`, or null. */
  get session() {
    const text = this.storage.getItem(SESSION_KEY);
    if (!text) return null;
    try {
      return JSON.parse(text);
    } catch {
      return null;
    }
  }

  get loggedIn() {
    return this.session !== null;
  }

  /** The socket: "off" (not used: no `socket` option, or after `disconnect()`), "closed"
   * (logged out, or waiting to connect again), "connecting" or "open". */
  get socketState() {
    return this.#useSocket ? this.#socketState : "off";
  }

  /** The id of the last push handed to the app, or null: what the client sends as `since`. */
  get lastPushId() {
    return this.#lastPushId;
  }

  /**
   * Listens for `event`:
   * - "push" `{ kind, id, data }`: a push from the host, each id once, in the order received;
   * - "open" `{ playerId }`: the socket is open (the host accepted the token);
   * - "close" `{ code, reason, reconnectMs }`: the socket closed, or could not be opened;
   *   `reconnectMs` is the wait before the next attempt, or null when there is none;
   * - "loggedout" (a {@link GameError}, -3): the host ended the session (a call answered -3,
   *   or the socket closed with 4001): log in again. Not after `logout()`.
   * @returns {this}
   */
  on(event, listener) {
    let listeners = this.#listeners.get(event);
    if (!listeners) this.#listeners.set(event, (listeners = new Set()));
    listeners.add(listener);
    return this;
  }

  /** Stops `listener` from hearing `event`. @returns {this} */
  off(event, listener) {
    this.#listeners.get(event)?.delete(listener);
    return this;
  }

  /**
   * Uses the socket from now on (what the `socket` option does): opens it now if logged in,
   * else at the next login. Throws a TypeError when there is no WebSocket class or no address.
   */
  connect() {
    if (typeof this.#WebSocket !== "function") {
      throw new TypeError(
        "the socket needs a WebSocket class and this environment has none (Node before 22): pass options.WebSocket, such as the ws package's",
      );
    }
    this.#socketUrl ??= socketUrlFor(this.baseUrl);
    this.#useSocket = true;
    // After the caller's code: it may listen for "open" first.
    queueMicrotask(() => this.#connect());
  }

  /** Closes the socket and stops using it (calls go over HTTP) until `connect()`. In Node, an
   * open socket or a pending reconnect keeps the process alive: disconnect when done. */
  disconnect() {
    this.#useSocket = false;
    this.#closeSocket("the client disconnected");
  }

  /**
   * Logs in as `account` (1 to 64 of A-Z a-z 0-9 _ . -), creating the player on first login.
   * With the socket, opens it for the new session (without waiting for it).
   * @param {string} account
   * @param {{ name?: string, head_img?: string }} [profile] used when the player is created.
   * @returns {Promise<{ token: string, playerId: string, account: string }>}
   */
  async login(account, profile = {}) {
    const reply = await this.#post("/login", { account, ...profile }, { cmd: "login" });
    const session = { token: reply.token, playerId: reply.player_id, account };
    this.storage.setItem(SESSION_KEY, JSON.stringify(session));
    if (this.#useSocket) {
      this.#closeSocket("logged in again");
      this.#failures = 0;
      this.#connect();
    }
    return session;
  }

  /**
   * Sends game command `cmd` (four digits, "1203") with `data`, and an `Idempotency-Key` of its
   * own (one per call, the same on each of its attempts).
   * Resolves to the reply's `data`; rejects with a {@link GameError}. Read commands are tried
   * again with a growing wait when the host is unavailable (-6, 503), unreachable or slow.
   * Every other command is tried again `writeRetries` times (once by default) when the host is
   * unavailable (-6, 503) or unreachable: under the same key, the host applies it once and
   * answers the retry with the first reply, should the first attempt have been applied.
   *
   * While the socket is open the call goes over it, else over HTTP, with the same key either
   * way (the socket's `key` field: keys are the player's, shared by both), so a write whose
   * socket closed before its reply is sent again like one whose connection broke: under its
   * key, over whichever is up, and the host applies it once. A write that still has no answer
   * after its retries, or that timed out, may have been applied: it rejects with
   * `maybeApplied`. After a timeout on the socket (which may be dead) the call's next attempts
   * go over HTTP.
   * @param {string} cmd
   * @param {object} [data]
   * @returns {Promise<object>}
   */
  async call(cmd, data = {}) {
    const session = this.session;
    if (!session) {
      throw new GameError({ ret: -3, cmd, msg: "not logged in: call login() first" });
    }
    const read = this.readCommands.has(cmd);
    const attempts = 1 + (read ? this.retries : this.writeRetries);
    const key = newIdempotencyKey();
    let socketTimedOut = false;
    for (let attempt = 1; ; attempt++) {
      const overSocket =
        this.#socketOpenFor(session.token) && !socketTimedOut && (read || this.socketWrites);
      try {
        const reply = overSocket
          ? await this.#sendOverSocket(cmd, data, key)
          : await this.#post("/logic", { cmd, data }, { cmd, token: session.token, key });
        return reply.data ?? {};
      } catch (error) {
        if (error instanceof GameError && error.loggedOut) {
          this.#forget(session.token, error);
          // A socket's -3 is followed by the host's 4001, which closes it.
          if (!overSocket) this.#dropSocketOf(session.token, "the session ended");
        }
        if (overSocket && error instanceof GameError && error.kind === "timeout") {
          socketTimedOut = true;
        }
        const again = read ? retryable(error) : retryableWrite(error);
        if (attempt >= attempts || !again) {
          if (!read && outcomeUnknown(error) && !(overSocket && overRate(error))) {
            error.maybeApplied = true;
          }
          throw error;
        }
        // 200, 400, 800 ms..., each with up to half again at random so clients spread out.
        const wait = this.backoffMs * 2 ** (attempt - 1);
        await sleep(wait + Math.random() * wait * 0.5);
      }
    }
  }

  /** Ends the session on the host (every host) and forgets it here; closes the socket, which
   * stays closed until the next login. */
  async logout() {
    const session = this.session;
    if (!session) return;
    // No reconnect while the host ends the session.
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    try {
      await this.#post("/logout", {}, { cmd: "logout", token: session.token });
    } catch (error) {
      // An already expired session is as good as ended.
      if (!(error instanceof GameError && error.loggedOut)) throw error;
    } finally {
      this.#forget(session.token);
      this.#dropSocketOf(session.token, "logged out");
    }
  }

  /** `GET /health`: `{ ret: 0, status: "ok" }` while the host serves. */
  async health() {
    return this.#request("GET", "/health", undefined, { cmd: "health" });
  }

  /** Forgets the session of `token`; `refusal` (a -3) when the host ended it, which listeners
   * of "loggedout" hear. */
  #forget(token, refusal) {
    // A newer login (another tab) keeps its own session.
    if (this.session?.token !== token) return;
    this.storage.removeItem(SESSION_KEY);
    if (refusal) this.#emit("loggedout", refusal);
  }

  #emit(event, value) {
    for (const listener of [...(this.#listeners.get(event) ?? [])]) {
      try {
        listener(value);
      } catch (error) {
        // A listener's failure is the page's, reported as an uncaught error, not the client's.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  // The socket.

  #socketOpenFor(token) {
    return (
      this.#socketState === "open" && this.#wsToken === token && this.#ws?.readyState === OPEN
    );
  }

  /** Opens the socket for the kept session, unless one is there already. */
  #connect() {
    if (!this.#useSocket || this.#ws) return;
    const session = this.session;
    if (!session) return;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    let ws;
    try {
      ws = new this.#WebSocket(this.#socketUrl);
    } catch (error) {
      this.#wsToken = session.token;
      this.#ended(1006, `cannot open the socket: ${error.message}`);
      return;
    }
    this.#ws = ws;
    this.#wsToken = session.token;
    this.#socketState = "connecting";
    // A host that does not answer (a connection that hangs) is given up like a lost one.
    this.#welcomeTimer = setTimeout(
      () => this.#lost(ws, 1006, `no welcome from the host within ${this.timeoutMs} ms`),
      this.timeoutMs,
    );
    ws.onopen = () => {
      if (this.#ws !== ws) return;
      const hello = { token: session.token };
      // Pushes resume after the last one handed to the app, when they are this player's.
      if (this.#lastPushId !== null && this.#pushPlayer === session.playerId) {
        hello.since = this.#lastPushId;
      }
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (event) => {
      if (this.#ws === ws) this.#receive(event.data);
    };
    ws.onclose = (event) => this.#lost(ws, event.code, event.reason ?? "");
    // A failed connection: browsers follow the error with a close (1006), but some WebSocket
    // classes do not (Node 20's experimental one, when the connection is refused), so the
    // error ends the socket. A host's close frame (4001...) comes without an error.
    ws.onerror = (event) =>
      this.#lost(ws, 1006, `the connection failed${event?.message ? `: ${event.message}` : ""}`);
  }

  #receive(text) {
    if (typeof text !== "string") return; // binary messages are not part of the protocol
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message === null || typeof message !== "object") return;
    if (this.#socketState === "connecting") {
      // The first message: the host's welcome, {"ret": 0, "player_id": ...}.
      if (message.ret === 0 && message.cid === undefined) {
        clearTimeout(this.#welcomeTimer);
        this.#socketState = "open";
        this.#failures = 0;
        if (this.#pushPlayer !== message.player_id) {
          this.#pushPlayer = message.player_id;
          this.#lastPushId = null;
        }
        this.#emit("open", { playerId: message.player_id });
      }
      return;
    }
    if (message.cid !== undefined) {
      const pending = this.#pending.get(message.cid);
      if (pending) {
        this.#pending.delete(message.cid);
        pending.settle(message);
      }
      return;
    }
    if (typeof message.push === "string") this.#deliverPush(message);
  }

  /** Hands a push to the app once: one whose id is not above the last one handed over is a
   * duplicate (resent after a reconnect) and is dropped, as is one without a valid id. */
  #deliverPush({ push: kind, id, data }) {
    if (!Number.isSafeInteger(id) || id < 0) return;
    if (this.#lastPushId !== null && id <= this.#lastPushId) return;
    this.#lastPushId = id;
    this.#emit("push", { kind, id, data: data ?? {} });
  }

  /** Sends one command over the open socket; resolves to its reply like `#request`. */
  #sendOverSocket(cmd, data, key) {
    const ws = this.#ws;
    const cid = ++this.#lastCid;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(cid);
        const msg = `no reply within ${this.timeoutMs} ms`;
        reject(new GameError({ ret: -7, cmd, msg, kind: "timeout" }));
      }, this.timeoutMs);
      const fail = (msg) => {
        clearTimeout(timer);
        this.#pending.delete(cid);
        reject(new GameError({ ret: -6, cmd, msg, kind: "network" }));
      };
      this.#pending.set(cid, {
        settle: (reply) => {
          clearTimeout(timer);
          try {
            resolve(checked(reply, cmd, 0));
          } catch (error) {
            reject(error);
          }
        },
        fail,
      });
      try {
        ws.send(JSON.stringify({ cid, cmd, data, key }));
      } catch (error) {
        fail(`cannot send over the socket: ${error.message}`);
      }
    });
  }

  /** The socket ended without the client closing it: the host closed it, the connection broke,
   * or it could not be opened. */
  #lost(ws, code, reason) {
    if (this.#ws !== ws) return; // one the client closed or gave up already
    this.#ws = null;
    clearTimeout(this.#welcomeTimer);
    try {
      ws.close(); // when the client gives up waiting; nothing once it has closed
    } catch {
      // already closing
    }
    this.#ended(code, reason);
  }

  #ended(code, reason) {
    this.#socketState = "closed";
    this.#failPending(`the socket closed (${code}${reason ? `: ${reason}` : ""}) before the reply`);
    const token = this.#wsToken;
    const sessionOver = code === 4001 && this.session?.token === token;
    // The client opens the socket again after any close (1001 a host restarting, 1006 a lost
    // connection, 1011, 1013, 4003, 4004...) but two: 4000, the host refused the first message
    // and would refuse it again, and 4001, the session is over (log in again; unless it was an
    // older session's, replaced by a newer login, in another tab say). Nor once logged out.
    const again = this.#useSocket && this.session !== null && code !== 4000 && !sessionOver;
    const reconnectMs = again ? this.#reconnectLater(code) : null;
    this.#emit("close", { code, reason, reconnectMs });
    if (sessionOver) {
      const msg = reason || "the session ended: log in again";
      this.#forget(token, new GameError({ ret: -3, cmd: "socket", msg }));
    }
  }

  /** Schedules the next attempt to open the socket; returns its wait. The wait doubles with
   * each failed attempt up to `reconnectMaxMs`, and is drawn between its half and all of it,
   * so that the clients of a host that restarted do not all come back at once. */
  #reconnectLater(code) {
    this.#failures += LATER_CLOSES.has(code) ? 3 : 1;
    const wait = Math.min(this.reconnectMaxMs, this.reconnectMs * 2 ** (this.#failures - 1));
    const delay = Math.round(wait / 2 + (Math.random() * wait) / 2);
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#connect();
    }, delay);
    return delay;
  }

  /** Closes the socket on the client's own account, and any pending reconnect. */
  #closeSocket(reason) {
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    const ws = this.#ws;
    if (!ws) return;
    this.#ws = null;
    clearTimeout(this.#welcomeTimer);
    this.#socketState = "closed";
    try {
      ws.close(1000, reason);
    } catch {
      // already closing
    }
    this.#failPending(`the socket was closed before the reply (${reason})`);
    this.#emit("close", { code: 1000, reason, reconnectMs: null });
  }

  /** Closes the socket of `token`'s session, and stops opening it again. */
  #dropSocketOf(token, reason) {
    if (this.#wsToken === token) this.#closeSocket(reason);
  }

  #failPending(msg) {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const { fail } of pending) fail(msg);
  }

  // HTTP.

  #post(path, body, context) {
    return this.#request("POST", path, body, context);
  }

  async #request(method, path, body, { cmd, token, key }) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    if (key) headers["Idempotency-Key"] = key;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.timeoutMs);
    let response;
    let reply;
    try {
      response = await this.fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        signal: abort.signal,
      });
      reply = await response.json().catch(() => null);
    } catch (error) {
      const timedOut = abort.signal.aborted;
      throw new GameError({
        ret: timedOut ? -7 : -6,
        cmd,
        msg: timedOut
          ? `no reply within ${this.timeoutMs} ms`
          : `cannot reach the game server: ${error.message}`,
        kind: timedOut ? "timeout" : "network",
      });
    } finally {
      clearTimeout(timer);
    }
    return checked(reply, cmd, response.status);
  }
}

/** `reply` if it is a success, else the GameError it says; `status` is the HTTP status, 0 for a
 * reply that came over the socket. */
function checked(reply, cmd, status) {
  if (!reply || typeof reply.ret !== "number") {
    throw new GameError({
      ret: -6,
      cmd,
      msg: status
        ? `the server answered HTTP ${status} without a game reply`
        : "the host answered without a game reply",
      status,
    });
  }
  if (reply.ret !== 0) {
    throw new GameError({
      ret: reply.ret,
      cmd: reply.cmd ?? cmd,
      msg: reply.msg ?? `failed with ret ${reply.ret}`,
      status,
    });
  }
  return reply;
}

/** Whether sending a write again (under its key) may help: the host was unavailable or
 * unreachable. Not after the client's own timeout: the host may still be running the first
 * attempt, which the retry would wait behind; the caller decides. */
function retryableWrite(error) {
  return retryable(error) && error.kind !== "timeout";
}

/** Whether sending a read again may help: the host was unavailable, unreachable or slow. */
function retryable(error) {
  if (!(error instanceof GameError)) return false;
  return (
    error.kind === "network" ||
    error.kind === "timeout" ||
    error.ret === -6 ||
    error.status === 503
  );
}

/** A command the socket refused for its rate: not run, so it may be sent again. */
function overRate(error) {
  return error instanceof GameError && error.ret === -6 && error.msg.startsWith(OVER_RATE);
}

/** Whether a write that failed so may have been applied all the same: no reply came, or the
 * host answered -6 (on HTTP: a database that went away while the command committed). */
function outcomeUnknown(error) {
  return (
    error instanceof GameError &&
    (error.kind === "network" || error.kind === "timeout" || error.ret === -6 || error.status === 503)
  );
}
