// The global `agent` that `devicebucket run` gives a JavaScript or TypeScript automation.
// In TypeScript: `import type {} from "devicebucket/global";` (or a triple-slash reference).

import type { Agent } from "./index.js";

declare global {
  /** The agent of this automation's device (and job), as on the seed platform. */
  var agent: Agent;
}

export {};
