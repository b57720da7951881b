// The operator console in a real browser, beside a player's demo page: find the player, grant
// gold with a reason, see the audit row; the player sees the gold after a refresh; a revoke
// logs the player out at their next call.

import assert from "node:assert/strict";
import { test } from "node:test";
import { hostAndBrowser, playerPage, screenshot, text } from "./setup.js";

const env = hostAndBrowser();

test("an operator grants gold with a reason and revokes the player's sessions", async () => {
  const account = `console_${process.pid}`;
  const { page: player, errors: playerErrors } = await playerPage(env, account);
  assert.equal(await text(player, "#gold"), "1000");

  // The player's page keeps its socket open: the console counts them online.
  await player.waitForFunction(() => document.querySelector("#socket-state").textContent === "(live)");

  const console_ = await (await env.browser.newContext()).newPage();
  const consoleErrors = [];
  console_.on("pageerror", (error) => consoleErrors.push(error.message));
  await console_.goto(`${env.host.adminUrl}/console/`);
  await console_.waitForSelector('#modules tr[data-module="mall"]');
  assert.match(await text(console_, "#online"), /: 1 player online \(1 socket open\)$/);
  // Each module's declared refusals, for client developers.
  assert.equal(
    await text(console_, '#modules tr[data-module="mall"] .refusals'),
    "1 not_enough_gold, 2 no_such_good, 3 bad_count",
  );
  // Its saved-data schema (no migrator: nothing stepped back).
  assert.equal(await text(console_, '#modules tr[data-module="mall"] .schema'), "1");
  // The catalogue's data tables, by hash (the files in the title).
  assert.match(await text(console_, '#modules tr[data-module="mall"] .tables'), /^[0-9a-f]{12}$/);
  await console_.fill("#who [name=operator]", "ops-ann");
  await screenshot(console_, "6-console");

  await console_.fill("#search [name=account]", account);
  await console_.click("#search button");
  await console_.waitForSelector("#player:not([hidden])");
  assert.equal(await text(console_, "#player-gold"), "1000");

  await console_.fill("#grant [name=gold]", "500");
  await console_.fill("#grant [name=reason]", "ticket 42: compensation");
  await console_.click("#grant button");
  await console_.waitForFunction(() => document.querySelector("#player-gold").textContent === "1500");
  await console_.waitForSelector("#audit tbody tr");
  const row = await console_.locator("#audit tbody tr").first().textContent();
  assert.match(row, /ops-ann/);
  assert.match(row, /grant/);
  assert.match(row, /ticket 42: compensation/);
  assert.match(row, /"gold":1000/);
  assert.match(row, /"gold":1500/);
  await screenshot(console_, "7-console-granted");

  // The player sees the new balance after a refresh.
  await player.reload();
  await player.waitForFunction(() => document.querySelector("#gold").textContent === "1500");
  await screenshot(player, "8-player-after-grant");

  // Taking more than the player has is refused in words, and nothing changes.
  await console_.fill("#grant [name=gold]", "-99999");
  await console_.fill("#grant [name=reason]", "mistake");
  await console_.click("#grant button");
  await console_.waitForFunction(() => /cannot take/.test(document.querySelector("#message").textContent));
  assert.equal(await text(console_, "#player-gold"), "1500");

  await console_.fill("#revoke [name=reason]", "account shared");
  await console_.click("#revoke button");
  await console_.waitForFunction(() => /Revoked 1 session/.test(document.querySelector("#message").textContent));
  await console_.waitForFunction(() =>
    document.querySelector("#audit tbody tr")?.textContent.includes("revoke"),
  );
  await screenshot(console_, "9-console-revoked");

  // The player's next call finds the session ended: the page says so and asks to log in.
  await player.click("#sign-in");
  await player.waitForSelector("#login:not([hidden])");
  assert.match(await text(player, "#message"), /session has ended/);
  await screenshot(player, "10-player-logged-out");

  assert.deepEqual(playerErrors, []);
  assert.deepEqual(consoleErrors, []);
});
