// The ops example (config/deploy/nginx/game-host.conf) with real nginx in front of a real host:
// the demo page and the SDK come from nginx's folder, the game API from the host. The example
// is used as written; only its addresses and folders are pointed at this test's.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { accessSync, chmodSync, constants, cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { GameClient, memoryStorage } from "../src/index.js";
import { freePort, ROOT, startHost } from "./host.js";

function findNginx() {
  for (const path of [process.env.NGINX, "/usr/sbin/nginx", "/usr/local/sbin/nginx"]) {
    try {
      if (path) {
        accessSync(path, constants.X_OK);
        return path;
      }
    } catch {
      // not here
    }
  }
  return null;
}

const NGINX = findNginx();
if (!NGINX) console.log("SKIPPED the nginx tests: no nginx (apt-get install nginx, or set NGINX=/path)");

describe("the nginx example", { skip: !NGINX && "no nginx" }, () => {
  let host;
  let nginx;
  let url;

  before(async () => {
    host = await startHost();
    // nginx's workers run as an unprivileged user: they must be able to read the files.
    chmodSync(host.dirs, 0o755);
    const dir = join(host.dirs, "nginx");
    const www = join(dir, "www");
    mkdirSync(join(dir, "logs"), { recursive: true });
    for (const part of ["index.html", "demo", "src"]) {
      cpSync(join(ROOT, "client", part), join(www, part), { recursive: true });
    }
    const port = await freePort();
    const site = readFileSync(join(ROOT, "config/deploy/nginx/game-host.conf"), "utf8")
      .replace("server 127.0.0.1:8000;", `server ${new URL(host.url).host};`)
      .replace("listen 80;", `listen 127.0.0.1:${port};`)
      .replace("listen [::]:80;", "")
      .replace("root /srv/game-host/www;", `root ${www};`)
      .replaceAll("/var/log/nginx/", `${dir}/logs/`);
    writeFileSync(join(dir, "site.conf"), site);
    writeFileSync(
      join(dir, "nginx.conf"),
      `daemon off; pid ${dir}/nginx.pid; error_log ${dir}/logs/error.log;
       events {}
       http {
         include /etc/nginx/mime.types;
         client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
         fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
         include ${dir}/site.conf;
       }`,
    );
    nginx = spawn(NGINX, ["-p", dir, "-c", join(dir, "nginx.conf")], { stdio: "ignore" });
    url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await fetch(`${url}/health`);
        break;
      } catch {
        assert.ok(Date.now() < deadline, "nginx did not start");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  });

  after(async () => {
    nginx?.kill("SIGQUIT");
    await host?.stop();
  });

  test("serves the demo page and the SDK, revalidated, and proxies the game", async () => {
    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type"), /text\/html/);
    assert.equal(page.headers.get("cache-control"), "no-cache");
    assert.match(await page.text(), /demo\/app\.js/);
    const sdk = await fetch(`${url}/src/index.js`);
    assert.equal(sdk.status, 200);
    assert.match(sdk.headers.get("content-type"), /javascript/);
    assert.equal(sdk.headers.get("cache-control"), "no-cache", "not fingerprinted: revalidated");

    const game = new GameClient({ baseUrl: url, storage: memoryStorage() });
    await game.login(`nginx_${process.pid}`);
    const player = await game.call("1203");
    assert.equal(player.gold, 1000);
    const admin = await fetch(`${url}/admin/modules`);
    assert.equal(admin.status, 404, "the admin API is never proxied");
  });
});
