// The JavaScript client's side of bench/bench_clients.py: `get` and `set` on a server for a
// fixed time with a number of calls in flight, printing calls per second as JSON.
//
//   node bench/js_client.mjs URL TOKEN SECONDS CONCURRENCY

import { createAgent } from "../clients/js/dist/index.js";

const [url, token, seconds, concurrency] = process.argv.slice(2);
const payload = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`key${i}`, "v".repeat(40)]));

async function measure(call) {
  const deadline = performance.now() + Number(seconds) * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: Number(concurrency) }, async (_, lane) => {
      const agent = createAgent({ url, token, device: `js-${lane}` });
      while (performance.now() < deadline) {
        const result = await call(agent, done);
        if (!result.success) throw new Error(result.error);
        done++;
      }
    }),
  );
  return done / Number(seconds);
}

const set = await measure((agent, n) => agent.utils.deviceBucket.set({ ...payload, counter: n }));
const get = await measure((agent) => agent.utils.deviceBucket.get());
console.log(JSON.stringify({ set, get }));
