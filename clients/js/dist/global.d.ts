import type { Agent } from "./index.js";
declare global {
    /** The agent of this automation's device (and job), as on the seed platform. */
    var agent: Agent;
}
export {};
