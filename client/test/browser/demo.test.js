// The demo page in a real browser: headless Chromium (Debian's `chromium`, found on PATH or in
// $CHROMIUM) driven by playwright-core, against the real game-host serving client/.
// Screenshots of each step go to $SCREENSHOT_DIR (default target/browser-tests/).

import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { library, ROOT, startHost } from "../host.js";
import { findChromium } from "./chromium.js";

const SCREENSHOTS = process.env.SCREENSHOT_DIR ?? join(ROOT, "target", "browser-tests");
mkdirSync(SCREENSHOTS, { recursive: true });

let host;
let browser;

before(async () => {
  host = await startHost({ args: ["--static-dir", join(ROOT, "client")] });
  browser = await chromium.launch({
    executablePath: findChromium(),
    // Root in a container has no user namespace for Chromium's sandbox.
    args: ["--no-sandbox"],
  });
});

after(async () => {
  await browser?.close();
  await host?.stop();
});

/** A fresh page (its own storage) with the demo open, logged in as a new player. */
async function playerPage(account) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(`${host.url}/`);
  await page.fill("#login-form [name=account]", account);
  await page.fill("#login-form [name=name]", "Tester");
  await page.click("#login-form button");
  await page.waitForSelector("#game:not([hidden])");
  await page.waitForSelector("#goods tbody tr");
  return { page, errors };
}

const text = (page, selector) => page.textContent(selector).then((t) => t.trim());

async function buy(page, good, count) {
  const row = page.locator(`#goods tr[data-good="${good}"]`);
  await row.locator("input").fill(String(count));
  await row.locator("button").click();
  // The button is disabled while the call runs.
  await row.locator("button:not([disabled])").waitFor();
}

test("a player logs in, signs in, buys, and reads a refusal in words", async () => {
  const { page, errors } = await playerPage(`browser_${process.pid}_1`);
  assert.equal(await text(page, "#gold"), "1000");
  await page.screenshot({ path: join(SCREENSHOTS, "1-logged-in.png") });

  await page.click("#sign-in");
  await page.waitForFunction(() => document.querySelector("#gold").textContent === "1100");
  assert.match(await text(page, "#message"), /Signed in/);
  await page.screenshot({ path: join(SCREENSHOTS, "2-signed-in.png") });

  await buy(page, "potion", 2);
  assert.equal(await text(page, "#gold"), "1000", "two potions at 50");
  assert.equal(await text(page, '#items [data-item="potion"]'), "potion × 2");
  await page.screenshot({ path: join(SCREENSHOTS, "3-bought.png") });

  await buy(page, "sword", 99);
  assert.match(await text(page, "#message"), /not enough gold: 29700 needed, 1000 owned/);
  assert.equal(await page.getAttribute("#message", "class"), "error");
  assert.equal(await text(page, "#gold"), "1000", "a refusal changes nothing");
  await page.screenshot({ path: join(SCREENSHOTS, "4-refused.png") });

  // A reload keeps the session: the page comes back logged in with the same gold.
  await page.reload();
  await page.waitForSelector("#game:not([hidden])");
  await page.waitForFunction(() => document.querySelector("#gold").textContent === "1000");
  assert.deepEqual(errors, []);
});

test("the mall is hot-swapped under an open page; its next purchase is the new version's", async () => {
  const { page, errors } = await playerPage(`browser_${process.pid}_2`);
  await buy(page, "potion", 2);
  assert.equal(await text(page, "#gold"), "900", "the demo mall: 50 a potion");

  // A designer ships a new mall build: written beside, then renamed into place.
  const plugins = join(host.dirs, "plugins");
  copyFileSync(library("fixture_mall_sale"), join(plugins, ".libmall.so.tmp"));
  renameSync(join(plugins, ".libmall.so.tmp"), join(plugins, "libmall.so"));
  await waitForMallVersion("0.2.0");

  await buy(page, "potion", 2);
  assert.equal(await text(page, "#gold"), "850", "the sale mall: 25 a potion");
  assert.equal(await text(page, '#items [data-item="potion"]'), "potion × 4");
  assert.equal(await page.getAttribute("#message", "class"), "done", "no error shown");
  await page.screenshot({ path: join(SCREENSHOTS, "5-after-hot-swap.png") });
  assert.deepEqual(errors, []);
});

/** Polls the admin API until the mall serving is `version`. */
async function waitForMallVersion(version) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { modules } = await (await fetch(`${host.adminUrl}/admin/modules`)).json();
    const mall = modules.find((m) => m.name === "mall");
    if (mall?.version === version) return;
    assert.ok(Date.now() < deadline, `the mall never became ${version}: ${JSON.stringify(mall)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
