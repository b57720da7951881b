// game-host client: the browser side of docs/PROTOCOL.md v1 (POST /login, /logic, /logout).
//
//   import { GameClient } from "./index.js";
//   const game = new GameClient({ baseUrl: "https://game.example.com" });
//   await game.login("alice", { name: "Alice" });
//   const { goods } = await game.call("1101");
//   try { await game.call("1103", { id: "potion", count: 2 }); }
//   catch (e) { if (e.refused) show(e.msg); else throw e; }
//
// No framework, no build step: an ES module for browsers and Node 18+ (both have `fetch`).

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
  constructor({ ret, cmd, msg, status = 0, kind }) {
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

export class GameClient {
  /**
   * @param {object} [options]
   * @param {string} [options.baseUrl] the host's address; "" (the default) is the page's own.
   * @param {Storage} [options.storage] where the session is kept across page reloads
   *   (default `localStorage`, or memory where there is none).
   * @param {number} [options.timeoutMs] per request (default 10 s).
   * @param {number} [options.retries] extra attempts for read commands (default 3).
   * @param {number} [options.writeRetries] extra attempts for any other command, with the same
   *   idempotency key, after a network error or -6 (default 1; 0 sends each write once).
   * @param {number} [options.backoffMs] the first retry's wait, doubled each time (default 200).
   * @param {string[]} [options.readCommands] commands safe to send again (default READ_COMMANDS).
   * @param {typeof fetch} [options.fetch] for tests or other environments.
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

  /**
   * Logs in as `account` (1 to 64 of A-Z a-z 0-9 _ . -), creating the player on first login.
   * @param {string} account
   * @param {{ name?: string, head_img?: string }} [profile] used when the player is created.
   * @returns {Promise<{ token: string, playerId: string, account: string }>}
   */
  async login(account, profile = {}) {
    const reply = await this.#post("/login", { account, ...profile }, { cmd: "login" });
    const session = { token: reply.token, playerId: reply.player_id, account };
    this.storage.setItem(SESSION_KEY, JSON.stringify(session));
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
    for (let attempt = 1; ; attempt++) {
      try {
        const context = { cmd, token: session.token, key };
        const reply = await this.#post("/logic", { cmd, data }, context);
        return reply.data ?? {};
      } catch (error) {
        if (error instanceof GameError && error.loggedOut) this.#forget(session.token);
        const again = read ? retryable(error) : retryableWrite(error);
        if (attempt >= attempts || !again) throw error;
        // 200, 400, 800 ms..., each with up to half again at random so clients spread out.
        const wait = this.backoffMs * 2 ** (attempt - 1);
        await sleep(wait + Math.random() * wait * 0.5);
      }
    }
  }

  /** Ends the session on the host (every host) and forgets it here. */
  async logout() {
    const session = this.session;
    if (!session) return;
    try {
      await this.#post("/logout", {}, { cmd: "logout", token: session.token });
    } catch (error) {
      // An already expired session is as good as ended.
      if (!(error instanceof GameError && error.loggedOut)) throw error;
    } finally {
      this.#forget(session.token);
    }
  }

  /** `GET /health`: `{ ret: 0, status: "ok" }` while the host serves. */
  async health() {
    return this.#request("GET", "/health", undefined, { cmd: "health" });
  }

  #forget(token) {
    // A newer login (another tab) keeps its own session.
    if (this.session?.token === token) this.storage.removeItem(SESSION_KEY);
  }

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
    if (!reply || typeof reply.ret !== "number") {
      throw new GameError({
        ret: -6,
        cmd,
        msg: `the server answered HTTP ${response.status} without a game reply`,
        status: response.status,
      });
    }
    if (reply.ret !== 0) {
      throw new GameError({
        ret: reply.ret,
        cmd: reply.cmd ?? cmd,
        msg: reply.msg ?? `failed with ret ${reply.ret}`,
        status: response.status,
      });
    }
    return reply;
  }
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
