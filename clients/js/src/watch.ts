// Live changes over a devicebucket server's event stream (Server-Sent Events), read with
// fetch: a bucket's changes as they happen, resumed after the last version received when the
// stream drops (none lost, none repeated), and waiting for a key without polling.

import type { Failure, StreamSource } from "./transport.js";

/** One version of a bucket: who made it and when, the keys it set (with their new values)
 * and the keys it removed. */
export interface BucketChange {
  version: number;
  at: string;
  actor: string;
  changed: Record<string, any>;
  removed: string[];
}

/** The whole bucket at `version`: what comes instead of the changes the server's history no
 * longer keeps (a watch resumed after too long). */
export interface BucketResync {
  resync: true;
  version: number;
  bucket: Record<string, any>;
}

/** What a watch gives: a change, a resync, or (last of all) a failure. */
export type WatchEvent = BucketChange | BucketResync | Failure;

export interface WatchOptions {
  /** Start with every version after this one (default: from the current version on). */
  since?: number;
  /** Stops the watch. */
  signal?: AbortSignal;
}

// The server sends a heartbeat every 15 seconds: a stream silent for three is dead.
const SILENCE_MS = 45_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Sent {
  event: string;
  data: string;
}

/** The events of one text/event-stream body (comments and ids skipped: the version is in
 * the data). */
async function* events(body: ReadableStream<Uint8Array>, silence: () => void): AsyncGenerator<Sent> {
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "message";
  let data: string[] = [];
  const reader = body.getReader();
  for (;;) {
    const { done, value: chunk } = await reader.read();
    if (done) return;
    silence();
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + (buffer.startsWith("\r\n", end) ? 2 : 1));
      if (line === "") {
        if (data.length) yield { event, data: data.join("\n") };
        event = "message";
        data = [];
      } else if (line.startsWith("data:")) {
        data.push(line.slice(5).replace(/^ /, ""));
      } else if (line.startsWith("event:")) {
        event = line.slice(6).trim();
      }
    }
  }
}

/** The bucket's changes from the server at `source.url`, for as long as the caller iterates
 * (or `options.signal` aborts). A dropped stream is opened again after the last version
 * received; after `retries` failures in a row, a last Failure ends the watch. */
export async function* watch(source: StreamSource, options: WatchOptions = {}): AsyncGenerator<WatchEvent> {
  let last: number;
  if (options.since === undefined) {
    const current = await source.version();
    if (typeof current !== "number") {
      yield current;
      return;
    }
    last = current;
  } else if (!Number.isSafeInteger(options.since) || options.since < 0) {
    yield { success: false, error: "since must be a version: an integer of 0 or more" };
    return;
  } else {
    last = options.since;
  }
  let failures = 0;
  while (!options.signal?.aborted) {
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    options.signal?.addEventListener("abort", onAbort);
    let timer = setTimeout(() => stop.abort(), source.timeoutMs);
    const silence = () => {
      clearTimeout(timer);
      timer = setTimeout(() => stop.abort(), SILENCE_MS);
    };
    let cause: string;
    try {
      const response = await fetch(`${source.url}?since=${last}`, {
        headers: { ...source.headers, accept: "text/event-stream" },
        signal: stop.signal,
      });
      if (!response.ok || !response.body) {
        const body = (await response.json().catch(() => ({}))) as { error?: unknown };
        const message = typeof body.error === "string" ? body.error : `HTTP ${response.status}`;
        if (response.status !== 503) {
          yield response.status >= 500 || response.status === 401 || response.status === 403 || response.status === 429
            ? source.unavailable(message)
            : { success: false, error: message };
          return;
        }
        throw new Error(`store unavailable: ${message}`);
      }
      silence();
      for await (const sent of events(response.body, silence)) {
        const data = JSON.parse(sent.data);
        if (sent.event === "error") {
          throw new Error(String(data.error));
        }
        if (sent.event === "change" || sent.event === "resync") {
          last = data.version;
          failures = 0;
          yield data as BucketChange | BucketResync;
        }
      }
      cause = "the stream ended";
    } catch (error) {
      if (options.signal?.aborted) return;
      cause = error instanceof Error ? error.message : String(error);
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      stop.abort(); // the caller stopped iterating: close the stream
    }
    failures += 1;
    if (failures > source.retries) {
      yield source.unavailable(`watch interrupted (${cause}, ${failures} times in a row)`);
      return;
    }
    await sleep(source.backoffMs * 2 ** (failures - 1) * (0.5 + Math.random()));
  }
}

/** The bucket after `event` (`bucket` is changed in place; a resync replaces it). */
export function applyEvent(bucket: Record<string, any>, event: BucketChange | BucketResync): Record<string, any> {
  if ("resync" in event) {
    return structuredClone(event.bucket);
  }
  Object.assign(bucket, event.changed);
  for (const key of event.removed) {
    delete bucket[key];
  }
  return bucket;
}
