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
/** The bucket's changes from the server at `source.url`, for as long as the caller iterates
 * (or `options.signal` aborts). A dropped stream is opened again after the last version
 * received; after `retries` failures in a row, a last Failure ends the watch. */
export declare function watch(source: StreamSource, options?: WatchOptions): AsyncGenerator<WatchEvent>;
/** The bucket after `event` (`bucket` is changed in place; a resync replaces it). */
export declare function applyEvent(bucket: Record<string, any>, event: BucketChange | BucketResync): Record<string, any>;
