// Live changes over a devicebucket server's event stream (Server-Sent Events), read with
// fetch: a bucket's changes as they happen, resumed after the last version received when the
// stream drops (none lost, none repeated), and waiting for a key without polling.
// The server sends a heartbeat every 15 seconds: a stream silent for three is dead.
const SILENCE_MS = 45_000;
function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}
/** The events of one text/event-stream body (comments and ids skipped: the version is in
 * the data). */
async function* events(body, silence) {
    const decoder = new TextDecoder();
    let buffer = "";
    let event = "message";
    let data = [];
    const reader = body.getReader();
    for (;;) {
        const { done, value: chunk } = await reader.read();
        if (done)
            return;
        silence();
        buffer += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = buffer.search(/\r\n|\r|\n/)) >= 0) {
            const line = buffer.slice(0, end);
            buffer = buffer.slice(end + (buffer.startsWith("\r\n", end) ? 2 : 1));
            if (line === "") {
                if (data.length)
                    yield { event, data: data.join("\n") };
                event = "message";
                data = [];
            }
            else if (line.startsWith("data:")) {
                data.push(line.slice(5).replace(/^ /, ""));
            }
            else if (line.startsWith("event:")) {
                event = line.slice(6).trim();
            }
        }
    }
}
/** The bucket's changes from the server at `source.url`, for as long as the caller iterates
 * (or `options.signal` aborts). A dropped stream is opened again after the last version
 * received; after `retries` failures in a row, a last Failure ends the watch. */
export async function* watch(source, options = {}) {
    let last;
    if (options.since === undefined) {
        const current = await source.version();
        if (typeof current !== "number") {
            yield current;
            return;
        }
        last = current;
    }
    else if (!Number.isSafeInteger(options.since) || options.since < 0) {
        yield { success: false, error: "since must be a version: an integer of 0 or more" };
        return;
    }
    else {
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
        let cause;
        try {
            const response = await fetch(`${source.url}?since=${last}`, {
                headers: { ...source.headers, accept: "text/event-stream" },
                signal: stop.signal,
            });
            if (!response.ok || !response.body) {
                const body = (await response.json().catch(() => ({})));
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
                    yield data;
                }
            }
            cause = "the stream ended";
        }
        catch (error) {
            if (options.signal?.aborted)
                return;
            cause = error instanceof Error ? error.message : String(error);
        }
        finally {
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
export function applyEvent(bucket, event) {
    if ("resync" in event) {
        return structuredClone(event.bucket);
    }
    Object.assign(bucket, event.changed);
    for (const key of event.removed) {
        delete bucket[key];
    }
    return bucket;
}
