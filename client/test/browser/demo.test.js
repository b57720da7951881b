// The demo page in a real browser (setup.js: headless Chromium, the real game-host serving
// client/, screenshots of each step).

import assert from "node:assert/strict";
import { copyFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { library } from "../host.js";
import { hostAndBrowser, playerPage, screenshot, text } from "./setup.js";

const env = hostAndBrowser();

async function buy(page, good, count) {
  const row = page.locator(`#goods tr[data-good="${good}"]`);
  await row.locator("input").fill(String(count));
  await row.locator("button").click();
  // The button is disabled while the call runs.
  await row.locator("button:not([disabled])").waitFor();
}

test("a player logs in, signs in, buys, and reads a refusal in words", async () => {
  const { page, errors } = await playerPage(env, `browser_${process.pid}_1`);
  assert.equal(await text(page, "#gold"), "1000");
  await screenshot(page, "1-logged-in");

  await page.click("#sign-in");
  await page.waitForFunction(() => document.querySelector("#gold").textContent === "1100");
  assert.match(await text(page, "#message"), /Signed in/);
  await screenshot(page, "2-signed-in");

  await buy(page, "potion", 2);
  assert.equal(await text(page, "#gold"), "1000", "two potions at 50");
  assert.equal(await text(page, '#items [data-item="potion"]'), "potion × 2");
  await screenshot(page, "3-bought");

  await buy(page, "sword", 99);
  assert.match(await text(page, "#message"), /not enough gold: 29700 needed, 1000 owned/);
  assert.equal(await page.getAttribute("#message", "class"), "error");
  assert.equal(await text(page, "#gold"), "1000", "a refusal changes nothing");
  await screenshot(page, "4-refused");

  // A reload keeps the session: the page comes back logged in with the same gold.
  await page.reload();
  await page.waitForSelector("#game:not([hidden])");
  await page.waitForFunction(() => document.querySelector("#gold").textContent === "1000");
  assert.deepEqual(errors, []);
});

test("the mall is hot-swapped under an open page; its next purchase is the new version's", async () => {
  const { page, errors } = await playerPage(env, `browser_${process.pid}_2`);
  await buy(page, "potion", 2);
  assert.equal(await text(page, "#gold"), "900", "the demo mall: 50 a potion");

  // A designer ships a new mall build: written beside, then renamed into place.
  const plugins = join(env.host.dirs, "plugins");
  copyFileSync(library("fixture_mall_sale"), join(plugins, ".libmall.so.tmp"));
  renameSync(join(plugins, ".libmall.so.tmp"), join(plugins, "libmall.so"));
  await waitForMallVersion("0.2.0");

  await buy(page, "potion", 2);
  assert.equal(await text(page, "#gold"), "850", "the sale mall: 25 a potion");
  assert.equal(await text(page, '#items [data-item="potion"]'), "potion × 4");
  assert.equal(await page.getAttribute("#message", "class"), "done", "no error shown");
  await screenshot(page, "5-after-hot-swap");
  assert.deepEqual(errors, []);
});

/** Polls the admin API until the mall serving is `version`. */
async function waitForMallVersion(version) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { modules } = await (await fetch(`${env.host.adminUrl}/admin/modules`)).json();
    const mall = modules.find((m) => m.name === "mall");
    if (mall?.version === version) return;
    assert.ok(Date.now() < deadline, `the mall never became ${version}: ${JSON.stringify(mall)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
