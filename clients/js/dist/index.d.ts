import { type TransportOptions } from "./transport.js";
import { type WatchEvent, type WatchOptions } from "./watch.js";
export type { Failure } from "./transport.js";
export type { BucketChange, BucketResync, WatchEvent, WatchOptions } from "./watch.js";
export { jsonPath } from "./values.js";
/** The result of a device bucket call, exactly as the seed platform types it. */
export type DeviceBucketResult = {
    success: false;
    error: string;
} | {
    success: true;
    deviceBucket: Record<string, any>;
};
/** The result of a job bucket call. */
export type BucketResult = {
    success: false;
    error: string;
} | {
    success: true;
    bucket: Record<string, any>;
};
/** What `update` merges: computed from the bucket as it is (may be async). */
export type UpdateFunction = (current: Record<string, any>) => Record<string, any> | Promise<Record<string, any>>;
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
/** An agent on `options.device` (and `options.job`) of the server at `options.url`. */
export declare function createAgent(options: AgentOptions): Agent;
