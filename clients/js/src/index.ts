// The agent API of devicebucket for JavaScript and TypeScript, over a devicebucket server:
// `agent.utils.deviceBucket` and `agent.utils.bucket`, with the seed platform's types.
// Every expected failure is a `{ success: false, error }` result; nothing here throws for
// bad input, a schema violation or a server that is down, slow or failing.

import { InvalidValue, isValidText, jsonPath, plainJson } from "./values.js";
import { type Answer, type Failure, Transport, type TransportOptions, codeOf } from "./transport.js";
import { applyEvent, type WatchEvent, type WatchOptions, watch } from "./watch.js";
import type { components, paths } from "./wire.js";

export type { Failure } from "./transport.js";
export type { BucketChange, BucketResync, WatchEvent, WatchOptions } from "./watch.js";
export { jsonPath } from "./values.js";

/** The result of a device bucket call, exactly as the seed platform types it. */
export type DeviceBucketResult =
  | { success: false; error: string }
  | { success: true; deviceBucket: Record<string, any> };

/** The result of a job bucket call. */
export type BucketResult =
  | { success: false; error: string }
  | { success: true; bucket: Record<string, any> };

/** What `update` merges: computed from the bucket as it is (may be async). */
export type UpdateFunction = (
  current: Record<string, any>,
) => Record<string, any> | Promise<Record<string, any>>;

export interface SetOptions {
  /** Keys of `data` that expire, in seconds from now (`{ otp: 300 }`); a key set again
   * without one no longer expires. */
  expireIn?: Record<string, number>;
}

export interface WaitOptions {
  /** How long to wait, in milliseconds (default 30,000). */
  timeoutMs?: number;
}

/** What `waitFor` waits for: a key to be present, or a predicate on the bucket. */
export type Condition = string | ((bucket: Record<string, any>) => boolean);

export interface BucketUtils<R> {
  /** The stored data, or `{}` if nothing was stored yet. */
  get(): Promise<R>;
  /** Merge `data` shallowly: its keys are added or overwritten, the rest kept. */
  set(data: Record<string, any>, options?: SetOptions): Promise<R>;
  /** Remove these top-level keys (missing ones are ignored). */
  delete(...keys: string[]): Promise<R>;
  /** Remove every key. */
  clear(): Promise<R>;
  /** Atomic read-modify-write: merge `fn(current)` on the version it saw, retried when
   * another writer won. An exception `fn` throws rejects the promise. */
  update(fn: UpdateFunction): Promise<R>;
  /** The bucket's changes as they happen, for as long as the caller iterates: each
   * `{ version, at, actor, changed, removed }`, or `{ resync: true, version, bucket }` when
   * the server's history no longer keeps the versions after `since`. A failure ends the
   * watch as its last item. */
  watch(options?: WatchOptions): AsyncGenerator<WatchEvent>;
  /** The bucket once a key is present (or the predicate holds), waiting for changes as they
   * happen (no polling); a failure after `timeoutMs`. */
  waitFor(condition: Condition, options?: WaitOptions): Promise<R>;
}

export type DeviceBucketUtils = BucketUtils<DeviceBucketResult>;
export type JobBucketUtils = BucketUtils<BucketResult>;

export interface Agent {
  readonly deviceId: string;
  readonly jobId: string | null;
  readonly utils: {
    readonly deviceBucket: DeviceBucketUtils;
    readonly bucket: JobBucketUtils;
  };
}

export interface AgentOptions extends TransportOptions {
  /** The device whose buckets this agent uses. */
  device: string;
  /** The job whose bucket `agent.utils.bucket` is (none: a direct run). */
  job?: string | null;
  /** The job's bucket schema (a JSON Schema, or a function returning it, called before the
   * first job bucket call): the job is registered with it first unless it already has it. */
  bucketSchema?: unknown;
  /** Replace a different schema the job already has. */
  replaceSchema?: boolean;
  /** The automation's name, as the history's "who" shows it. */
  automation?: string;
}

type Path = keyof paths;

/** A path of the server's OpenAPI document with its parameters filled in, each quoted. */
function fill(template: Path, params: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) =>
    encodeURIComponent(params[name] ?? ""),
  );
}

const UPDATE_ATTEMPTS = 100;

type Job = components["schemas"]["Job"];
type JobRegistration = components["schemas"]["JobRegistration"];

function sameJson(a: unknown, b: unknown): boolean {
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) {
    return a === b;
  }
  if (Array.isArray(a) !== Array.isArray(b)) {
    return false;
  }
  const keysA = Object.keys(a);
  const keysB = Object.keys(b);
  return (
    keysA.length === keysB.length &&
    keysA.every(
      (key) =>
        Object.hasOwn(b, key) &&
        sameJson((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]),
    )
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

class Bucket<R> implements BucketUtils<R> {
  constructor(
    private readonly transport: Transport,
    private readonly path: string,
    private readonly headers: Record<string, string>,
    readonly wrap: (data: Record<string, any>) => R,
    private readonly ready: () => Promise<Failure | null>,
  ) {}

  private fail(error: string): R {
    return { success: false, error } as R;
  }

  private result(answer: Answer | Failure): R {
    if ("success" in answer) {
      return answer as R;
    }
    if (answer.status >= 400) {
      return this.transport.failure(answer) as R;
    }
    return this.wrap(answer.body as Record<string, any>);
  }

  private async write(
    method: string,
    path: string,
    body: unknown,
    version: number | null = null,
  ): Promise<Answer | Failure> {
    const problem = await this.ready();
    if (problem) {
      return problem;
    }
    const headers = { ...this.headers };
    if (version !== null) {
      headers["if-match"] = `"${version}"`;
    }
    // Repeating a write is safe only when it is conditional on the version it saw.
    return this.transport.send({ method, path, body, headers, retryUnknown: version !== null });
  }

  private async read(): Promise<Answer | Failure> {
    const problem = await this.ready();
    return problem ?? this.transport.send({ method: "GET", path: this.path, retryUnknown: true });
  }

  async get(): Promise<R> {
    return this.result(await this.read());
  }

  async set(data: Record<string, any>, options: SetOptions = {}): Promise<R> {
    let patch: Record<string, unknown>;
    let path = this.path;
    try {
      patch = plainJson(data);
      if (options.expireIn !== undefined) {
        path += `?expire_in=${encodeURIComponent(JSON.stringify(plainJson(options.expireIn)))}`;
      }
    } catch (error) {
      if (error instanceof InvalidValue) {
        return this.fail(error.message);
      }
      throw error;
    }
    return this.result(await this.write("PATCH", path, patch));
  }

  private source() {
    return this.transport.source(`${this.path}/changes`, async () => {
      const current = await this.read();
      if ("success" in current) return current;
      if (current.status >= 400) return this.transport.failure(current);
      return current.etag ?? 0;
    });
  }

  async *watch(options: WatchOptions = {}): AsyncGenerator<WatchEvent> {
    const problem = await this.ready();
    if (problem) {
      yield problem;
      return;
    }
    yield* watch(this.source(), options);
  }

  async waitFor(condition: Condition, options: WaitOptions = {}): Promise<R> {
    if (typeof condition !== "string" && typeof condition !== "function") {
      return this.fail("waitFor needs a key (a string) or a predicate on the bucket");
    }
    const timeoutMs = options.timeoutMs ?? 30_000;
    const holds = (bucket: Record<string, any>) =>
      typeof condition === "string" ? Object.hasOwn(bucket, condition) : Boolean(condition(structuredClone(bucket)));
    const what = typeof condition === "string" ? `key ${JSON.stringify(condition)}` : "the condition";
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(), timeoutMs);
    try {
      const current = await this.read();
      if ("success" in current || current.status >= 400) {
        return this.result(current);
      }
      let bucket = current.body as Record<string, any>;
      if (holds(bucket)) {
        return this.wrap(bucket);
      }
      for await (const event of watch(this.source(), { since: current.etag ?? 0, signal: stop.signal })) {
        if ("success" in event) {
          return event as R;
        }
        bucket = applyEvent(bucket, event);
        if (holds(bucket)) {
          return this.wrap(structuredClone(bucket));
        }
      }
      return this.fail(`${what} did not hold within ${timeoutMs / 1000} s`);
    } finally {
      clearTimeout(timer);
      stop.abort();
    }
  }

  async delete(...keys: string[]): Promise<R> {
    for (const key of keys) {
      if (typeof key !== "string") {
        return this.fail(`keys to delete must be strings, not ${typeof key}`);
      }
      if (!isValidText(key)) {
        return this.fail(
          `key ${jsonPath([key])} to delete is not valid Unicode (a lone UTF-16 surrogate)`,
        );
      }
    }
    return this.result(await this.write("POST", `${this.path}/delete-keys`, { keys }));
  }

  async clear(): Promise<R> {
    return this.result(await this.write("DELETE", this.path, undefined));
  }

  async update(fn: UpdateFunction): Promise<R> {
    for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
      const current = await this.read();
      if ("success" in current || current.status >= 400) {
        return this.result(current);
      }
      let patch: Record<string, unknown>;
      try {
        patch = plainJson(await fn(structuredClone(current.body as Record<string, any>)));
      } catch (error) {
        if (error instanceof InvalidValue) {
          return this.fail(error.message);
        }
        throw error;
      }
      const written = await this.write("PATCH", this.path, patch, current.etag ?? 0);
      if ("success" in written || written.status !== 412 || codeOf(written) !== "version_conflict") {
        return this.result(written);
      }
      // Another writer won: jittered exponential backoff, capped, then read again.
      await sleep(Math.random() * Math.min(50, 0.5 * 2 ** attempt));
    }
    return this.fail(`gave up after ${UPDATE_ATTEMPTS} attempts: other writers kept winning`);
  }
}

class JobRegistrar {
  private done: Promise<Failure | null> | null = null;

  constructor(
    private readonly transport: Transport,
    private readonly job: string,
    private readonly options: AgentOptions,
  ) {}

  /** Register the job once, before its bucket is first used (None: nothing to do). */
  ready(): Promise<Failure | null> {
    this.done ??= this.register().then((failure) => {
      if (failure) {
        this.done = null; // a failure is tried again on the next call
      }
      return failure;
    });
    return this.done;
  }

  private async register(): Promise<Failure | null> {
    const given = this.options.bucketSchema;
    let schema: unknown;
    try {
      schema = typeof given === "function" ? (given as () => unknown)() : given;
    } catch (error) {
      return { success: false, error: `BUCKET_SCHEMA: ${String(error)}` };
    }
    const path = fill("/v1/jobs/{job}", { job: this.job });
    const found = await this.transport.send({ method: "GET", path, retryUnknown: true });
    if ("success" in found) {
      return found;
    }
    if (found.status === 200) {
      const job = found.body as Job;
      if (schema === undefined || sameJson(job.bucket_schema, schema)) {
        return null;
      }
    } else if (found.status !== 404) {
      return this.transport.failure(found);
    }
    const registration: JobRegistration = {
      automation: this.options.automation ?? null,
      bucket_schema: (schema ?? null) as JobRegistration["bucket_schema"],
      replace_schema: this.options.replaceSchema ?? false,
    };
    const put = await this.transport.send({
      method: "PUT",
      path,
      body: registration,
      retryUnknown: true,
    });
    if ("success" in put) {
      return put;
    }
    if (put.status === 403) {
      return {
        success: false,
        error:
          `job ${JSON.stringify(this.job)} is not registered (or its schema changed), and` +
          " registering a job needs an admin token; an admin runs: devicebucket job register" +
          ` --job ${this.job} SCHEMA.json`,
      };
    }
    return put.status >= 400 ? this.transport.failure(put) : null;
  }
}

/** Who writes, as the history records it: the automation and its job (the server adds the
 * token). */
function surface(automation: string | undefined, job: string | null): string {
  const what = automation ? `automation ${automation}` : "agent";
  return job ? `${what} in job ${job}` : what;
}

/** The header value of the surface: ASCII, as HTTP headers are (others escaped). */
function asciiHeader(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

const NO_JOB =
  "agent.utils.bucket requires a job context: this automation runs without a job" +
  " (run it with --job ID, or give createAgent a job); use agent.utils.deviceBucket for" +
  " device-wide data";

/** An agent on `options.device` (and `options.job`) of the server at `options.url`. */
export function createAgent(options: AgentOptions): Agent {
  if (!/^https?:\/\//.test(options.url)) {
    throw new TypeError(`createAgent: url must be an http:// or https:// URL`);
  }
  if (typeof options.device !== "string" || !options.device) {
    throw new TypeError("createAgent: device must be a device id");
  }
  const transport = new Transport(options);
  const job = options.job ?? null;
  const headers = { "x-devicebucket-actor": asciiHeader(surface(options.automation, job)) };
  const device = options.device;
  const noCheck = async (): Promise<Failure | null> => null;
  const deviceBucket = new Bucket<DeviceBucketResult>(
    transport,
    fill("/v1/devices/{device}/bucket", { device }),
    headers,
    (data) => ({ success: true, deviceBucket: data }),
    noCheck,
  );
  let bucket: JobBucketUtils;
  if (job === null) {
    const noJob = async (): Promise<BucketResult> => ({ success: false, error: NO_JOB });
    async function* noJobWatch(): AsyncGenerator<WatchEvent> {
      yield { success: false, error: NO_JOB };
    }
    bucket = {
      get: noJob,
      set: noJob,
      delete: noJob,
      clear: noJob,
      update: noJob,
      watch: noJobWatch,
      waitFor: noJob,
    };
  } else {
    const registrar = new JobRegistrar(transport, job, options);
    bucket = new Bucket<BucketResult>(
      transport,
      fill("/v1/devices/{device}/jobs/{job}/bucket", { device, job }),
      headers,
      (data) => ({ success: true, bucket: data }),
      () => registrar.ready(),
    );
  }
  return { deviceId: device, jobId: job, utils: { deviceBucket, bucket } };
}
