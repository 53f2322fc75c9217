/** A path as JSONPath, as the server and the Python client write it: `$.config["odd key"][2]`. */
export declare function jsonPath(parts: readonly (string | number)[]): string;
/** Whether `text` is valid Unicode: no lone UTF-16 surrogate. */
export declare function isValidText(text: string): boolean;
export declare class InvalidValue extends Error {
}
/**
 * A copy of `data` made of plain JSON values, or InvalidValue naming the first value that is
 * not one: a lone surrogate (in a string or a key), NaN or ±Infinity, a BigInt, a function or
 * symbol, a Map, Set or other class instance, a cycle. An object's `toJSON` (a Date's) is
 * used as JSON.stringify uses it; a property whose value is `undefined` is left out, as
 * JSON.stringify leaves it out.
 */
export declare function plainJson(data: unknown): Record<string, unknown>;
