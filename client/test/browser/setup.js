// What the browser tests share: a real game-host serving client/, headless Chromium (Debian's
// `chromium` on PATH, or $CHROMIUM; never a download) driven by playwright-core, screenshots
// in $SCREENSHOT_DIR (default target/browser-tests/), and a player logged in on the demo page.

import { accessSync, constants, mkdirSync } from "node:fs";
import { delimiter, join } from "node:path";
import { after, before } from "node:test";
import { chromium } from "playwright-core";
import { ROOT, startHost } from "../host.js";

const SCREENSHOTS = process.env.SCREENSHOT_DIR ?? join(ROOT, "target", "browser-tests");
mkdirSync(SCREENSHOTS, { recursive: true });

/** Saves the whole page as `<name>.png` among the test artifacts. */
export const screenshot = (page, name) =>
  page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });

/** The trimmed text of the first element matching `selector`. */
export const text = (page, selector) => page.textContent(selector).then((t) => t.trim());

/** The browser to drive: $CHROMIUM, else the first Chromium on PATH; null when there is none. */
export function findChromium() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
      const path = join(dir, name);
      try {
        accessSync(path, constants.X_OK);
        return path;
      } catch {
        // not here
      }
    }
  }
  return null;
}

/**
 * Starts a host serving client/ (with `hostEnv` in its environment) and a browser before the
 * file's tests, and stops both after.
 * @returns {{ host: object, browser: import("playwright-core").Browser }} filled in by `before`.
 */
export function hostAndBrowser(hostEnv = {}) {
  const env = {};
  before(async () => {
    env.host = await startHost({ args: ["--static-dir", join(ROOT, "client")], env: hostEnv });
    env.browser = await chromium.launch({
      executablePath: findChromium(),
      // Root in a container has no user namespace for Chromium's sandbox.
      args: ["--no-sandbox"],
    });
  });
  after(async () => {
    await env.browser?.close();
    await env.host?.stop();
  });
  return env;
}

/**
 * A fresh page (its own storage) with the demo open, logged in as `account`, its goods shown.
 * `errors` collects the page's uncaught errors.
 */
export async function playerPage({ host, browser }, account) {
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
