// The compatibility proof of issue 17: the npm sandbox-agent@0.4.2 SDK,
// unchanged, drives every fs, process and config method against a running
// sandbox-journal server.  Started by tests/integration/test_sdk_compat.c,
// which starts the server and passes:
//   SJ_URL      the server's base URL (http://127.0.0.1:<port>)
//   SJ_TOKEN    its token
//   SJ_SDK_DIR  where tests/sdk/install.sh installed the SDK
//   SJ_WORKDIR  an empty scratch directory for the fs and config calls
// Every check runs even when an earlier one failed; each prints one line,
// "ok <method>: ..." or "FAIL <method>: ...", and the exit status is the
// number of failed checks (0: all passed).  Every wait is bounded.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { pathToFileURL } from "node:url";

// The terminal methods use the global WebSocket, which Node 22 has and
// Node 20 and 21 only with --experimental-websocket: rerun under the flag.
if (typeof globalThis.WebSocket !== "function" &&
    !process.execArgv.includes("--experimental-websocket")) {
  const r = spawnSync(process.execPath,
                      ["--experimental-websocket", ...process.execArgv, ...process.argv.slice(1)],
                      { stdio: "inherit" });
  process.exit(r.status ?? 1);
}

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const sdkEntry = path.join(env("SJ_SDK_DIR"), "node_modules/sandbox-agent/dist/index.js");
const { SandboxAgent } = await import(pathToFileURL(sdkEntry).href);
const W = env("SJ_WORKDIR");
const sdk = await SandboxAgent.connect({ baseUrl: env("SJ_URL"), token: env("SJ_TOKEN") });

const CHECK_TIMEOUT_MS = 30000;
const results = [];
const covered = new Set();

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Runs one check; `methods` are the SDK methods it covers.
async function check(name, methods, fn) {
  for (const m of methods) covered.add(m);
  try {
    await withTimeout(fn(), CHECK_TIMEOUT_MS, name);
    results.push({ name, methods, ok: true });
    console.log(`ok ${name} [${methods.join(", ")}]`);
  } catch (e) {
    const msg = e && e.status ? `HTTP ${e.status}: ${e.message}` : String(e && e.stack || e);
    results.push({ name, methods, ok: false, msg });
    console.log(`FAIL ${name} [${methods.join(", ")}]: ${msg.split("\n").slice(0, 4).join(" | ")}`);
  }
}

// Awaits a promise that must reject with an HTTP status.
async function rejectsWith(promise, status) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.status, status, `expected HTTP ${status}, got ${e.status}: ${e.message}`);
    return e;
  }
  assert.fail(`expected HTTP ${status}, the call succeeded`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

// ---- a tar archive, written here so the test needs no tar package -----------

function tarHeader(name, size, type) {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, "utf8");
  h.write(type === "5" ? "0000755\0" : "0000644\0", 100, "ascii");
  h.write("0000000\0", 108, "ascii");
  h.write("0000000\0", 116, "ascii");
  h.write(size.toString(8).padStart(11, "0") + "\0", 124, "ascii");
  h.write(Math.floor(Date.now() / 1000).toString(8).padStart(11, "0") + "\0", 136, "ascii");
  h.write("        ", 148, "ascii");
  h.write(type, 156, "ascii");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "ascii");
  return h;
}

function tar(entries) {
  const parts = [];
  for (const e of entries) {
    if (e.dir) {
      parts.push(tarHeader(e.name, 0, "5"));
      continue;
    }
    const data = Buffer.from(e.data);
    parts.push(tarHeader(e.name, data.length, "0"), data);
    const pad = (512 - (data.length % 512)) % 512;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

// Deterministic bytes, every value 0..255 present: a binary-exact round trip.
function bytes(n) {
  const b = Buffer.alloc(n);
  let x = 2463534242;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    b[i] = i < 256 ? i : x & 0xff;
  }
  return b;
}

function logText(entries) {
  return entries
    .map((e) => (e.encoding === "base64" ? Buffer.from(e.data, "base64").toString("utf8") : e.data))
    .join("");
}

// ---- files ----------------------------------------------------------------------

const D = path.join(W, "fs");
const big = bytes(3 * 1024 * 1024 + 17);

await check("fs mkdir", ["mkdirFs"], async () => {
  const r = await sdk.mkdirFs({ path: D });
  assert.equal(typeof r.path, "string");
  assert.ok(r.path.endsWith("/fs"), r.path);
});

await check("fs write + read 3 MiB binary", ["writeFsFile", "readFsFile"], async () => {
  const w = await sdk.writeFsFile({ path: path.join(D, "a.bin") }, big);
  assert.equal(w.bytesWritten, big.length);
  assert.ok(w.path.endsWith("a.bin"));
  const r = await sdk.readFsFile({ path: path.join(D, "a.bin") });
  assert.ok(r instanceof Uint8Array);
  assert.equal(Buffer.compare(Buffer.from(r), big), 0, "bytes differ");
});

await check("fs stat", ["statFs"], async () => {
  const s = await sdk.statFs({ path: path.join(D, "a.bin") });
  assert.equal(s.entryType, "file");
  assert.equal(s.size, big.length);
  const d = await sdk.statFs({ path: D });
  assert.equal(d.entryType, "directory");
  await rejectsWith(sdk.statFs({ path: path.join(D, "missing") }), 404);
});

await check("fs list entries", ["listFsEntries"], async () => {
  await sdk.mkdirFs({ path: path.join(D, "sub") });
  const list = await sdk.listFsEntries({ path: D });
  assert.ok(Array.isArray(list));
  const file = list.find((e) => e.name === "a.bin");
  assert.ok(file, JSON.stringify(list));
  assert.equal(file.entryType, "file");
  assert.equal(file.size, big.length);
  assert.ok(file.path.endsWith("a.bin"));
  const sub = list.find((e) => e.name === "sub");
  assert.ok(sub && sub.entryType === "directory", JSON.stringify(list));
});

await check("fs move (overwrite)", ["moveFs"], async () => {
  await sdk.writeFsFile({ path: path.join(D, "b.txt") }, "bee");
  const m = await sdk.moveFs({ from: path.join(D, "b.txt"), to: path.join(D, "c.txt") });
  assert.ok(m.from.endsWith("b.txt") && m.to.endsWith("c.txt"), JSON.stringify(m));
  await sdk.writeFsFile({ path: path.join(D, "d.txt") }, "dee");
  // Onto an existing file without overwrite: refused (the status is the server's).
  await assert.rejects(sdk.moveFs({ from: path.join(D, "d.txt"), to: path.join(D, "c.txt") }),
                       (e) => e.status >= 400 && e.status < 500);
  await sdk.moveFs({ from: path.join(D, "d.txt"), to: path.join(D, "c.txt"), overwrite: true });
  const r = await sdk.readFsFile({ path: path.join(D, "c.txt") });
  assert.equal(Buffer.from(r).toString(), "dee");
});

await check("fs upload batch (tar)", ["uploadFsBatch"], async () => {
  const archive = tar([
    { name: "pkg/", dir: true },
    { name: "pkg/readme.md", data: "# hello\n" },
    { name: "pkg/src/main.c", data: "int main(void) { return 0; }\n" },
    { name: "top.bin", data: bytes(70000) },
  ]);
  const up = path.join(W, "up");
  const r = await sdk.uploadFsBatch(archive, { path: up });
  assert.ok(Array.isArray(r.paths), JSON.stringify(r));
  assert.equal(r.truncated, false);
  assert.ok(r.paths.some((p) => p.endsWith("pkg/src/main.c")), JSON.stringify(r.paths));
  const main = await sdk.readFsFile({ path: path.join(up, "pkg/src/main.c") });
  assert.equal(Buffer.from(main).toString(), "int main(void) { return 0; }\n");
  const top = await sdk.readFsFile({ path: path.join(up, "top.bin") });
  assert.equal(Buffer.compare(Buffer.from(top), bytes(70000)), 0);
});

await check("fs delete (recursive)", ["deleteFsEntry"], async () => {
  const f = await sdk.deleteFsEntry({ path: path.join(D, "c.txt") });
  assert.ok(f.path.endsWith("c.txt"));
  await rejectsWith(sdk.statFs({ path: path.join(D, "c.txt") }), 404);
  await sdk.deleteFsEntry({ path: D, recursive: true });
  await rejectsWith(sdk.statFs({ path: D }), 404);
});

// ---- configuration ------------------------------------------------------------

await check("config mcp set/get/delete", ["setMcpConfig", "getMcpConfig", "deleteMcpConfig"],
  async () => {
    const q = { directory: W, mcpName: "echo" };
    const local = { type: "local", command: "node", args: ["server.js", "--stdio"],
                    env: { MCP_LEVEL: "debug" }, timeoutMs: 5000 };
    await sdk.setMcpConfig(q, local);
    assert.deepEqual(await sdk.getMcpConfig(q), local);
    const remote = { type: "remote", url: "http://127.0.0.1:9/mcp",
                     headers: { "X-Team": "a" }, bearerTokenEnvVar: "MCP_TOKEN" };
    await sdk.setMcpConfig(q, remote);
    assert.deepEqual(await sdk.getMcpConfig(q), remote);
    // The same directory spelled with a trailing slash is the same entry.
    assert.deepEqual(await sdk.getMcpConfig({ directory: W + "/", mcpName: "echo" }), remote);
    await sdk.deleteMcpConfig(q);
    await rejectsWith(sdk.getMcpConfig(q), 404);
    await sdk.deleteMcpConfig(q); // deleting what is gone is no error
    await rejectsWith(sdk.setMcpConfig(q, { type: "local" }), 400);
  });

await check("config skills set/get/delete",
  ["setSkillsConfig", "getSkillsConfig", "deleteSkillsConfig"], async () => {
    const q = { directory: W, skillName: "house-style" };
    const cfg = { sources: [{ type: "local", source: path.join(W, "skills") },
                            { type: "github", source: "octo/skills", ref: "main",
                              subpath: "skills", skills: ["lint"] }] };
    await sdk.setSkillsConfig(q, cfg);
    assert.deepEqual(await sdk.getSkillsConfig(q), cfg);
    await sdk.deleteSkillsConfig(q);
    await rejectsWith(sdk.getSkillsConfig(q), 404);
    await rejectsWith(sdk.setSkillsConfig(q, { sources: "x" }), 400);
  });

// ---- processes ------------------------------------------------------------------

await check("process config get/set", ["getProcessConfig", "setProcessConfig"], async () => {
  const cfg = await sdk.getProcessConfig();
  for (const k of ["defaultRunTimeoutMs", "maxConcurrentProcesses", "maxInputBytesPerRequest",
                   "maxLogBytesPerProcess", "maxOutputBytes", "maxRunTimeoutMs"])
    assert.equal(typeof cfg[k], "number", `${k} in ${JSON.stringify(cfg)}`);
  const changed = { ...cfg, maxOutputBytes: cfg.maxOutputBytes + 1 };
  const r = await sdk.setProcessConfig(changed);
  assert.equal(r.maxOutputBytes, changed.maxOutputBytes);
  assert.equal((await sdk.getProcessConfig()).maxOutputBytes, changed.maxOutputBytes);
  await sdk.setProcessConfig(cfg);
});

await check("process run (exit code, stdout, stderr, timeout)", ["runProcess"], async () => {
  const r = await sdk.runProcess({ command: "sh", args: ["-c", "echo out; echo err >&2; exit 3"] });
  assert.equal(r.exitCode, 3);
  assert.equal(r.stdout, "out\n");
  assert.equal(r.stderr, "err\n");
  assert.equal(r.timedOut, false);
  assert.equal(r.stdoutTruncated, false);
  assert.equal(typeof r.durationMs, "number");
  const t = await sdk.runProcess({ command: "sleep", args: ["30"], timeoutMs: 300 });
  assert.equal(t.timedOut, true);
  const cut = await sdk.runProcess({ command: "sh", args: ["-c", "head -c 5000 /dev/zero"],
                                     maxOutputBytes: 100 });
  assert.equal(cut.stdoutTruncated, true);
});

let catId = null;
await check("process create, input, follow and read logs",
  ["createProcess", "sendProcessInput", "followProcessLogs", "getProcessLogs"], async () => {
    const p = await sdk.createProcess({ command: "cat", interactive: true });
    catId = p.id;
    assert.equal(typeof p.id, "string");
    assert.equal(p.status, "running");
    assert.equal(p.command, "cat");
    const seen = [];
    const sub = await sdk.followProcessLogs(p.id, (e) => seen.push(e));
    const w = await sdk.sendProcessInput(p.id, { data: "hello sdk\n" });
    assert.equal(w.bytesWritten, 10);
    const b = await sdk.sendProcessInput(p.id, {
      data: Buffer.from("bytes\n").toString("base64"), encoding: "base64" });
    assert.equal(b.bytesWritten, 6);
    await until("the followed log", () => logText(seen).includes("hello sdk\nbytes\n"));
    sub.close();
    await sub.closed;
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].sequence > seen[i - 1].sequence);
    const logs = await sdk.getProcessLogs(p.id);
    assert.equal(logs.processId, p.id);
    assert.ok(logText(logs.entries).includes("hello sdk\nbytes\n"), JSON.stringify(logs));
    const first = logs.entries[0].sequence;
    const later = await sdk.getProcessLogs(p.id, { since: first });
    assert.ok(later.entries.every((e) => e.sequence > first));
  });

await check("process list and get", ["listProcesses", "getProcess"], async () => {
  assert.ok(catId, "no process from the check before");
  const list = await sdk.listProcesses();
  assert.ok(list.processes.some((p) => p.id === catId), JSON.stringify(list));
  const p = await sdk.getProcess(catId);
  assert.equal(p.id, catId);
  assert.equal(p.status, "running");
  assert.equal(p.owner, "user");
  await rejectsWith(sdk.getProcess("no-such-process"), 404);
});

await check("process stop and delete", ["stopProcess", "deleteProcess"], async () => {
  assert.ok(catId, "no process from the check before");
  const s = await sdk.stopProcess(catId, { waitMs: 5000 });
  assert.equal(s.status, "exited", JSON.stringify(s));
  await sdk.deleteProcess(catId);
  await rejectsWith(sdk.getProcess(catId), 404);
});

await check("process kill", ["killProcess"], async () => {
  const p = await sdk.createProcess({ command: "sleep", args: ["60"] });
  const k = await sdk.killProcess(p.id, { waitMs: 5000 });
  assert.equal(k.status, "exited", JSON.stringify(k));
  await sdk.deleteProcess(p.id);
});

await check("process tty resize", ["resizeProcessTerminal"], async () => {
  const p = await sdk.createProcess({ command: "sh", args: ["-c", "read x"], tty: true,
                                      interactive: true });
  assert.equal(p.tty, true);
  const r = await sdk.resizeProcessTerminal(p.id, { cols: 120, rows: 40 });
  assert.equal(r.cols, 120);
  assert.equal(r.rows, 40);
  await sdk.killProcess(p.id, { waitMs: 5000 });
  await sdk.deleteProcess(p.id);
});

await check("process terminal (WebSocket: input, resize, exit)",
  ["buildProcessTerminalWebSocketUrl", "connectProcessTerminal"], async () => {
    const p = await sdk.createProcess({ command: "sh", tty: true, interactive: true,
                                        env: { PS1: "$ " } });
    const url = new URL(sdk.buildProcessTerminalWebSocketUrl(p.id));
    assert.equal(url.protocol, "ws:");
    assert.equal(url.pathname, `/v1/processes/${p.id}/terminal/ws`);
    assert.equal(url.searchParams.get("access_token"), env("SJ_TOKEN"));
    const term = sdk.connectProcessTerminal(p.id);
    let out = "";
    const errors = [];
    term.onData((b) => { out += Buffer.from(b).toString("utf8"); });
    term.onError((e) => errors.push(e));
    const ready = new Promise((res) => term.onReady(res));
    const exited = new Promise((res) => term.onExit(res));
    assert.equal((await ready).processId, p.id);
    term.sendInput("echo sdk''term\n"); // text input
    await until("the echo", () => out.includes("sdkterm\r\n"));
    term.resize({ cols: 91, rows: 27 });
    term.sendInput(new TextEncoder().encode("stty size\n")); // bytes: sent as base64
    await until("the new size", () => out.includes("27 91"));
    term.sendInput("exit 5\n");
    assert.equal((await exited).exitCode, 5);
    await term.closed;
    assert.deepEqual(errors, []);
  });

await check("process terminal (raw WebSocket, errors)", ["connectProcessTerminalWebSocket"],
  async () => {
    const p = await sdk.createProcess({ command: "sh", args: ["-c", "printf done; exit 2"],
                                        tty: true });
    await until("the exit", async () => (await sdk.getProcess(p.id)).status === "exited");
    // An exited terminal: ready, its output replayed, the exit, a normal close.
    const ws = sdk.connectProcessTerminalWebSocket(p.id);
    ws.binaryType = "arraybuffer";
    const frames = [];
    const closed = new Promise((res) => ws.addEventListener("close", res));
    ws.addEventListener("message", (ev) => frames.push(ev.data));
    const c = await closed;
    assert.equal(c.code, 1000);
    assert.deepEqual(JSON.parse(frames[0]), { type: "ready", processId: p.id });
    assert.deepEqual(JSON.parse(frames[frames.length - 1]), { type: "exit", exitCode: 2 });
    const text = frames.slice(1, -1).map((f) => Buffer.from(f).toString("utf8")).join("");
    assert.ok(text.includes("done"), text);
    // Refused before the upgrade (no tty, unknown, bad token): the socket errors.
    const plain = await sdk.createProcess({ command: "sleep", args: ["30"] });
    for (const [id, opts] of [[plain.id, {}], ["no-such-process", {}],
                              [p.id, { accessToken: "wrong" }]]) {
      const bad = sdk.connectProcessTerminal(id, opts);
      const failed = new Promise((res) => bad.onError(res));
      assert.match(String((await failed).message), /connection failed/);
    }
    await sdk.killProcess(plain.id, { waitMs: 5000 });
  });

// Every workspace method of the SDK is covered by a check above.
const expected = [
  "listFsEntries", "readFsFile", "writeFsFile", "deleteFsEntry", "mkdirFs", "moveFs", "statFs",
  "uploadFsBatch", "getMcpConfig", "setMcpConfig", "deleteMcpConfig", "getSkillsConfig",
  "setSkillsConfig", "deleteSkillsConfig", "getProcessConfig", "setProcessConfig",
  "createProcess", "runProcess", "listProcesses", "getProcess", "stopProcess", "killProcess",
  "deleteProcess", "getProcessLogs", "followProcessLogs", "sendProcessInput",
  "resizeProcessTerminal", "buildProcessTerminalWebSocketUrl", "connectProcessTerminalWebSocket",
  "connectProcessTerminal",
];
for (const m of expected) {
  if (typeof sdk[m] !== "function") {
    results.push({ name: `sdk has ${m}`, ok: false, msg: "not a method of this SDK" });
    console.log(`FAIL sdk has ${m}`);
  } else if (!covered.has(m)) {
    results.push({ name: `covers ${m}`, ok: false, msg: "no check calls it" });
    console.log(`FAIL covers ${m}: no check calls it`);
  }
}

const failed = results.filter((r) => !r.ok);
console.log(`${results.length - failed.length} of ${results.length} checks passed` +
            ` (${expected.length} SDK methods)`);
process.exit(failed.length > 255 ? 255 : failed.length);
