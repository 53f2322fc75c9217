// The global `agent` that `devicebucket run` gives a JavaScript or TypeScript automation.
// In TypeScript: `import type {} from "devicebucket/global";` (or a triple-slash reference).
export {};
