// Requests to a devicebucket server, with the Python HTTP store's failure rules: a request
// that never reached the server is retried; one whose fate is unknown (a timeout, a dropped
// connection) is retried only when repeating it is safe; a 503 is retried; every other
// answer is final. Nothing here throws for an expected failure: it returns a Failure.

import type { components } from "./wire.js";

type ErrorBody = components["schemas"]["Error"];

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

// The causes of a request that never reached the server: retried whatever the request.
const NEVER_SENT = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
]);

// Answers that are the request's fault (its value, its version, its size): the server's
// message alone. Access refusals name the server; any other status, its number too.
const REQUEST_FAULTS = new Set([400, 404, 409, 412, 413, 422]);
const ACCESS_FAULTS = new Set([401, 403, 429]);

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The code of a network error fetch threw (its `cause`'s, as undici reports it). */
function causeOf(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") {
      return code;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return error instanceof Error ? error.name : "unknown error";
}

export class Transport {
  readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;

  constructor(options: TransportOptions) {
    this.url = options.url.replace(/\/+$/, "");
    this.headers = options.token ? { authorization: `Bearer ${options.token}` } : {};
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.retries = options.retries ?? 3;
    this.backoffMs = options.backoffMs ?? 100;
  }

  /** What names this server in an error message: its URL without a password or query. */
  get shownUrl(): string {
    try {
      const url = new URL(this.url);
      url.username = "";
      url.password = "";
      url.search = "";
      return url.toString().replace(/\/+$/, "");
    } catch {
      return "(a URL that is not valid)";
    }
  }

  /** What a watch of the stream at `path` needs of this server (see `watch.ts`). */
  source(path: string, version: () => Promise<number | Failure>): StreamSource {
    return {
      url: this.url + path,
      headers: this.headers,
      retries: this.retries,
      backoffMs: this.backoffMs,
      timeoutMs: this.timeoutMs,
      version,
      unavailable: (cause) => this.unavailable(cause),
    };
  }

  private unavailable(cause: string): Failure {
    return { success: false, error: `devicebucket server ${this.shownUrl}: ${cause}` };
  }

  /** Send `request`, retrying where that is safe: the final answer (an error answer
   * included: see `failure`), or a Failure naming the server and the cause. */
  async send(request: Request): Promise<Answer | Failure> {
    let cause = "";
    let unknownFate = false;
    const headers: Record<string, string> = { ...this.headers, ...request.headers };
    let body: string | undefined;
    if (request.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(request.body);
    }
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      if (attempt) {
        await sleep(this.backoffMs * 2 ** (attempt - 1) * (0.5 + Math.random()));
      }
      let response: Response;
      let text: string;
      try {
        response = await fetch(this.url + request.path, {
          method: request.method,
          headers,
          body,
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        text = await response.text();
      } catch (error) {
        const code = causeOf(error);
        if (NEVER_SENT.has(code)) {
          cause = `cannot connect (${code})`;
          continue;
        }
        unknownFate = true;
        cause =
          code === "TimeoutError" || code === "AbortError"
            ? `no answer within ${this.timeoutMs / 1000}s`
            : `connection lost (${code})`;
        if (request.retryUnknown) {
          continue;
        }
        return this.unavailable(`${cause}; the request may or may not have been applied`);
      }
      const answer = parse(response, text);
      if (answer.status === 503) {
        cause = `store unavailable: ${messageOf(answer)}`;
        continue;
      }
      if (answer.status === 412 && unknownFate) {
        return this.unavailable(
          `${cause} on an earlier attempt, then a version conflict: the write's outcome is unknown (it may have been applied)`,
        );
      }
      if (answer.status < 400 && answer.body === undefined && answer.status !== 204) {
        return this.unavailable(`HTTP ${answer.status}: the answer is not JSON`);
      }
      return answer;
    }
    return this.unavailable(`${cause} (after ${this.retries + 1} attempts)`);
  }

  /** The Failure an error answer stands for: the server's message; naming the server when
   * the fault is not the request's (access, availability, an unexpected status). */
  failure(answer: Answer): Failure {
    const body = answer.body as Partial<ErrorBody> | undefined;
    const message =
      body && typeof body === "object" && typeof body.error === "string"
        ? body.error
        : "the answer is not JSON";
    if (REQUEST_FAULTS.has(answer.status)) {
      return { success: false, error: message };
    }
    if (ACCESS_FAULTS.has(answer.status)) {
      return this.unavailable(message);
    }
    return this.unavailable(`HTTP ${answer.status}: ${message}`);
  }
}

function parse(response: Response, text: string): Answer {
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  const tag = response.headers.get("etag");
  const digits = tag?.replace(/^W\//, "").replaceAll('"', "");
  return {
    status: response.status,
    body,
    etag: digits && /^\d+$/.test(digits) ? Number(digits) : null,
  };
}

function messageOf(answer: Answer): string {
  const body = answer.body as Partial<ErrorBody> | undefined;
  return body && typeof body === "object" && typeof body.error === "string"
    ? body.error
    : `HTTP ${answer.status}`;
}

/** The code of an error answer (`version_conflict`, ...), if it has one. */
export function codeOf(answer: Answer): string | undefined {
  const body = answer.body as Partial<ErrorBody> | undefined;
  return body && typeof body === "object" && typeof body.code === "string" ? body.code : undefined;
}
