// A job automation in TypeScript: its job bucket must match BUCKET_SCHEMA, which
// `devicebucket run --job signup` registers with the job when the bucket is first used.
// Runs under Node.js 22.6 or newer (type stripping).
//
//   devicebucket run examples/signup_job.ts --device pixel-7-01 --job signup

import type {} from "devicebucket/global";

export const BUCKET_SCHEMA = {
  type: "object",
  properties: {
    attempts: { type: "integer", minimum: 0 },
    sessionCookie: { type: "string" },
  },
};

const counted = await agent.utils.bucket.update((b) => ({ attempts: (b.attempts ?? 0) + 1 }));
if (!counted.success) {
  throw new Error(counted.error);
}
console.log(`signup attempt ${counted.bucket.attempts} on ${agent.deviceId}`);
