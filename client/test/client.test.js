// The client against a real game-host (debug build, demo modules), over real HTTP.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { GameClient, GameError, memoryStorage, SESSION_KEY } from "../src/index.js";
import { freePort, startHost } from "./host.js";

/** A fetch that counts its calls, keeps each one's `Idempotency-Key`, and otherwise is the
 * real one. */
function countingFetch() {
  const counted = (url, init) => {
    counted.calls += 1;
    counted.keys.push(init?.headers?.["Idempotency-Key"]);
    return fetch(url, init).catch((error) => {
      counted.failures += 1;
      throw error;
    });
  };
  counted.calls = 0;
  counted.failures = 0;
  counted.keys = [];
  return counted;
}

/** A real fetch whose first `/logic` reply is lost on the way back, after the host answered
 * (the command was applied): the client sees a network error, as when a connection drops. */
function losingFirstReply() {
  const lossy = async (url, init) => {
    const response = await fetch(url, init);
    lossy.responses.push(response);
    if (url.endsWith("/logic") && !lossy.lost) {
      lossy.lost = true;
      await response.arrayBuffer();
      throw new TypeError("the connection was lost");
    }
    return response;
  };
  lossy.lost = false;
  lossy.responses = [];
  return lossy;
}

let accountNumber = 0;
const newAccount = () => `client_${process.pid}_${++accountNumber}`;

describe("with the demo modules", () => {
  let host;
  before(async () => {
    host = await startHost();
  });
  after(async () => {
    await host?.stop();
  });

  test("login, then commands resolve to the reply data", async () => {
    const game = new GameClient({ baseUrl: host.url, storage: memoryStorage() });
    const session = await game.login(newAccount(), { name: "Alice" });
    assert.match(session.playerId, /^[0-9a-f]{32}$/);
    const player = await game.call("1203");
    assert.equal(player.player_id, session.playerId);
    assert.equal(player.name, "Alice");
    assert.equal(player.gold, 1000);
    const { goods } = await game.call("1101");
    assert.ok(goods.length >= 3);
    const bought = await game.call("1103", { id: "potion", count: 2 });
    assert.equal(bought.gold, 900);
    assert.equal(bought.items.potion, 2);
  });

  test("the session is kept across page reloads (a new client on the same storage)", async () => {
    const storage = memoryStorage();
    const first = new GameClient({ baseUrl: host.url, storage });
    const session = await first.login(newAccount());
    const reloaded = new GameClient({ baseUrl: host.url, storage });
    assert.deepEqual(reloaded.session, session);
    const player = await reloaded.call("1203");
    assert.equal(player.player_id, session.playerId);
  });

  test("a game refusal and a host error are told apart", async () => {
    const game = new GameClient({ baseUrl: host.url, storage: memoryStorage() });
    await game.login(newAccount());
    const poor = await game.call("1103", { id: "sword", count: 99 }).catch((e) => e);
    assert.ok(poor instanceof GameError);
    assert.equal(poor.ret, 1);
    assert.equal(poor.cmd, "1104");
    assert.equal(poor.kind, "refused");
    assert.ok(poor.refused);
    assert.ok(poor.msg.length > 0);

    const unknown = await game.call("9901").catch((e) => e);
    assert.equal(unknown.ret, -1);
    assert.equal(unknown.kind, "host");
    assert.equal(unknown.refused, false);
    assert.ok(unknown.msg.length > 0);

    const bad = await game.call("12a3").catch((e) => e);
    assert.equal(bad.ret, -2);
    assert.equal(bad.status, 400);
  });

  test("logout ends the session on the host and here", async () => {
    const storage = memoryStorage();
    const game = new GameClient({ baseUrl: host.url, storage });
    const { token } = await game.login(newAccount());
    await game.logout();
    assert.equal(game.session, null);
    assert.equal(storage.getItem(SESSION_KEY), null);
    // The old token is refused by the host: -3, and the client says to log in again.
    storage.setItem(SESSION_KEY, JSON.stringify({ token, playerId: "x", account: "x" }));
    const error = await game.call("1203").catch((e) => e);
    assert.equal(error.ret, -3);
    assert.ok(error.loggedOut);
    assert.equal(game.session, null, "a refused session is forgotten");
  });

  test("a call before login is refused without a request", async () => {
    const fetch = countingFetch();
    const game = new GameClient({ baseUrl: host.url, storage: memoryStorage(), fetch });
    const error = await game.call("1203").catch((e) => e);
    assert.equal(error.ret, -3);
    assert.equal(fetch.calls, 0);
  });

  test("a bad account is refused with the host's words", async () => {
    const game = new GameClient({ baseUrl: host.url, storage: memoryStorage() });
    const error = await game.login("no spaces allowed").catch((e) => e);
    assert.equal(error.ret, -2);
    assert.match(error.msg, /account/);
    assert.equal(game.session, null);
  });

  test("a write whose reply was lost is sent again under its key and applied once", async () => {
    const fetch = losingFirstReply();
    const game = new GameClient({ baseUrl: host.url, storage: memoryStorage(), fetch });
    await game.login(newAccount());
    const bought = await game.call("1103", { id: "potion", count: 1 });
    assert.deepEqual(bought, { gold: 950, items: { potion: 1 } }, "the first attempt's reply");
    const [, first, retry] = fetch.responses;
    assert.equal(first.headers.get("idempotent-replayed"), null);
    assert.equal(retry.headers.get("idempotent-replayed"), "true");
    const player = await game.call("1203");
    assert.equal(player.gold, 950, "bought once");
    assert.equal(player.items.potion, 1);
  });

  test("each call has a key of its own, the same on each of its attempts", async () => {
    const fetch = countingFetch();
    const game = new GameClient({ baseUrl: host.url, storage: memoryStorage(), fetch });
    await game.login(newAccount());
    fetch.keys = [];
    await game.call("1103", { id: "potion", count: 1 });
    await game.call("1103", { id: "potion", count: 1 });
    const [one, two] = fetch.keys;
    assert.match(one, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual(one, two, "two purchases are two requests");
    assert.equal((await game.call("1203")).gold, 900);
  });

  test("health", async () => {
    const game = new GameClient({ baseUrl: host.url, storage: memoryStorage() });
    assert.deepEqual(await game.health(), { ret: 0, status: "ok" });
  });
});

describe("when the host cannot be reached", () => {
  test("reads are retried with backoff, purchases once more under the same key", async () => {
    const port = await freePort(); // nothing listens there
    const storage = memoryStorage();
    storage.setItem(SESSION_KEY, JSON.stringify({ token: "t", playerId: "p", account: "a" }));
    const fetch = countingFetch();
    const game = new GameClient({
      baseUrl: `http://127.0.0.1:${port}`,
      storage,
      fetch,
      retries: 2,
      backoffMs: 10,
    });
    const read = await game.call("1203").catch((e) => e);
    assert.equal(read.kind, "network");
    assert.equal(read.ret, -6);
    assert.equal(fetch.calls, 3, "one attempt and two retries");

    fetch.calls = 0;
    fetch.keys = [];
    const buy = await game.call("1103", { id: "potion", count: 1 }).catch((e) => e);
    assert.equal(buy.kind, "network");
    assert.equal(fetch.calls, 2, "a purchase is sent again once (writeRetries)");
    assert.equal(fetch.keys[0], fetch.keys[1], "under the same key");
    assert.ok(fetch.keys[0]);

    fetch.calls = 0;
    const once = new GameClient({ baseUrl: game.baseUrl, storage, fetch, writeRetries: 0 });
    await once.call("1103", { id: "potion", count: 1 }).catch((e) => e);
    assert.equal(fetch.calls, 1, "writeRetries: 0 sends a write once");
  });

  test("a read sent while the host is down succeeds once it is back", async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const fetch = countingFetch();
    const game = new GameClient({
      baseUrl: `http://${address}`,
      storage: memoryStorage(),
      fetch,
      retries: 8,
      backoffMs: 50,
    });
    const first = await startHost({ listen: address });
    const session = await game.login(newAccount());
    await first.stop({ keepDirs: true });
    fetch.calls = 0;
    fetch.failures = 0;
    const pending = game.call("1203");
    // Only once an attempt has failed: a host that starts first binds the address before it
    // says it listens, and the first attempt would wait in its backlog and succeed.
    while (fetch.failures === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    // The same address, modules and database: the session is still valid after the restart.
    const second = await startHost({ listen: address, dirs: first.dirs });
    try {
      const player = await pending;
      assert.equal(player.player_id, session.playerId);
      assert.ok(fetch.calls >= 2, `a failed attempt, then the retry (${fetch.calls} calls)`);
    } finally {
      await second.stop();
    }
  });
});

describe("with a slow module", () => {
  let host;
  before(async () => {
    host = await startHost({ modules: ["player", "fixture_faulty"] });
  });
  after(async () => {
    await host?.stop();
  });

  test("a call that outlives the client's timeout rejects with kind timeout", async () => {
    const fetch = countingFetch();
    const game = new GameClient({ baseUrl: host.url, storage: memoryStorage(), fetch, timeoutMs: 200 });
    await game.login(newAccount());
    fetch.calls = 0;
    const error = await game.call("9007", { ms: 1500 }).catch((e) => e);
    assert.equal(error.kind, "timeout");
    assert.equal(error.ret, -7);
    assert.equal(fetch.calls, 1, "not a read command: not sent again");
  });
});
