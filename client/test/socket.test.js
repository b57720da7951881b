// The client's socket (GET /ws) against a real game-host (debug build, demo modules): the same
// answers as over HTTP, HTTP while the socket is down, a reconnect across a host restart, the
// end of a session. The WebSocket class is the `ws` package's (a devDependency: `npm ci` in
// client/), else the runtime's own (Node 22+); with neither, these tests are skipped.

import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";
import { GameClient, GameError, memoryStorage, SESSION_KEY } from "../src/index.js";
import { freePort, startHost } from "./host.js";

let BaseSocket = globalThis.WebSocket;
try {
  BaseSocket = (await import("ws")).WebSocket;
} catch {
  // not installed: the runtime's own, if any
}
const skip = BaseSocket ? false : "no WebSocket class: npm ci in client/ (the ws package), or Node 22+";
if (skip) console.log(`SKIPPED the socket tests against the host: ${skip}`);

/** A WebSocket class that keeps each socket it makes and each message the client sends. */
function spySocket() {
  const Spy = class extends BaseSocket {
    constructor(...args) {
      super(...args);
      Spy.made.push(this);
    }

    send(text) {
      Spy.sent.push(JSON.parse(text));
      return super.send(text);
    }
  };
  Spy.made = [];
  Spy.sent = [];
  /** The commands sent (the first message of each socket, the token, left out). */
  Spy.commands = () => Spy.sent.filter((m) => m.cid !== undefined);
  return Spy;
}

/** A fetch that counts its `/logic` requests, and otherwise is the real one. */
function countingFetch() {
  const counted = (url, init) => {
    if (url.endsWith("/logic")) counted.logic += 1;
    return fetch(url, init);
  };
  counted.logic = 0;
  return counted;
}

/** The next `event` of `game` (the first that `match` accepts), or a failure after `ms`. */
function next(game, event, match = () => true, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      game.off(event, listener);
      reject(new Error(`no "${event}" within ${ms} ms`));
    }, ms);
    const listener = (value) => {
      if (!match(value)) return;
      clearTimeout(timer);
      game.off(event, listener);
      resolve(value);
    };
    game.on(event, listener);
  });
}

/** Resolves once the socket is open. */
function opened(game) {
  return game.socketState === "open" ? Promise.resolve() : next(game, "open");
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let accountNumber = 0;
const newAccount = () => `socket_${process.pid}_${++accountNumber}`;

/** Every socket client a test made, disconnected after it (an open socket or a pending
 * reconnect would keep the test process alive). */
const clients = [];
afterEach(() => {
  for (const game of clients.splice(0)) game.disconnect();
});

function socketClient(url, options = {}) {
  const WebSocket = options.WebSocket ?? spySocket();
  const fetch = options.fetch ?? countingFetch();
  const game = new GameClient({
    baseUrl: url,
    storage: memoryStorage(),
    socket: true,
    reconnectMs: 50,
    reconnectMaxMs: 400,
    ...options,
    WebSocket,
    fetch,
  });
  clients.push(game);
  return { game, WebSocket, fetch };
}

/** What a call came to, comparable across transports: the data, or the error's fields (its
 * HTTP status aside, which a socket does not have). */
async function outcome(promise) {
  try {
    return { data: await promise };
  } catch (error) {
    assert.ok(error instanceof GameError, String(error));
    const { ret, cmd, msg, kind, maybeApplied } = error;
    return { error: { ret, cmd, msg, kind, maybeApplied } };
  }
}

describe("the socket, with the demo modules", { skip }, () => {
  let host;
  before(async () => {
    host = await startHost();
  });
  after(async () => {
    await host?.stop();
  });

  test("commands over the socket answer as they do over HTTP", async () => {
    const { game, WebSocket, fetch } = socketClient(host.url);
    const http = new GameClient({ baseUrl: host.url, storage: memoryStorage() });
    const opening = next(game, "open");
    const session = await game.login(newAccount(), { name: "Alice" });
    assert.deepEqual(await opening, { playerId: session.playerId });
    assert.equal(game.socketState, "open");
    assert.deepEqual(WebSocket.sent[0], { token: session.token }, "the first message is the token");
    await http.login(newAccount(), { name: "Alice" });

    const script = [
      ["1203"],
      ["1101"],
      ["1103", { id: "potion", count: 2 }],
      ["1103", { id: "sword", count: 99 }], // a refusal: not enough gold
      ["1103", { id: "nothing", count: 1 }], // a refusal: no such good
      ["1001"],
      ["1001"], // a refusal: once a day
      ["1201", { name: "Alicia" }],
      ["1203"],
      ["9901"], // -1: no module
      ["12a3"], // -2: not a command
    ];
    for (const [cmd, data] of script) {
      const overSocket = await outcome(game.call(cmd, data));
      const overHttp = await outcome(http.call(cmd, data));
      if (overSocket.data?.player_id) {
        // Two players: the same record but for the id.
        assert.equal(overSocket.data.player_id, session.playerId);
        overSocket.data.player_id = overHttp.data.player_id;
      }
      assert.deepEqual(overSocket, overHttp, `${cmd} ${JSON.stringify(data ?? {})}`);
    }
    assert.equal(fetch.logic, 0, "no command went over HTTP");
    assert.deepEqual(
      WebSocket.commands().map((m) => m.cmd),
      script.map(([cmd]) => cmd),
    );
    const cids = WebSocket.commands().map((m) => m.cid);
    assert.equal(new Set(cids).size, cids.length, "a cid of its own per command");
    const error = await game.call("12a3").catch((e) => e);
    assert.equal(error.status, 0, "no HTTP status over the socket");
  });

  test("calls sent together are each answered with their own reply", async () => {
    const { game, WebSocket } = socketClient(host.url);
    const { playerId } = await game.login(newAccount());
    await opened(game);
    const [record, goods, bought, refused] = await Promise.all([
      game.call("1203"),
      game.call("1101"),
      game.call("1103", { id: "potion", count: 1 }),
      game.call("1103", { id: "sword", count: 99 }).catch((e) => e),
    ]);
    assert.equal(record.player_id, playerId);
    assert.ok(goods.goods.length >= 3);
    assert.deepEqual(bought, { gold: 950, items: { potion: 1 } });
    assert.equal(refused.ret, 1);
    assert.equal(WebSocket.commands().length, 4);
  });

  test("calls go over HTTP while the socket cannot open, and after disconnect()", async () => {
    const nowhere = `ws://127.0.0.1:${await freePort()}/ws`; // nothing listens there
    const { game, fetch, WebSocket } = socketClient(host.url, { socketUrl: nowhere });
    const closes = [];
    game.on("close", (c) => closes.push(c));
    const { playerId } = await game.login(newAccount());
    await next(game, "close");
    assert.equal(game.socketState, "closed");
    assert.equal(closes[0].code, 1006);
    assert.ok(closes[0].reconnectMs > 0, "it will try again");
    const player = await game.call("1203");
    assert.equal(player.player_id, playerId);
    assert.equal(fetch.logic, 1, "over HTTP");
    assert.equal(WebSocket.commands().length, 0);

    const other = socketClient(host.url);
    await other.game.login(newAccount());
    await opened(other.game);
    other.game.disconnect();
    assert.equal(other.game.socketState, "off");
    await other.game.call("1203");
    assert.equal(other.fetch.logic, 1, "over HTTP after disconnect()");
    await pause(150);
    assert.equal(other.WebSocket.made.length, 1, "not opened again");
  });

  test("logout closes the socket, which stays closed; the next login opens one", async () => {
    const { game, WebSocket } = socketClient(host.url);
    await game.login(newAccount());
    await opened(game);
    const closed = next(game, "close");
    await game.logout();
    assert.deepEqual(await closed, { code: 1000, reason: "logged out", reconnectMs: null });
    await pause(300);
    assert.equal(WebSocket.made.length, 1, "not opened again after logout");
    assert.equal(game.socketState, "closed");
    await game.login(newAccount());
    await opened(game);
    assert.equal(WebSocket.made.length, 2);
  });

  test("after a logout elsewhere the host closes the socket with 4001: -3, and no reconnect", async () => {
    const { game, WebSocket } = socketClient(host.url);
    const session = await game.login(newAccount());
    await opened(game);
    // The same session in another tab, which logs out over HTTP.
    const elsewhereStorage = memoryStorage();
    elsewhereStorage.setItem(SESSION_KEY, JSON.stringify(session));
    await new GameClient({ baseUrl: host.url, storage: elsewhereStorage }).logout();

    const loggedOut = next(game, "loggedout");
    const closed = next(game, "close");
    const error = await game.call("1203").catch((e) => e);
    assert.equal(error.ret, -3);
    assert.ok(error.loggedOut);
    assert.equal(WebSocket.commands().length, 1, "the call went over the socket");
    assert.equal((await loggedOut).ret, -3);
    const close = await closed;
    assert.equal(close.code, 4001);
    assert.match(close.reason, /log in again/);
    assert.equal(close.reconnectMs, null);
    assert.equal(game.session, null);
    await pause(300);
    assert.equal(WebSocket.made.length, 1, "not opened again");
    assert.equal(game.socketState, "closed");
  });

  test("a kept session that ended elsewhere: 4001 on opening, loggedout, no reconnect", async () => {
    const storage = memoryStorage();
    const ended = new GameClient({ baseUrl: host.url, storage });
    const session = await ended.login(newAccount());
    const elsewhereStorage = memoryStorage();
    elsewhereStorage.setItem(SESSION_KEY, JSON.stringify(session));
    await new GameClient({ baseUrl: host.url, storage: elsewhereStorage }).logout();

    const { game, WebSocket } = socketClient(host.url, { storage });
    const loggedOut = next(game, "loggedout");
    const close = await next(game, "close");
    assert.equal(close.code, 4001);
    assert.equal(close.reconnectMs, null);
    const error = await loggedOut;
    assert.equal(error.ret, -3);
    assert.match(error.msg, /log in again/);
    assert.equal(game.session, null);
    assert.equal(storage.getItem(SESSION_KEY), null);
    await pause(300);
    assert.equal(WebSocket.made.length, 1);
  });
});

describe("the socket, with a slow module", { skip }, () => {
  let host;
  before(async () => {
    host = await startHost({ modules: ["player", "mall", "fixture_faulty"] });
  });
  after(async () => {
    await host?.stop();
  });

  test("a read in flight when the socket closes is sent again over HTTP", async () => {
    // 9007 sleeps `ms`, then answers; here the client is told it only reads. The socket stays
    // down for seconds, so the read's retry (after backoffMs) finds it closed.
    const { game, WebSocket, fetch } = socketClient(host.url, {
      readCommands: ["1203", "9007"],
      reconnectMs: 10_000,
      reconnectMaxMs: 10_000,
    });
    await game.login(newAccount());
    await opened(game);
    const slow = game.call("9007", { ms: 500 });
    await pause(100);
    assert.equal(WebSocket.commands().length, 1);
    const closed = next(game, "close");
    WebSocket.made[0].close(3000, "the test closes it");
    const close = await closed;
    assert.ok(close.reconnectMs !== null, "a close the client did not ask for: it reconnects");
    assert.deepEqual(await slow, { slept: 500 });
    assert.equal(game.socketState, "closed");
    assert.equal(fetch.logic, 1, "the retry went over HTTP");
    assert.equal(WebSocket.commands().length, 1);
  });

  test("a write in flight when the socket closes is sent again over HTTP under its key: applied once", async () => {
    const { game, WebSocket, fetch } = socketClient(host.url, {
      reconnectMs: 10_000,
      reconnectMaxMs: 10_000,
    });
    await game.login(newAccount());
    await opened(game);
    const buy = game.call("1103", { id: "potion", count: 1 });
    // Closed at once: the host may have run the purchase, or not yet; the retry tells.
    WebSocket.made[0].close(3000, "the test closes it");
    const bought = await buy;
    assert.equal(bought.items.potion, 1);
    assert.equal(fetch.logic, 1, "sent again over HTTP");
    assert.equal(WebSocket.commands().length, 1, "once over the socket");
    assert.match(WebSocket.commands()[0].key, /^[0-9a-f-]{36}$/);
    const record = await game.call("1203");
    assert.equal(record.items.potion, 1, "applied once");
  });
});

describe("the socket across a host restart", { skip }, () => {
  test("the client reconnects to the new host and its next call goes over the socket", async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const first = await startHost({ listen: address });
    let second;
    try {
      const { game, WebSocket, fetch } = socketClient(`http://${address}`);
      const session = await game.login(newAccount());
      await opened(game);
      assert.equal((await game.call("1203")).player_id, session.playerId);

      const goingAway = next(game, "close");
      await first.stop({ keepDirs: true });
      const close = await goingAway;
      assert.equal(close.code, 1001, "the host said it was stopping");
      assert.ok(close.reconnectMs > 0);

      // The same address, modules and database: the session is still valid.
      const reopened = next(game, "open");
      second = await startHost({ listen: address, dirs: first.dirs });
      assert.deepEqual(await reopened, { playerId: session.playerId });
      const hellos = WebSocket.sent.filter((m) => m.token !== undefined);
      assert.ok(hellos.length >= 2);
      assert.deepEqual(hellos.at(-1), { token: session.token });

      const before = WebSocket.commands().length;
      const player = await game.call("1103", { id: "potion", count: 1 });
      assert.deepEqual(player, { gold: 950, items: { potion: 1 } });
      assert.equal(WebSocket.commands().length, before + 1, "over the new socket");
      assert.equal(fetch.logic, 0, "nothing over HTTP");
    } finally {
      await second?.stop();
      if (!second) await first.stop();
    }
  });
});
