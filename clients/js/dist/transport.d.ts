export interface Failure {
    success: false;
    error: string;
}
export interface Answer {
    status: number;
    body: unknown;
    etag: number | null;
}
export interface TransportOptions {
    /** The server's base URL, such as `http://127.0.0.1:8787`. */
    url: string;
    /** A bearer token (a device token, or an admin token). */
    token?: string;
    /** How long one attempt may take, in milliseconds (default 10,000). */
    timeoutMs?: number;
    /** How many times a failed attempt is retried where that is safe (default 3). */
    retries?: number;
    /** The first retry's wait in milliseconds, doubled for each later one (default 100). */
    backoffMs?: number;
}
/** What a watch of an event stream needs of a server (see `watch.ts`). */
export interface StreamSource {
    url: string;
    headers: Record<string, string>;
    retries: number;
    backoffMs: number;
    timeoutMs: number;
    /** The bucket's current version, or a Failure. */
    version(): Promise<number | Failure>;
    unavailable(cause: string): Failure;
}
export interface Request {
    method: string;
    path: string;
    body?: unknown;
    headers?: Record<string, string>;
    /** Whether the request may be sent again when its fate is unknown. */
    retryUnknown: boolean;
}
export declare class Transport {
    readonly url: string;
    private readonly headers;
    private readonly timeoutMs;
    private readonly retries;
    private readonly backoffMs;
    constructor(options: TransportOptions);
    /** What names this server in an error message: its URL without a password or query. */
    get shownUrl(): string;
    /** What a watch of the stream at `path` needs of this server (see `watch.ts`). */
    source(path: string, version: () => Promise<number | Failure>): StreamSource;
    private unavailable;
    /** Send `request`, retrying where that is safe: the final answer (an error answer
     * included: see `failure`), or a Failure naming the server and the cause. */
    send(request: Request): Promise<Answer | Failure>;
    /** The Failure an error answer stands for: the server's message; naming the server when
     * the fault is not the request's (access, availability, an unexpected status). */
    failure(answer: Answer): Failure;
}
/** The code of an error answer (`version_conflict`, ...), if it has one. */
export declare function codeOf(answer: Answer): string | undefined;
