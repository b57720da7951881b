// The SDK's socket in headless Chromium, with the browser's own WebSocket: opened on the page's
// own origin (baseUrl ""), commands over it, logout closes it. test/socket.test.js covers the
// rest against the host from Node.

import assert from "node:assert/strict";
import { test } from "node:test";
import { hostAndBrowser } from "./setup.js";

const env = hostAndBrowser();

test("the SDK's socket in the browser: same-origin address, commands over it, closed by logout", async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  const sockets = [];
  page.on("websocket", (socket) => sockets.push(socket.url()));
  await page.goto(`${env.host.url}/`);
  const seen = await page.evaluate(async (account) => {
    const { GameClient } = await import("/src/index.js");
    const requests = [];
    const fetch = (url, init) => {
      requests.push(new URL(url, location.href).pathname);
      return window.fetch(url, init);
    };
    const game = new GameClient({ socket: true, fetch, storage: sessionStorage });
    const events = [];
    game.on("open", ({ playerId }) => events.push(["open", playerId]));
    game.on("close", ({ code, reason, reconnectMs }) => events.push(["close", code, reason, reconnectMs]));
    const opened = new Promise((resolve) => game.on("open", resolve));
    const session = await game.login(account, { name: "Sock" });
    await opened;
    const state = game.socketState;
    const player = await game.call("1203");
    const bought = await game.call("1103", { id: "potion", count: 1 });
    const refused = await game
      .call("1103", { id: "sword", count: 99 })
      .catch((e) => ({ ret: e.ret, cmd: e.cmd, status: e.status }));
    await game.logout();
    return { session, state, player, bought, refused, requests, events, after: game.socketState };
  }, `browser_socket_${process.pid}`);

  assert.deepEqual(sockets, [`${env.host.url.replace("http:", "ws:")}/ws`], "the page's own origin, /ws");
  assert.equal(seen.state, "open");
  assert.equal(seen.player.player_id, seen.session.playerId);
  assert.equal(seen.player.name, "Sock");
  assert.deepEqual(seen.bought, { gold: 950, items: { potion: 1 } });
  assert.deepEqual(seen.refused, { ret: 1, cmd: "1104", status: 0 });
  assert.deepEqual(seen.requests, ["/login", "/logout"], "the commands went over the socket");
  assert.deepEqual(seen.events, [
    ["open", seen.session.playerId],
    ["close", 1000, "logged out", null],
  ]);
  assert.equal(seen.after, "closed");
  assert.deepEqual(errors, []);
  await context.close();
});
