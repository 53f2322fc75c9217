// The seed page's credentials flow as a JavaScript automation: reuse what an earlier run
// stored on this device, or log in once and store it for every automation on the device.
//
//   devicebucket run examples/credentials.mjs --device pixel-7-01   # logs in
//   devicebucket run examples/credentials.mjs --device pixel-7-01   # reuses
//
// `agent` is global, as on the seed platform; devicebucket run defines it.

async function performAccountSetup() {
  // Stands in for a real login flow on the device.
  return { token: `token-for-${agent.deviceId}`, username: `${agent.deviceId}@example.com` };
}

const db = await agent.utils.deviceBucket.get();
if (db.success && db.deviceBucket.accountToken) {
  console.log("Using stored credentials for:", db.deviceBucket.username);
} else {
  console.log("No credentials found, performing login...");
  const { token, username } = await performAccountSetup();
  const saved = await agent.utils.deviceBucket.set({
    accountToken: token,
    username: username,
    setupDate: Date.now(),
  });
  if (!saved.success) {
    throw new Error(`could not save credentials: ${saved.error}`);
  }
  console.log("Credentials saved for:", username);
}
