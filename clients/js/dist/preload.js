// What `devicebucket run` preloads (`node --import`) before a JavaScript or TypeScript
// automation: the global `agent` on the run's server, device and job; the loader hook that
// lets the agent read the automation's `BUCKET_SCHEMA`; and the same failure report as a
// Python automation's ("automation NAME failed:" then the error, exit status 1).
import { realpathSync } from "node:fs";
import { register } from "node:module";
import { basename } from "node:path";
import { pathToFileURL } from "node:url";
import { SCHEMA_GETTER } from "./hooks.js";
import { createAgent } from "./index.js";
const env = process.env;
const file = process.argv[1];
if (!file) {
    throw new Error("devicebucket preload: no automation file to run");
}
const main = pathToFileURL(realpathSync(file)).href;
const name = env.DEVICEBUCKET_AUTOMATION || basename(file);
register("./hooks.js", import.meta.url, { data: { main } });
const schemaGetter = () => {
    const getter = globalThis[Symbol.for(SCHEMA_GETTER)];
    return typeof getter === "function" ? getter() : undefined;
};
globalThis.agent = createAgent({
    url: env.DEVICEBUCKET_AGENT_URL ?? "",
    token: env.DEVICEBUCKET_AGENT_TOKEN,
    device: env.DEVICEBUCKET_DEVICE ?? "",
    job: env.DEVICEBUCKET_JOB || null,
    automation: name,
    bucketSchema: schemaGetter,
    replaceSchema: env.DEVICEBUCKET_REPLACE_SCHEMA === "1",
});
// The run's token is not the automation's to pass on to what it starts.
delete env.DEVICEBUCKET_AGENT_TOKEN;
process.on("uncaughtException", (error) => {
    const shown = error instanceof Error && error.stack ? error.stack : String(error);
    process.stderr.write(`automation ${name} failed:\n${shown}\n`);
    process.exit(1);
});
