import type { LoadHook } from "node:module";
/** The global under which the automation's module leaves its schema getter. */
export declare const SCHEMA_GETTER = "devicebucket.bucketSchema";
export declare function initialize(data: {
    main: string;
}): void;
export declare const load: LoadHook;
