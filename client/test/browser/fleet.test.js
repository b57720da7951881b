// The console's fleet panel in a real browser, on a host that runs the releases published into
// its database (plugins.source = "database"): a canary published with the real
// `game-host publish` shows with its share, and the operator promotes it from the page; the
// host follows, and the audit log says who and why.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ROOT, library } from "../host.js";
import { hostAndBrowser, screenshot, text } from "./setup.js";

const env = hostAndBrowser({ GAME_HOST_PLUGINS_SOURCE: "database", GAME_HOST_FLEET_POLL_MS: "50" });

/** `game-host publish` (the workspace's debug build) into the host's own SQLite database. */
function publish(file, ...args) {
  const binary = join(process.env.CARGO_TARGET_DIR ?? join(ROOT, "target"), "debug", "game-host");
  const database = `sqlite://${join(env.host.dirs, "data", "game.db")}`;
  return execFileSync(
    binary,
    ["publish", file, "--config-dir", join(ROOT, "config"), "--database-url", database, ...args],
    { encoding: "utf8" },
  );
}

const sha256 = (file) => createHash("sha256").update(readFileSync(file)).digest("hex");

test("a canary shows in the fleet panel with its share, and promoting it there reaches the host", async () => {
  publish(library("mall"), "--tables", join(ROOT, "plugins", "mall", "tables"));
  const sale = library("fixture_mall_sale");
  assert.match(publish(sale, "--canary", "30"), /30% of players/);

  const page = await (await env.browser.newContext()).newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(`${env.host.adminUrl}/console/`);
  const mall = '#fleet-modules tr[data-module="mall"]';
  // The panel refreshes by itself; the host reports once it has loaded the canary.
  await page.waitForFunction(
    (row) => /30%/.test(document.querySelector(`${row} .canary`)?.textContent ?? ""),
    mall,
  );
  assert.equal(await text(page, `${mall} .canary`), `${sha256(sale).slice(0, 12)} · 30%`);
  // The host serves the release to the others and the canary beside it.
  await page.waitForFunction(
    (row) => /serving · canary serving/.test(document.querySelector(`${row} .states`)?.textContent ?? ""),
    mall,
  );
  assert.match(await text(page, "#fleet-source"), /releases published into its database/);
  assert.equal(await page.locator("#fleet-hosts tbody tr").count(), 1);
  await screenshot(page, "9-console-fleet-canary");

  await page.fill("#who [name=operator]", "ops-dee");
  page.once("dialog", (dialog) => dialog.accept("the sale holds up"));
  await page.click(`${mall} button:text("promote")`);
  await page.waitForFunction(
    (row) => document.querySelector(`${row} .canary`)?.textContent === "none",
    mall,
  );
  const row = await page.locator(mall).textContent();
  assert.match(row, new RegExp(sha256(sale).slice(0, 12)));
  // The host serves the sale build to every player now.
  await page.waitForFunction(
    (row) => /serving/.test(document.querySelector(`${row} .states`)?.textContent ?? ""),
    mall,
  );
  const audit = await page.locator("#audit tbody tr").first().textContent();
  assert.match(audit, /ops-dee/);
  assert.match(audit, /promote/);
  assert.match(audit, /the sale holds up/);
  await screenshot(page, "10-console-fleet-promoted");
  assert.deepEqual(errors, []);
});
