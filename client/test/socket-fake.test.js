// The socket's bookkeeping with a fake WebSocket that the test drives by hand: the first
// message, pushes delivered once each and resumed with `since`, replies matched by cid, what is
// sent again after a close and what is not, reconnecting and when not to. No host: the host
// sends no pushes yet, and some closes (4000, a lost welcome) are hard to cause for real.
// test/socket.test.js runs the same client against the real host.

import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import { GameClient, GameError, memoryStorage, SESSION_KEY, socketUrlFor } from "../src/index.js";

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

/** A WebSocket the test plays the host of. Each instance is kept in `FakeSocket.made`. */
class FakeSocket {
  static made = [];

  constructor(url) {
    this.url = url;
    this.readyState = CONNECTING;
    this.sent = [];
    this.closedBy = null;
    FakeSocket.made.push(this);
  }

  send(text) {
    if (this.readyState !== OPEN) throw new Error("not open");
    this.sent.push(JSON.parse(text));
  }

  /** The client closes it: no event comes back to it (it has let go of the socket). */
  close(code, reason) {
    this.closedBy = { code, reason };
    this.readyState = CLOSED;
  }

  // The host's side.

  open() {
    this.readyState = OPEN;
    this.onopen?.({});
  }

  /** Opens and answers the token as the host does. */
  welcome(playerId = "p1") {
    this.open();
    this.message({ ret: 0, player_id: playerId });
  }

  message(body) {
    this.onmessage?.({ data: typeof body === "string" ? body : JSON.stringify(body) });
  }

  hostCloses(code, reason = "") {
    this.readyState = CLOSED;
    this.onclose?.({ code, reason });
  }
}

/** A fetch that answers `/logic` with `reply` and keeps each request. */
function fakeFetch(reply = (body) => ({ ret: 0, cmd: String(Number(body.cmd) + 1), data: { via: "http" } })) {
  const fetch = async (url, init) => {
    const body = JSON.parse(init.body);
    fetch.requests.push({ url, body, key: init.headers["Idempotency-Key"] });
    return new Response(JSON.stringify(reply(body)), { status: 200 });
  };
  fetch.requests = [];
  return fetch;
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

async function waitFor(what, predicate, ms = 2000) {
  const until = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Every client a test made: disconnected after it, so that a failed test leaves no
 * reconnect going. */
const clients = [];
afterEach(() => {
  for (const game of clients.splice(0)) game.disconnect();
});

/** A logged-in client (a kept session) on the fake socket, its events recorded. */
async function client(options = {}) {
  FakeSocket.made = [];
  const storage = memoryStorage();
  storage.setItem(SESSION_KEY, JSON.stringify({ token: "t1", playerId: "p1", account: "a" }));
  const fetch = options.fetch ?? fakeFetch();
  const game = new GameClient({
    baseUrl: "http://game.test",
    storage,
    fetch,
    socket: true,
    WebSocket: FakeSocket,
    reconnectMs: 4,
    reconnectMaxMs: 40,
    backoffMs: 1,
    ...options,
  });
  clients.push(game);
  const events = { push: [], open: [], close: [], loggedout: [] };
  for (const name of Object.keys(events)) game.on(name, (value) => events[name].push(value));
  await tick(); // the socket opens after the constructor
  return { game, fetch, events, storage, socket: () => FakeSocket.made.at(-1) };
}

describe("the socket's address", () => {
  test("is /ws beside the API: http becomes ws, https wss", () => {
    assert.equal(socketUrlFor("http://127.0.0.1:8000"), "ws://127.0.0.1:8000/ws");
    assert.equal(socketUrlFor("https://game.example.com/"), "wss://game.example.com/ws");
    assert.equal(socketUrlFor("https://example.com/game"), "wss://example.com/game/ws");
    assert.equal(socketUrlFor("", "https://game.example.com/play/index.html"), "wss://game.example.com/ws");
    assert.throws(() => socketUrlFor(""), TypeError, "no page to be relative to");
  });

  test("socket: true without a WebSocket class or an address is refused at once", () => {
    // As in Node 20: no global WebSocket (Node 22 has one).
    const global = Object.getOwnPropertyDescriptor(globalThis, "WebSocket");
    Object.defineProperty(globalThis, "WebSocket", { value: undefined, configurable: true, writable: true });
    try {
      assert.throws(
        () => new GameClient({ baseUrl: "http://x", socket: true, storage: memoryStorage() }),
        /WebSocket class/,
      );
    } finally {
      if (global) Object.defineProperty(globalThis, "WebSocket", global);
      else delete globalThis.WebSocket;
    }
    assert.throws(
      () => new GameClient({ socket: true, WebSocket: FakeSocket, storage: memoryStorage() }),
      /baseUrl/,
    );
    const off = new GameClient({ baseUrl: "http://x", storage: memoryStorage() });
    assert.equal(off.socketState, "off", "without the option, no socket");
  });
});

describe("the socket, against a fake host", () => {
  test("a kept session opens the socket; its first message is the token", async () => {
    const { game, events, socket } = await client();
    assert.equal(FakeSocket.made.length, 1);
    assert.equal(socket().url, "ws://game.test/ws");
    assert.equal(game.socketState, "connecting");
    socket().open();
    assert.deepEqual(socket().sent, [{ token: "t1" }], "no since before any push");
    socket().message({ ret: 0, player_id: "p1" });
    assert.equal(game.socketState, "open");
    assert.deepEqual(events.open, [{ playerId: "p1" }]);
    game.disconnect();
    assert.equal(game.socketState, "off");
    assert.deepEqual(socket().closedBy, { code: 1000, reason: "the client disconnected" });
  });

  test("each push is handed over once: a repeated or older id is dropped", async () => {
    const { game, events, socket } = await client();
    socket().welcome();
    const push = (id, data = { n: id }) => socket().message({ push: "mail", id, data });
    push(1);
    push(2);
    push(2);
    push(1);
    push(3);
    socket().message({ push: "mail", id: "4", data: {} }); // not an integer: dropped
    socket().message({ push: "mail", id: -1, data: {} });
    socket().message({ push: "mail", id: 4 }); // no data: {}
    assert.deepEqual(
      events.push,
      [
        { kind: "mail", id: 1, data: { n: 1 } },
        { kind: "mail", id: 2, data: { n: 2 } },
        { kind: "mail", id: 3, data: { n: 3 } },
        { kind: "mail", id: 4, data: {} },
      ],
    );
    assert.equal(game.lastPushId, 4);
    const seen = [];
    const listener = (p) => seen.push(p.id);
    game.on("push", listener);
    push(5);
    game.off("push", listener);
    push(6);
    assert.deepEqual(seen, [5], "off stops a listener");
    game.disconnect();
  });

  test("after a lost connection the client connects again and resumes after the last push", async () => {
    const { game, events, socket } = await client();
    const first = socket();
    first.welcome();
    first.message({ push: "mail", id: 7, data: {} });
    first.hostCloses(1006);
    assert.equal(game.socketState, "closed");
    assert.equal(events.close.length, 1);
    assert.equal(events.close[0].code, 1006);
    assert.ok(events.close[0].reconnectMs >= 2 && events.close[0].reconnectMs <= 4, "within the first wait");
    await waitFor("a new socket", () => FakeSocket.made.length === 2);
    const second = socket();
    second.open();
    assert.deepEqual(second.sent, [{ token: "t1", since: 7 }]);
    second.message({ ret: 0, player_id: "p1" });
    // The host sends again what came after `since`; anything at or before it is a duplicate.
    second.message({ push: "mail", id: 7, data: { again: true } });
    second.message({ push: "mail", id: 8, data: {} });
    assert.deepEqual(events.push.map((p) => p.id), [7, 8]);
    assert.equal(events.open.length, 2);
    game.disconnect();
  });

  test("the wait before connecting again doubles, with jitter, up to reconnectMaxMs", async () => {
    const { game, events, socket } = await client({ reconnectMs: 4, reconnectMaxMs: 16 });
    for (let attempt = 1; attempt <= 5; attempt++) {
      socket().hostCloses(1006); // the connection fails before it opens
      const wait = Math.min(16, 4 * 2 ** (attempt - 1));
      const { reconnectMs } = events.close.at(-1);
      assert.ok(reconnectMs >= wait / 2 && reconnectMs <= wait, `attempt ${attempt}: ${reconnectMs} ms`);
      await waitFor("a new socket", () => FakeSocket.made.length === attempt + 1);
    }
    // Once open, the next close starts again from the first wait.
    socket().welcome();
    socket().hostCloses(1001, "the host is stopping or restarting: connect again and resume");
    assert.ok(events.close.at(-1).reconnectMs <= 4);
    // "Connect again later": the first wait after 1013 is already that of the third attempt.
    await waitFor("a new socket", () => FakeSocket.made.length === 7);
    socket().welcome();
    socket().hostCloses(1013);
    assert.ok(events.close.at(-1).reconnectMs >= 8);
    game.disconnect();
  });

  test("a host that does not welcome the token in time is given up and tried again", async () => {
    const { game, events, socket } = await client({ timeoutMs: 30 });
    const first = socket();
    first.open(); // the token goes out; no answer comes
    await waitFor("the close", () => events.close.length === 1);
    assert.equal(events.close[0].code, 1006);
    assert.match(events.close[0].reason, /no welcome/);
    assert.notEqual(first.closedBy, null, "the silent socket was closed");
    await waitFor("a new socket", () => FakeSocket.made.length === 2);
    game.disconnect();
  });

  test("4001 ends the session: no reconnect, loggedout with -3, the session forgotten", async () => {
    const { game, events, socket, storage } = await client();
    socket().open();
    socket().hostCloses(4001, "no session for this token (unknown, expired or ended): log in again");
    assert.equal(events.close.length, 1);
    assert.equal(events.close[0].code, 4001);
    assert.equal(events.close[0].reconnectMs, null);
    assert.equal(events.loggedout.length, 1);
    const error = events.loggedout[0];
    assert.ok(error instanceof GameError);
    assert.equal(error.ret, -3);
    assert.ok(error.loggedOut);
    assert.match(error.msg, /log in again/);
    assert.equal(storage.getItem(SESSION_KEY), null);
    assert.equal(game.session, null);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(FakeSocket.made.length, 1, "not opened again");
    const call = await game.call("1203").catch((e) => e);
    assert.equal(call.ret, -3, "calls say to log in");
    game.disconnect();
  });

  test("4000 (the host refused the first message) is not tried again", async () => {
    const { game, events, socket } = await client();
    socket().open();
    socket().hostCloses(4000);
    assert.equal(events.close[0].reconnectMs, null);
    assert.ok(game.session, "the session is not the problem");
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(FakeSocket.made.length, 1);
    game.disconnect();
  });

  test("replies are matched to calls by cid, in whatever order they come", async () => {
    const { game, fetch, socket } = await client();
    socket().welcome();
    const record = game.call("1203");
    const goods = game.call("1101");
    const [a, b] = socket().sent.slice(1);
    assert.deepEqual(a, { cid: a.cid, cmd: "1203", data: {}, key: a.key });
    assert.deepEqual(b, { cid: b.cid, cmd: "1101", data: {}, key: b.key });
    assert.notEqual(a.cid, b.cid);
    assert.match(a.key, /^[0-9a-f-]{36}$/, "each call's idempotency key goes with it");
    assert.notEqual(a.key, b.key);
    socket().message({ cid: b.cid, ret: 0, cmd: "1102", data: { goods: [] } });
    socket().message({ cid: 999, ret: 0, cmd: "1204", data: { stray: true } }); // no such call
    socket().message({ cid: a.cid, ret: 0, cmd: "1204", data: { gold: 1000 } });
    assert.deepEqual(await record, { gold: 1000 });
    assert.deepEqual(await goods, { goods: [] });
    const refused = game.call("1103", { id: "sword", count: 99 });
    const c = socket().sent.at(-1);
    socket().message({ cid: c.cid, ret: 1, cmd: "1104", msg: "not enough gold" });
    const error = await refused.catch((e) => e);
    assert.equal(error.ret, 1);
    assert.equal(error.cmd, "1104");
    assert.ok(error.refused);
    assert.equal(error.status, 0, "no HTTP status over the socket");
    assert.equal(fetch.requests.length, 0, "nothing over HTTP");
    game.disconnect();
  });

  test("while the socket is not open, calls go over HTTP", async () => {
    const { game, fetch, socket } = await client();
    assert.equal(game.socketState, "connecting");
    assert.deepEqual(await game.call("1203"), { via: "http" });
    socket().open(); // the token sent, no welcome yet
    assert.deepEqual(await game.call("1203"), { via: "http" });
    assert.equal(fetch.requests.length, 2);
    assert.equal(socket().sent.length, 1, "only the token went over the socket");
    game.disconnect();
    assert.deepEqual(await game.call("1203"), { via: "http" });
  });

  test("a read whose socket closed before its reply is sent again over HTTP", async () => {
    const { game, fetch, socket } = await client();
    socket().welcome();
    const read = game.call("1203");
    socket().hostCloses(1006);
    assert.deepEqual(await read, { via: "http" });
    assert.equal(fetch.requests.length, 1);
    game.disconnect();
  });

  test("a write whose socket closed before its reply is sent again over HTTP under its key", async () => {
    const { game, fetch, socket } = await client();
    socket().welcome();
    const write = game.call("1103", { id: "potion", count: 1 });
    const sent = socket().sent.at(-1);
    assert.equal(sent.cmd, "1103");
    socket().hostCloses(1001, "the host is stopping or restarting: connect again and resume");
    // The host applies a key once: the retry is answered (with the first reply if it was).
    assert.deepEqual(await write, { via: "http" });
    assert.equal(fetch.requests.length, 1);
    assert.equal(fetch.requests[0].key, sent.key, "the same key as over the socket");
    // Before the next client: its reconnect would be the newest fake socket.
    game.disconnect();

    const once = await client({ writeRetries: 0 });
    once.socket().welcome();
    const lost = once.game.call("1103", { id: "potion", count: 1 });
    once.socket().hostCloses(1006);
    const error = await lost.catch((e) => e);
    assert.ok(error instanceof GameError);
    assert.equal(error.kind, "network");
    assert.equal(error.ret, -6);
    assert.equal(error.maybeApplied, true, "no retry left: it may have been applied");
    assert.equal(once.fetch.requests.length, 0);
    once.game.disconnect();
  });

  test("a write that timed out on the socket is not sent again; one that got -6 is, under its key", async () => {
    const { game, fetch, socket } = await client({ timeoutMs: 30 });
    socket().welcome();
    const slow = await game.call("1001").catch((e) => e);
    assert.equal(slow.kind, "timeout");
    assert.equal(slow.maybeApplied, true);
    assert.equal(fetch.requests.length, 0, "the host may still be running it");
    // -6: the host was unavailable; sent again under the same key (the socket is still up).
    const unavailable = game.call("1001");
    const first = socket().sent.at(-1);
    socket().message({ cid: first.cid, ret: -6, cmd: "1002", msg: "the database is unavailable" });
    await waitFor("the retry", () => socket().sent.at(-1).cid !== first.cid);
    const again = socket().sent.at(-1);
    assert.equal(again.key, first.key);
    socket().message({ cid: again.cid, ret: 0, cmd: "1002", data: { via: "socket" } });
    assert.deepEqual(await unavailable, { via: "socket" });
    assert.equal(fetch.requests.length, 0);
    game.disconnect();
  });

  test("a write refused for the socket's rate (not run) is sent again under its key", async () => {
    const { game, socket } = await client();
    socket().welcome();
    const write = game.call("1103", { id: "potion", count: 1 });
    const first = socket().sent.at(-1);
    socket().message({
      cid: first.cid,
      ret: -6,
      cmd: "1104",
      msg: "too many commands on this socket (at most socket.commands_per_sec = 20 a second, and command_burst = 40 at once or unanswered): slow down, then send it again",
    });
    await waitFor("the retry", () => socket().sent.length === 3);
    const again = socket().sent.at(-1);
    assert.equal(again.key, first.key);
    assert.notEqual(again.cid, first.cid);
    socket().message({ cid: again.cid, ret: 0, cmd: "1104", data: { via: "socket" } });
    assert.deepEqual(await write, { via: "socket" });
    game.disconnect();

    const once = await client({ writeRetries: 0 });
    once.socket().welcome();
    const refused = once.game.call("1103", { id: "potion", count: 1 });
    const { cid: last } = once.socket().sent.at(-1);
    once.socket().message({ cid: last, ret: -6, cmd: "1104", msg: "too many commands on this socket" });
    const error = await refused.catch((e) => e);
    assert.equal(error.ret, -6);
    assert.equal(error.maybeApplied, false, "the host said it did not run it");
    once.game.disconnect();
  });

  test("socketWrites: false sends writes over HTTP and reads over the socket", async () => {
    const { game, fetch, socket } = await client({ socketWrites: false });
    socket().welcome();
    assert.deepEqual(await game.call("1103", { id: "potion", count: 1 }), { via: "http" });
    const read = game.call("1203");
    socket().message({ cid: socket().sent.at(-1).cid, ret: 0, cmd: "1204", data: { via: "socket" } });
    assert.deepEqual(await read, { via: "socket" });
    assert.equal(fetch.requests.length, 1);
    game.disconnect();
  });

  test("a read that timed out on the socket is sent again over HTTP (the socket may be dead)", async () => {
    const { game, fetch, socket } = await client({ timeoutMs: 30 });
    socket().welcome();
    assert.deepEqual(await game.call("1203"), { via: "http" });
    assert.equal(socket().sent.length, 2, "one attempt over the socket");
    assert.equal(fetch.requests.length, 1, "the retry over HTTP");
    game.disconnect();
  });

  test("a -3 on the socket forgets the session and the host's 4001 is not answered by a reconnect", async () => {
    const { game, events, socket } = await client();
    socket().welcome();
    const call = game.call("1203");
    const { cid } = socket().sent.at(-1);
    socket().message({ cid, ret: -3, cmd: "1204", msg: "the session has ended: log in again" });
    const error = await call.catch((e) => e);
    assert.equal(error.ret, -3);
    assert.equal(game.session, null);
    assert.equal(events.loggedout.length, 1, "heard once");
    socket().hostCloses(4001, "no session for this token (unknown, expired or ended): log in again");
    assert.equal(events.loggedout.length, 1, "still once");
    assert.deepEqual(events.close.map((c) => [c.code, c.reconnectMs]), [[4001, null]]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(FakeSocket.made.length, 1);
  });

  test("logout closes the socket; a login opens one, pushes counted afresh for another player", async () => {
    const fetch = fakeFetch((body) => ({
      ret: 0,
      player_id: body.account === "bob" ? "p2" : "p1",
      token: `t-${body.account}`,
    }));
    const { game, events, socket } = await client({ fetch });
    socket().welcome("p1");
    socket().message({ push: "mail", id: 5, data: {} });
    await game.logout();
    assert.deepEqual(socket().closedBy, { code: 1000, reason: "logged out" });
    assert.deepEqual(events.close.at(-1), { code: 1000, reason: "logged out", reconnectMs: null });
    assert.equal(game.socketState, "closed");
    assert.equal(events.loggedout.length, 0, "an asked-for logout is not news");
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(FakeSocket.made.length, 1, "not opened again after logout");

    await game.login("bob");
    assert.equal(FakeSocket.made.length, 2);
    socket().open();
    assert.deepEqual(socket().sent, [{ token: "t-bob" }], "another player: no since");
    socket().message({ ret: 0, player_id: "p2" });
    assert.equal(game.lastPushId, null);
    socket().message({ push: "mail", id: 1, data: {} });
    assert.deepEqual(events.push.map((p) => p.id), [5, 1]);
    game.disconnect();
  });
});
