// The agent API of devicebucket for JavaScript and TypeScript, over a devicebucket server:
// `agent.utils.deviceBucket` and `agent.utils.bucket`, with the seed platform's types.
// Every expected failure is a `{ success: false, error }` result; nothing here throws for
// bad input, a schema violation or a server that is down, slow or failing.
import { InvalidValue, isValidText, jsonPath, plainJson } from "./values.js";
import { Transport, codeOf } from "./transport.js";
import { applyEvent, watch } from "./watch.js";
export { jsonPath } from "./values.js";
/** A path of the server's OpenAPI document with its parameters filled in, each quoted. */
function fill(template, params) {
    return template.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(params[name] ?? ""));
}
const UPDATE_ATTEMPTS = 100;
function sameJson(a, b) {
    if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) {
        return a === b;
    }
    if (Array.isArray(a) !== Array.isArray(b)) {
        return false;
    }
    const keysA = Object.keys(a);
    const keysB = Object.keys(b);
    return (keysA.length === keysB.length &&
        keysA.every((key) => Object.hasOwn(b, key) &&
            sameJson(a[key], b[key])));
}
function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}
class Bucket {
    transport;
    path;
    headers;
    wrap;
    ready;
    constructor(transport, path, headers, wrap, ready) {
        this.transport = transport;
        this.path = path;
        this.headers = headers;
        this.wrap = wrap;
        this.ready = ready;
    }
    fail(error) {
        return { success: false, error };
    }
    result(answer) {
        if ("success" in answer) {
            return answer;
        }
        if (answer.status >= 400) {
            return this.transport.failure(answer);
        }
        return this.wrap(answer.body);
    }
    async write(method, path, body, version = null) {
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
    async read() {
        const problem = await this.ready();
        return problem ?? this.transport.send({ method: "GET", path: this.path, retryUnknown: true });
    }
    async get() {
        return this.result(await this.read());
    }
    async set(data, options = {}) {
        let patch;
        let path = this.path;
        try {
            patch = plainJson(data);
            if (options.expireIn !== undefined) {
                path += `?expire_in=${encodeURIComponent(JSON.stringify(plainJson(options.expireIn)))}`;
            }
        }
        catch (error) {
            if (error instanceof InvalidValue) {
                return this.fail(error.message);
            }
            throw error;
        }
        return this.result(await this.write("PATCH", path, patch));
    }
    source() {
        return this.transport.source(`${this.path}/changes`, async () => {
            const current = await this.read();
            if ("success" in current)
                return current;
            if (current.status >= 400)
                return this.transport.failure(current);
            return current.etag ?? 0;
        });
    }
    async *watch(options = {}) {
        const problem = await this.ready();
        if (problem) {
            yield problem;
            return;
        }
        yield* watch(this.source(), options);
    }
    async waitFor(condition, options = {}) {
        if (typeof condition !== "string" && typeof condition !== "function") {
            return this.fail("waitFor needs a key (a string) or a predicate on the bucket");
        }
        const timeoutMs = options.timeoutMs ?? 30_000;
        const holds = (bucket) => typeof condition === "string" ? Object.hasOwn(bucket, condition) : Boolean(condition(structuredClone(bucket)));
        const what = typeof condition === "string" ? `key ${JSON.stringify(condition)}` : "the condition";
        const stop = new AbortController();
        const timer = setTimeout(() => stop.abort(), timeoutMs);
        try {
            const current = await this.read();
            if ("success" in current || current.status >= 400) {
                return this.result(current);
            }
            let bucket = current.body;
            if (holds(bucket)) {
                return this.wrap(bucket);
            }
            for await (const event of watch(this.source(), { since: current.etag ?? 0, signal: stop.signal })) {
                if ("success" in event) {
                    return event;
                }
                bucket = applyEvent(bucket, event);
                if (holds(bucket)) {
                    return this.wrap(structuredClone(bucket));
                }
            }
            return this.fail(`${what} did not hold within ${timeoutMs / 1000} s`);
        }
        finally {
            clearTimeout(timer);
            stop.abort();
        }
    }
    async delete(...keys) {
        for (const key of keys) {
            if (typeof key !== "string") {
                return this.fail(`keys to delete must be strings, not ${typeof key}`);
            }
            if (!isValidText(key)) {
                return this.fail(`key ${jsonPath([key])} to delete is not valid Unicode (a lone UTF-16 surrogate)`);
            }
        }
        return this.result(await this.write("POST", `${this.path}/delete-keys`, { keys }));
    }
    async clear() {
        return this.result(await this.write("DELETE", this.path, undefined));
    }
    async update(fn) {
        for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
            const current = await this.read();
            if ("success" in current || current.status >= 400) {
                return this.result(current);
            }
            let patch;
            try {
                patch = plainJson(await fn(structuredClone(current.body)));
            }
            catch (error) {
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
    transport;
    job;
    options;
    done = null;
    constructor(transport, job, options) {
        this.transport = transport;
        this.job = job;
        this.options = options;
    }
    /** Register the job once, before its bucket is first used (None: nothing to do). */
    ready() {
        this.done ??= this.register().then((failure) => {
            if (failure) {
                this.done = null; // a failure is tried again on the next call
            }
            return failure;
        });
        return this.done;
    }
    async register() {
        const given = this.options.bucketSchema;
        let schema;
        try {
            schema = typeof given === "function" ? given() : given;
        }
        catch (error) {
            return { success: false, error: `BUCKET_SCHEMA: ${String(error)}` };
        }
        const path = fill("/v1/jobs/{job}", { job: this.job });
        const found = await this.transport.send({ method: "GET", path, retryUnknown: true });
        if ("success" in found) {
            return found;
        }
        if (found.status === 200) {
            const job = found.body;
            if (schema === undefined || sameJson(job.bucket_schema, schema)) {
                return null;
            }
        }
        else if (found.status !== 404) {
            return this.transport.failure(found);
        }
        const registration = {
            automation: this.options.automation ?? null,
            bucket_schema: (schema ?? null),
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
                error: `job ${JSON.stringify(this.job)} is not registered (or its schema changed), and` +
                    " registering a job needs an admin token; an admin runs: devicebucket job register" +
                    ` --job ${this.job} SCHEMA.json`,
            };
        }
        return put.status >= 400 ? this.transport.failure(put) : null;
    }
}
/** Who writes, as the history records it: the automation and its job (the server adds the
 * token). */
function surface(automation, job) {
    const what = automation ? `automation ${automation}` : "agent";
    return job ? `${what} in job ${job}` : what;
}
/** The header value of the surface: ASCII, as HTTP headers are (others escaped). */
function asciiHeader(text) {
    return text.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
const NO_JOB = "agent.utils.bucket requires a job context: this automation runs without a job" +
    " (run it with --job ID, or give createAgent a job); use agent.utils.deviceBucket for" +
    " device-wide data";
/** An agent on `options.device` (and `options.job`) of the server at `options.url`. */
export function createAgent(options) {
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
    const noCheck = async () => null;
    const deviceBucket = new Bucket(transport, fill("/v1/devices/{device}/bucket", { device }), headers, (data) => ({ success: true, deviceBucket: data }), noCheck);
    let bucket;
    if (job === null) {
        const noJob = async () => ({ success: false, error: NO_JOB });
        async function* noJobWatch() {
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
    }
    else {
        const registrar = new JobRegistrar(transport, job, options);
        bucket = new Bucket(transport, fill("/v1/devices/{device}/jobs/{job}/bucket", { device, job }), headers, (data) => ({ success: true, bucket: data }), () => registrar.ready());
    }
    return { deviceId: device, jobId: job, utils: { deviceBucket, bucket } };
}
