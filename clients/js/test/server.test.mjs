// The client against a real `devicebucket serve` (on a fresh SQLite file): concurrent writes
// lose nothing, update retries on a version conflict, a job is registered with its schema,
// and a token reaches only its own device.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createAgent } from "devicebucket";

const python =
  process.env.DEVICEBUCKET_PYTHON ??
  fileURLToPath(new URL("../../../.venv/bin/python", import.meta.url));
const missing = existsSync(python) ? false : `no Python with devicebucket at ${python}`;
if (missing && process.env.CI === "true") {
  throw new Error(`${missing} (CI=true: the tests against a real server must run)`);
}

const admin = randomBytes(24).toString("hex");
let server;
let url;
let dir;

async function freePort() {
  const probe = createServer();
  await new Promise((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function call(method, path, body) {
  const response = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

before(async () => {
  if (missing) return;
  dir = mkdtempSync(join(tmpdir(), "devicebucket-js-"));
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  server = spawn(
    python,
    ["-m", "devicebucket", "--db", `sqlite:///${join(dir, "fleet.db")}`, "serve", "--port", `${port}`],
    { env: { ...process.env, DEVICEBUCKET_ADMIN_TOKEN: admin }, stdio: "ignore" },
  );
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not listening yet: the process is starting
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("devicebucket serve did not start");
});

after(() => {
  server?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("50 parallel sets of distinct keys lose none", { skip: missing }, async () => {
  const agent = createAgent({ url, token: admin, device: "js-fifty" });
  const results = await Promise.all(
    Array.from({ length: 50 }, (_, i) => agent.utils.deviceBucket.set({ [`key${i}`]: i })),
  );
  assert.ok(results.every((r) => r.success));
  const stored = await agent.utils.deviceBucket.get();
  assert.equal(stored.success, true);
  assert.deepEqual(
    stored.deviceBucket,
    Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`key${i}`, i])),
  );
});

test("parallel updates of one counter all count", { skip: missing }, async () => {
  const agent = createAgent({ url, token: admin, device: "js-counter" });
  const results = await Promise.all(
    Array.from({ length: 20 }, () =>
      agent.utils.deviceBucket.update((b) => ({ count: (b.count ?? 0) + 1 })),
    ),
  );
  assert.ok(results.every((r) => r.success));
  assert.deepEqual(await agent.utils.deviceBucket.get(), {
    success: true,
    deviceBucket: { count: 20 },
  });
});

test("delete and clear answer the bucket after the change", { skip: missing }, async () => {
  const agent = createAgent({ url, token: admin, device: "js-delete" });
  await agent.utils.deviceBucket.set({ a: 1, b: 2, c: 3 });
  assert.deepEqual(await agent.utils.deviceBucket.delete("a", "missing"), {
    success: true,
    deviceBucket: { b: 2, c: 3 },
  });
  assert.deepEqual(await agent.utils.deviceBucket.clear(), { success: true, deviceBucket: {} });
});

test("a job is registered with its schema before its bucket is used", { skip: missing }, async () => {
  const schema = { type: "object", properties: { step: { type: "integer" } } };
  const agent = createAgent({
    url,
    token: admin,
    device: "js-job",
    job: "js-signup",
    bucketSchema: () => schema,
    automation: "signup.mjs",
  });
  assert.deepEqual(await agent.utils.bucket.set({ step: 1 }), { success: true, bucket: { step: 1 } });
  const refused = await agent.utils.bucket.set({ step: "two" });
  assert.equal(refused.success, false);
  assert.match(refused.error, /schema of job 'js-signup' at \$\.step/);
  const job = await call("GET", "/v1/jobs/js-signup");
  assert.deepEqual(job.body.bucket_schema, schema);
  const history = await call("GET", "/v1/devices/js-job/jobs/js-signup/bucket/history");
  assert.equal(
    history.body.changes[0].actor,
    "admin token env via automation signup.mjs in job js-signup",
  );
});

test("a device token reaches only its own device", { skip: missing }, async () => {
  const issued = await call("POST", "/v1/tokens", { device: "js-own" });
  assert.equal(issued.status, 201);
  const own = createAgent({ url, token: issued.body.token, device: "js-own" });
  assert.deepEqual(await own.utils.deviceBucket.set({ mine: true }), {
    success: true,
    deviceBucket: { mine: true },
  });
  const other = createAgent({ url, token: issued.body.token, device: "js-other" });
  assert.deepEqual(await other.utils.deviceBucket.get(), {
    success: false,
    error: `devicebucket server ${url}: a device token may only use its own device's buckets`,
  });
  const unregistered = createAgent({ url, token: issued.body.token, device: "js-own", job: "nojob" });
  const result = await unregistered.utils.bucket.set({ a: 1 });
  assert.equal(result.success, false);
  assert.match(result.error, /job "nojob" is not registered .* devicebucket job register --job nojob/);
});

test("watch gives each change in order, and resumes after a version", { skip: missing }, async () => {
  const agent = createAgent({ url, token: admin, device: "js-watch" });
  const bucket = agent.utils.deviceBucket;
  await bucket.set({ n: 0 });
  const seen = [];
  for await (const change of bucket.watch({ since: 0 })) {
    seen.push(change);
    if (change.version === 1) {
      await bucket.set({ otp: "4921" });
      await bucket.delete("n");
    }
    if (change.version === 3) break;
  }
  assert.deepEqual(seen.map((c) => c.version), [1, 2, 3]);
  assert.deepEqual(seen[1].changed, { otp: "4921" });
  assert.deepEqual(seen[2].removed, ["n"]);
  assert.match(seen[2].at, /Z$/);
  const resumed = [];
  for await (const change of bucket.watch({ since: 2 })) {
    resumed.push(change.version);
    break;
  }
  assert.deepEqual(resumed, [3]);
});

test("waitFor returns once the key is there, fails after its timeout", { skip: missing }, async () => {
  const reader = createAgent({ url, token: admin, device: "js-otp" }).utils.deviceBucket;
  const writer = createAgent({ url, token: admin, device: "js-otp" }).utils.deviceBucket;
  const waiting = reader.waitFor("otp", { timeoutMs: 10_000 });
  await new Promise((resolve) => setTimeout(resolve, 200));
  await writer.set({ otp: "1234" });
  assert.deepEqual(await waiting, { success: true, deviceBucket: { otp: "1234" } });
  const predicate = await reader.waitFor((b) => b.otp === "1234", { timeoutMs: 1000 });
  assert.equal(predicate.success, true);
  const late = await reader.waitFor("never", { timeoutMs: 300 });
  assert.equal(late.success, false);
  assert.match(late.error, /"never" did not hold within 0.3 s/);
});

test("set with expireIn makes keys expire; a bad one is refused", { skip: missing }, async () => {
  // `otp` expires after 1 s, `code` after an hour: the listing is read without a race on
  // a slow machine (`code` is there; `otp` too unless its second has passed already), and
  // the expiry of `otp` is awaited through the watch (the server sweeps it), not slept on.
  const bucket = createAgent({ url, token: admin, device: "js-expire" }).utils.deviceBucket;
  const started = Date.now();
  const set = await bucket.set({ otp: "4921", code: "77", keep: 1 }, { expireIn: { otp: 1, code: 3600 } });
  const written = Date.now();
  assert.equal(set.success, true);
  const { expires } = (await call("GET", "/v1/devices/js-expire/bucket/expiries")).body;
  const within = (key, seconds) => {
    const at = Date.parse(expires[key]) - seconds * 1000;
    assert.ok(started <= at && at <= written, `${key} expires at ${expires[key]}`);
  };
  assert.ok(Object.keys(expires).every((key) => key === "otp" || key === "code"), Object.keys(expires));
  within("code", 3600);
  if ("otp" in expires) within("otp", 1);
  const gone = await bucket.waitFor((b) => !("otp" in b), { timeoutMs: 15_000 });
  assert.deepEqual(gone, { success: true, deviceBucket: { code: "77", keep: 1 } });
  assert.ok(Date.now() - started >= 1_000, "otp left the bucket before its second was over");
  assert.deepEqual(await bucket.get(), { success: true, deviceBucket: { code: "77", keep: 1 } });
  const bad = await bucket.set({ a: 1 }, { expireIn: { other: 5 } });
  assert.equal(bad.success, false);
  assert.match(bad.error, /expire_in/);
});

test("a job bucket watch without a job says so", { skip: missing }, async () => {
  const agent = createAgent({ url, token: admin, device: "js-nojob" });
  const items = [];
  for await (const item of agent.utils.bucket.watch()) items.push(item);
  assert.equal(items.length, 1);
  assert.equal(items[0].success, false);
  assert.match(items[0].error, /job context/);
});
