// A module loader hook, registered by the preload: it gives the automation's own module one
// statement more, at its start, that lets the agent read the module's `BUCKET_SCHEMA` when
// the job bucket is first used (the module may run its automation at its top level, so the
// export cannot be read after it has loaded). Lines keep their numbers, so stack traces point
// where they did.
/** The global under which the automation's module leaves its schema getter. */
export const SCHEMA_GETTER = "devicebucket.bucketSchema";
const STATEMENT = `globalThis[Symbol.for(${JSON.stringify(SCHEMA_GETTER)})] = () =>` +
    ` typeof BUCKET_SCHEMA === "undefined" ? undefined : BUCKET_SCHEMA;`;
let mainUrl;
export function initialize(data) {
    mainUrl = data.main;
}
export const load = async (url, context, nextLoad) => {
    const result = await nextLoad(url, context);
    const format = String(result.format);
    if (url !== mainUrl || result.source == null || !format.startsWith("module")) {
        return result;
    }
    const source = typeof result.source === "string"
        ? result.source
        : new TextDecoder().decode(result.source);
    // A hashbang line must stay first: the statement then starts the second line (a file that
    // is a hashbang line alone has no code to read a schema from).
    const hashbang = source.startsWith("#!");
    const cut = hashbang ? source.indexOf("\n") + 1 : 0;
    if (hashbang && cut === 0) {
        return result;
    }
    return { ...result, source: source.slice(0, cut) + STATEMENT + source.slice(cut) };
};
