// The seed page's examples (docs: Device Bucket Storage), as written there, each in a block
// of its own. `tsc --strict` checks them here against the client's types (npm run check);
// tests/entry/test_scripts.py cuts each out (between "// example:" and "// end example") and
// runs it as an automation with `devicebucket run`, on the embedded store and on a server.

import type {} from "devicebucket/global";
import { createAgent } from "devicebucket";

// The seed page leaves this one to the reader; the runner's test defines it before the
// example that calls it.
declare function performAccountSetup(): Promise<{ token: string; username: string }>;

{
// example: get-and-log
const result = await agent.utils.deviceBucket.get();
if (result.success) {
  console.log("Device bucket:", result.deviceBucket);
  // Access stored values
  const token = result.deviceBucket.accountToken;
  const username = result.deviceBucket.username;
} else {
  console.error("Failed to get device bucket:", result.error);
}
// end example
}

{
// example: reuse-or-login
const result = await agent.utils.deviceBucket.get();
if (result.success && result.deviceBucket.accountToken) {
  console.log("Reusing stored credentials");
  // Skip login, use stored credentials
} else {
  console.log("No credentials found, performing login...");
  // Perform login flow
}
// end example
}

{
// example: save-credentials
// After successful login, persist credentials for all automations
const result = await agent.utils.deviceBucket.set({
  accountToken: "abc123xyz",
  username: "user@example.com",
  loginTimestamp: Date.now(),
});
if (result.success) {
  console.log("Credentials saved:", result.deviceBucket);
}
// end example
}

{
// example: merge-twice
// First call: store credentials
await agent.utils.deviceBucket.set({
  accountToken: "abc123",
  username: "user1",
});
// Second call: add more data without losing credentials
await agent.utils.deviceBucket.set({
  appVersion: "2.1.0",
  lastChecked: Date.now(),
});
// Device bucket now contains all four keys:
// { accountToken, username, appVersion, lastChecked }
// end example
}

{
// example: shared-credentials
// At the start of any automation: check for device-level credentials
const db = await agent.utils.deviceBucket.get();
if (db.success && db.deviceBucket.accountToken) {
  // Reuse credentials from any previous automation
  console.log("Using stored credentials for:", db.deviceBucket.username);
} else {
  // First time on this device - perform account setup
  const { token, username } = await performAccountSetup();
  // Save for all future automations on this device
  await agent.utils.deviceBucket.set({
    accountToken: token,
    username: username,
    setupDate: Date.now(),
  });
}
// end example
}

// The results are the seed's unions: a field is reachable only once `success` says which.
{
  const result = await agent.utils.deviceBucket.get();
  // @ts-expect-error deviceBucket exists only on success
  void result.deviceBucket;
  if (!result.success) {
    const message: string = result.error;
    void message;
  }
  const job = await agent.utils.bucket.set({ step: 1 });
  if (job.success) {
    // @ts-expect-error the job bucket's result holds `bucket`, not `deviceBucket`
    void job.deviceBucket;
    void job.bucket.step;
  }
}

// In a script of one's own (Playwright, Puppeteer): an agent made by hand.
{
  const mine = createAgent({
    url: "http://127.0.0.1:8787",
    token: "dbk_...",
    device: "pixel-7-01",
    job: "signup",
  });
  const counted = await mine.utils.bucket.update((b) => ({ attempts: (b.attempts ?? 0) + 1 }));
  if (counted.success) {
    console.log(counted.bucket.attempts);
  }
  await mine.utils.deviceBucket.delete("sessionCookie", "otp");
  await mine.utils.deviceBucket.clear();
}
