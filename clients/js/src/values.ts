// What a bucket write may send: plain JSON. Checked before sending, so that a value JSON text
// cannot carry is refused with the key named, instead of being changed on the way
// (JSON.stringify writes NaN as null and a lone surrogate as an escape the server refuses).

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const SHOWN_CHARS = 64;

/** A path as JSONPath, as the server and the Python client write it: `$.config["odd key"][2]`. */
export function jsonPath(parts: readonly (string | number)[]): string {
  let out = "$";
  for (const part of parts) {
    if (typeof part === "number") {
      out += `[${part}]`;
    } else if (PLAIN_KEY.test(part) && part.length <= SHOWN_CHARS) {
      out += `.${part}`;
    } else {
      const shown = part.length <= SHOWN_CHARS ? part : `${part.slice(0, SHOWN_CHARS)}…`;
      out += `[${escapeText(shown)}]`;
    }
  }
  return out;
}

/** A string as JSON text, a lone surrogate written as its escape (so the message is valid). */
function escapeText(text: string): string {
  return JSON.stringify(text);
}

/** Whether `text` is valid Unicode: no lone UTF-16 surrogate. */
export function isValidText(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

export class InvalidValue extends Error {}

function typeName(value: unknown): string {
  if (typeof value !== "object" || value === null) {
    return typeof value;
  }
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === "string" && name ? name : "object";
}

/**
 * A copy of `data` made of plain JSON values, or InvalidValue naming the first value that is
 * not one: a lone surrogate (in a string or a key), NaN or ±Infinity, a BigInt, a function or
 * symbol, a Map, Set or other class instance, a cycle. An object's `toJSON` (a Date's) is
 * used as JSON.stringify uses it; a property whose value is `undefined` is left out, as
 * JSON.stringify leaves it out.
 */
export function plainJson(data: unknown): Record<string, unknown> {
  if (!isPlainObject(data)) {
    throw new InvalidValue(`data must be an object of keys and values, not ${typeName(data)}`);
  }
  return copy(data, [], new Set()) as Record<string, unknown>;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return false;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function copy(value: unknown, path: (string | number)[], seen: Set<object>): unknown {
  const fail = (problem: string) => new InvalidValue(`value at ${jsonPath(path)} ${problem}`);
  switch (typeof value) {
    case "string":
      if (!isValidText(value)) {
        throw fail(
          "is text that is not valid Unicode (a lone UTF-16 surrogate), which JSON text cannot carry",
        );
      }
      return value;
    case "number":
      if (!Number.isFinite(value)) {
        throw fail(`is ${value}, which JSON cannot hold`);
      }
      return value;
    case "boolean":
      return value;
    case "bigint":
      throw fail("is a BigInt, which JSON cannot hold (send it as a string or a number)");
    case "undefined":
      throw fail("is undefined, which JSON cannot hold (use null)");
    case "function":
    case "symbol":
      throw fail(`is a ${typeof value}, which is not JSON`);
  }
  if (value === null) {
    return null;
  }
  const object = value as object;
  if (typeof (object as { toJSON?: unknown }).toJSON === "function") {
    return copy((object as { toJSON(): unknown }).toJSON(), path, seen);
  }
  if (seen.has(object)) {
    throw fail("refers back to an object that contains it (a cycle), which JSON cannot hold");
  }
  seen.add(object);
  try {
    if (Array.isArray(object)) {
      return object.map((item: unknown, index) => {
        path.push(index);
        const out = copy(item, path, seen);
        path.pop();
        return out;
      });
    }
    if (!isPlainObject(object)) {
      throw fail(
        `has type ${typeName(object)}, which is not JSON (use an object, array, string, number, boolean or null)`,
      );
    }
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(object)) {
      path.push(key);
      if (!isValidText(key)) {
        throw fail("has a key that is not valid Unicode (a lone UTF-16 surrogate)");
      }
      if (item !== undefined) {
        out[key] = copy(item, path, seen);
      }
      path.pop();
    }
    return out;
  } finally {
    seen.delete(object);
  }
}
