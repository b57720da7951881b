// Starts the real game-host binary for the tests: the workspace's debug build, the demo
// modules it built, fresh plugin/data/log folders, listeners on ports the system picks.
// `make test` builds everything first; alone, run `cargo build --workspace`.

import { spawn } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TARGET = process.env.CARGO_TARGET_DIR ?? join(ROOT, "target");
const BUILD = join(TARGET, "debug");

/** The library of workspace crate `name` (`mall`, `fixture_faulty`). */
export function library(name) {
  const path = join(BUILD, `lib${name}.so`);
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: build the workspace first (make build)`);
  }
  return path;
}

/** A port that was free a moment ago. */
export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts `game-host serve` with `modules` (crate names) installed; `env` adds variables
 * (`GAME_HOST_*` configuration).
 * @returns {Promise<{ url: string, adminUrl: string, dirs: string, stop: () => Promise<void> }>}
 */
export async function startHost({
  modules = ["activity", "mall", "player", "social"],
  listen = "127.0.0.1:0",
  dirs,
  args = [],
  env = {},
} = {}) {
  const binary = join(BUILD, "game-host");
  if (!existsSync(binary)) {
    throw new Error(`${binary} is missing: build the workspace first (make build)`);
  }
  // Given `dirs` (a stopped host's), the new host finds that host's modules and database.
  if (!dirs) {
    dirs = mkdtempSync(join(tmpdir(), "game-host-client-"));
    mkdirSync(join(dirs, "plugins"));
    for (const name of modules) {
      // A demo module's data tables (plugins/<name>/tables) first, as `make plugins` does.
      const tables = join(ROOT, "plugins", name, "tables");
      if (existsSync(tables)) {
        cpSync(tables, join(dirs, "plugins", `${name}.tables`), { recursive: true });
      }
      copyFileSync(library(name), join(dirs, "plugins", `lib${name}.so`));
    }
  }
  const child = spawn(
    binary,
    [
      "serve",
      "--config-dir", join(ROOT, "config"),
      "--listen", listen,
      "--admin-listen", "127.0.0.1:0",
      "--plugins-dir", join(dirs, "plugins"),
      "--data-dir", join(dirs, "data"),
      "--log-dir", join(dirs, "log"),
      ...args,
    ],
    // stderr is not read: a host that outlives a failed test must not hold the output open.
    { stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, ...env } },
  );
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const lines = createInterface({ input: child.stdout });
  const addresses = {};
  const ready = new Promise((resolve, reject) => {
    lines.on("line", (line) => {
      const admin = line.match(/^admin listening on (\S+)/);
      const client = line.match(/^listening on (\S+)/);
      if (admin) addresses.admin = admin[1];
      else if (client) addresses.client = client[1];
      if (addresses.admin && addresses.client) resolve();
    });
    exited.then((code) => reject(new Error(`game-host exited (${code}) before listening; logs in ${dirs}`)));
  });
  await ready;
  return {
    url: `http://${addresses.client}`,
    adminUrl: `http://${addresses.admin}`,
    dirs,
    /** Shuts the host down (SIGTERM) and removes its folders unless `keepDirs`. */
    async stop({ keepDirs = false } = {}) {
      child.kill("SIGTERM");
      await exited;
      if (!keepDirs) rmSync(dirs, { recursive: true, force: true });
    },
  };
}
