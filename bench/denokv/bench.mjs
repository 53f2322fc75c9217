// Deno KV's side of bench/bench_sqlite.py: the same work as devicebucket's rows, through
// its Node binding on a local SQLite file. Prints operations per second as JSON.
//
//   node bench/denokv/bench.mjs PATH DEVICES ROUNDS
//
// get: kv.get of a random device's ~1 KB value; set: a read-merge-set made atomic by
// atomic().check() on the version read, retried when another writer won; by one writer,
// then by 64 concurrent writers.

import { openKv } from "@deno/kv";

const [path, devices, rounds] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const payload = Object.fromEntries(
  Array.from({ length: 20 }, (_, i) => [`key${String(i).padStart(2, "0")}`, "v".repeat(40)]),
);
const key = (n) => ["devices", `pixel-${String(n % devices).padStart(5, "0")}`];
const kv = await openKv(path);

async function merge(n, patch) {
  for (;;) {
    const current = await kv.get(key(n));
    const result = await kv.atomic().check(current).set(key(n), { ...current.value, ...patch }).commit();
    if (result.ok) return;
  }
}

async function rate(count, lanes, op) {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < count) await op(next++);
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

for (let n = 0; n < devices; n++) await kv.set(key(n), payload);
const count = devices * rounds;
const get = await rate(count, 1, (n) => kv.get(key(n)));
const set1 = await rate(count, 1, (n) => merge(n, { counter: n }));
const set64 = await rate(count * 4, 64, (n) => merge(n, { counter: -n }));
kv.close();
console.log(JSON.stringify({ get, "set, 1 writer": set1, "set, 64 writers": set64 }));
