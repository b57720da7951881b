// Two players in two browser pages (setup.js: headless Chromium, the real game-host serving
// client/): a gift and a message from one page show at once on the other, over its socket.

import assert from "node:assert/strict";
import { test } from "node:test";
import { hostAndBrowser, playerPage, screenshot, text } from "./setup.js";

const env = hostAndBrowser();

test("a gift and a message from one page show on the other at once", async () => {
  const alice = `gifter_${process.pid}`;
  const bob = `getter_${process.pid}`;
  const giver = await playerPage(env, alice);
  const getter = await playerPage(env, bob);
  // Each page's socket is open before anything is sent to it.
  for (const { page } of [giver, getter]) {
    await page.waitForFunction(() => document.querySelector("#socket-state").textContent === "(live)");
  }

  await giver.page.fill("#gift-form [name=to]", bob);
  await giver.page.fill("#gift-form [name=gold]", "150");
  await giver.page.click("#gift-form button");
  await giver.page.waitForFunction(() => document.querySelector("#gold").textContent === "850");
  assert.match(await text(giver.page, "#message"), /Gave 150 gold/);

  // Bob's page did not ask: the push came over its socket.
  await getter.page.waitForSelector('#inbox li[data-kind="gift"]');
  assert.equal(await text(getter.page, '#inbox li[data-kind="gift"]'), `Tester (${alice}) gave you 150 gold.`);
  assert.equal(await text(getter.page, "#gold"), "1150");
  await screenshot(getter.page, "social-1-gift-received");

  await giver.page.fill("#message-form [name=to]", bob);
  await giver.page.fill("#message-form [name=text]", "enjoy!");
  await giver.page.click("#message-form button");
  await getter.page.waitForSelector('#inbox li[data-kind="message"]');
  assert.equal(await text(getter.page, '#inbox li[data-kind="message"]'), `Tester (${alice}): enjoy!`);
  await screenshot(getter.page, "social-2-message-received");

  // A gift to nobody is refused in the module's words, and moves nothing.
  await giver.page.fill("#gift-form [name=to]", "nobody_here");
  await giver.page.click("#gift-form button");
  await giver.page.waitForFunction(() => document.querySelector("#message").className === "error");
  assert.match(await text(giver.page, "#message"), /no player has the account `nobody_here`/);
  assert.equal(await text(giver.page, "#gold"), "850");

  // What the page shows is what the host holds.
  await getter.page.reload();
  await getter.page.waitForFunction(() => document.querySelector("#gold").textContent === "1150");
  assert.deepEqual(giver.errors, []);
  assert.deepEqual(getter.errors, []);
});
