// The client's failure rules against real misbehaving servers (node's own HTTP servers):
// nothing throws, every failure names the server and the cause, reads are retried, a write
// is retried only when repeating it is safe, and an unsendable value is never sent.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { test } from "node:test";
import { createAgent } from "devicebucket";

/** A server on a free loopback port that answers with `handle`, counting requests. */
async function serve(handle) {
  const seen = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      seen.push({ method: request.method, url: request.url, body, headers: request.headers });
      handle(request, response, seen.length);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    seen,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

function json(response, status, body, headers = {}) {
  response.writeHead(status, { "content-type": "application/json", ...headers });
  response.end(JSON.stringify(body));
}

const fast = { retries: 3, backoffMs: 5 };

test("values JSON text cannot carry are refused before sending, naming the key", async () => {
  const server = await serve((_, response) => json(response, 200, {}, { etag: '"1"' }));
  const agent = createAgent({ url: server.url, device: "d1", ...fast });
  const cycle = { name: "loop" };
  cycle.self = cycle;
  const cases = [
    [{ score: NaN }, "$.score is NaN"],
    [{ limit: Infinity }, "$.limit is Infinity"],
    [{ floor: -Infinity }, "$.floor is -Infinity"],
    [{ big: 10n }, "$.big is a BigInt"],
    [{ cycle }, "$.cycle.self refers back"],
    [{ text: "broken \ud800 half" }, "$.text is text that is not valid Unicode"],
    [{ nested: { list: [1, "\udc00"] } }, "$.nested.list[1] is text that is not valid Unicode"],
    [{ ["key\ud800"]: 1 }, 'has a key that is not valid Unicode'],
    [{ seen: new Map() }, "$.seen has type Map"],
    [{ callback: () => 1 }, "$.callback is a function"],
    [{ list: [undefined] }, "$.list[0] is undefined"],
  ];
  for (const [data, expected] of cases) {
    const result = await agent.utils.deviceBucket.set(data);
    assert.equal(result.success, false);
    assert.match(result.error, new RegExp(expected.replace(/[$.[\]()]/g, "\\$&")));
  }
  const updated = await agent.utils.deviceBucket.update(() => ({ bad: NaN }));
  assert.deepEqual(updated, { success: false, error: "value at $.bad is NaN, which JSON cannot hold" });
  assert.deepEqual(
    server.seen.map((r) => r.method),
    ["GET"],
    "only update's read reached the server",
  );
  await server.close();
});

test("a server that is down: a failure naming it, after the retries", async () => {
  const server = await serve(() => {});
  const url = server.url;
  await server.close();
  const agent = createAgent({ url, device: "d1", ...fast });
  for (const call of [() => agent.utils.deviceBucket.get(), () => agent.utils.deviceBucket.set({ a: 1 })]) {
    const result = await call();
    assert.equal(result.success, false);
    assert.equal(
      result.error,
      `devicebucket server ${url}: cannot connect (ECONNREFUSED) (after 4 attempts)`,
    );
  }
});

test("a slow server: reads are retried, a plain write is not", async () => {
  const server = await serve(() => {}); // never answers
  const agent = createAgent({ url: server.url, device: "d1", timeoutMs: 150, ...fast });
  const read = await agent.utils.deviceBucket.get();
  assert.deepEqual(read, {
    success: false,
    error: `devicebucket server ${server.url}: no answer within 0.15s (after 4 attempts)`,
  });
  assert.equal(server.seen.length, 4);
  const write = await agent.utils.deviceBucket.set({ a: 1 });
  assert.deepEqual(write, {
    success: false,
    error:
      `devicebucket server ${server.url}: no answer within 0.15s;` +
      " the request may or may not have been applied",
  });
  assert.equal(server.seen.length, 5, "the write was sent once");
  await server.close();
});

test("a failing server: its status and cause, not retried; 503 is retried", async () => {
  const failing = await serve((_, response) => {
    response.writeHead(500, { "content-type": "text/plain" });
    response.end("Internal Server Error");
  });
  const agent = createAgent({ url: failing.url, device: "d1", ...fast });
  assert.deepEqual(await agent.utils.deviceBucket.get(), {
    success: false,
    error: `devicebucket server ${failing.url}: HTTP 500: the answer is not JSON`,
  });
  assert.equal(failing.seen.length, 1);
  await failing.close();

  const busy = await serve((_, response, n) =>
    n < 3
      ? json(response, 503, { error: "database is locked", code: "store_unavailable" })
      : json(response, 200, { a: 1 }, { etag: '"4"' }),
  );
  const patient = createAgent({ url: busy.url, device: "d1", ...fast });
  assert.deepEqual(await patient.utils.deviceBucket.get(), {
    success: true,
    deviceBucket: { a: 1 },
  });
  assert.equal(busy.seen.length, 3);
  await busy.close();

  const garbage = await serve((_, response) => {
    response.writeHead(200, { "content-type": "application/json" });
    response.end("{not json");
  });
  const confused = createAgent({ url: garbage.url, device: "d1", ...fast });
  assert.deepEqual(await confused.utils.deviceBucket.get(), {
    success: false,
    error: `devicebucket server ${garbage.url}: HTTP 200: the answer is not JSON`,
  });
  await garbage.close();
});

test("a dropped connection: a read and a conditional write are retried, a plain write is not", async () => {
  const server = await serve((request, response, n) => {
    if (n === 1 || n === 3 || n === 5) {
      request.socket.destroy();
      return;
    }
    json(response, 200, { a: 1 }, { etag: '"1"' });
  });
  const agent = createAgent({ url: server.url, device: "d1", ...fast });
  assert.equal((await agent.utils.deviceBucket.get()).success, true); // 1 dropped, 2 answered
  const write = await agent.utils.deviceBucket.set({ a: 2 }); // 3 dropped: not sent again
  assert.equal(write.success, false);
  assert.match(write.error, /connection lost .*; the request may or may not have been applied$/);
  assert.equal(server.seen.length, 3);
  // update: 4 reads, 5 (the conditional PATCH) is dropped, 6 is its retry
  const updated = await agent.utils.deviceBucket.update((b) => ({ a: b.a + 1 }));
  assert.deepEqual(updated, { success: true, deviceBucket: { a: 1 } });
  assert.deepEqual(
    server.seen.slice(3).map((r) => [r.method, r.headers["if-match"]]),
    [["GET", undefined], ["PATCH", '"1"'], ["PATCH", '"1"']],
  );
  await server.close();
});

test("a job bucket without a job is a failure, not an exception", async () => {
  const agent = createAgent({ url: "http://127.0.0.1:9", device: "d1" });
  const result = await agent.utils.bucket.get();
  assert.equal(result.success, false);
  assert.match(result.error, /^agent\.utils\.bucket requires a job context/);
});
