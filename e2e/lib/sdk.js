'use strict';
// The SDK versions the suite drives, installed side by side (package.json):
//   sdk4: leancloud-realtime-4 = npm:leancloud-realtime@4.3.1 (npm `latest`)
//   sdk5: leancloud-realtime    = 5.0.0-rc.8
// E2E_SDK=4 | 5 | all (default all) picks which ones run.

const VERSIONS = {
  sdk4: { name: 'sdk4', module: 'leancloud-realtime-4', major: 4 },
  sdk5: { name: 'sdk5', module: 'leancloud-realtime', major: 5 },
};

const loaded = new Map();

/** The SDK module (what `require('leancloud-realtime')` gives an app) of 'sdk4' or 'sdk5'. */
function loadSdk(name) {
  const v = VERSIONS[name];
  if (!v) throw new Error(`unknown SDK ${name}; known: ${Object.keys(VERSIONS).join(', ')}`);
  if (!loaded.has(name)) {
    const version = sdkVersion(name);
    if (!version.startsWith(`${v.major}.`)) throw new Error(`${v.module} is ${version}, not a ${v.major}.x: check package.json`);
    loaded.set(name, require(v.module));
  }
  return loaded.get(name);
}

/** The SDK modules loaded so far in this process. */
function loadedSdks() {
  return [...loaded.values()];
}

/** The installed version string of 'sdk4' or 'sdk5', e.g. '4.3.1'. */
function sdkVersion(name) {
  return require(`${VERSIONS[name].module}/package.json`).version;
}

/** The SDKs selected by E2E_SDK, as [{name, module, major}]. */
function sdks() {
  const want = String(process.env.E2E_SDK || 'all').trim().toLowerCase();
  if (want === 'all' || want === '') return [VERSIONS.sdk4, VERSIONS.sdk5];
  const picked = want.split(/[\s,]+/).map(w => VERSIONS[w.startsWith('sdk') ? w : `sdk${w}`]);
  if (picked.some(p => !p)) throw new Error(`E2E_SDK=${process.env.E2E_SDK}: use 4, 5 or all`);
  return [...new Set(picked)];
}

/** The name ('sdk4' | 'sdk5') of the SDK a Realtime/IMClient/Conversation/Message belongs to. */
function sdkOf(thing) {
  for (const [name, SDK] of loaded) {
    if (thing instanceof SDK.Realtime || thing instanceof SDK.Message) return name;
  }
  // IMClients made through lib/clients.js newRealtime carry their SDK's name; conversations
  // reach it through their (SDK-internal) _client.
  const client = thing && (thing.__e2eSdk ? thing : thing._client);
  if (client && client.__e2eSdk) return client.__e2eSdk;
  throw new Error('cannot tell which SDK this object belongs to (not made through newRealtime?)');
}

module.exports = { VERSIONS, loadSdk, loadedSdks, sdkVersion, sdks, sdkOf };
