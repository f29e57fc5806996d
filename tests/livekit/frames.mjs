// Drives LiveKit's own end-to-end encryption worker (livekit-client's
// dist/livekit-client.e2ee.worker.mjs, unmodified) in Node, the way the
// browser SDK does: `init`, `setKey` with key material made as LiveKit's
// KeyProvider makes it from a passphrase, `enable`, then an `encode` or
// `decode` transform over encoded VP8 frames.
//
//   node frames.mjs WORKER encrypt|decrypt SPEC_JSON
//
// SPEC: { "identity": the sender's LiveKit identity,
//         "keys": [{ "index": n, "passphrase": "..." }, ...],
//         "current": n (the index to encrypt with),
//         "frames": ["hex", ...] }
// Prints { "frames": ["hex" or null (not decrypted), ...] } on stdout.
import { pathToFileURL } from 'node:url';

const [workerPath, mode, specText] = process.argv.slice(2);
const spec = JSON.parse(specText);

// The worker's globals: it posts to its page and is posted to.
globalThis.self = globalThis;
globalThis.onmessage = null;
const posted = [];
globalThis.postMessage = (message) => posted.push(message);
await import(pathToFileURL(workerPath).href);
const send = async (kind, data) => {
  globalThis.onmessage({ data: { kind, data } });
  // The worker runs each message on its own queue: let it drain.
  await new Promise((resolve) => setTimeout(resolve, 20));
};

// LiveKit's per-participant key provider defaults (BaseKeyProvider).
await send('init', {
  loglevel: 'silent',
  keyProviderOptions: {
    sharedKey: false,
    ratchetSalt: 'LKFrameEncryptionKey',
    ratchetWindowSize: 0,
    failureTolerance: -1,
    keyringSize: 16,
    keySize: 128,
  },
});
for (const { index, passphrase } of spec.keys) {
  // createKeyMaterialFromString: PBKDF2 material from the passphrase.
  const key = await crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(passphrase),
    { name: 'PBKDF2' },
    false,
    ['deriveBits', 'deriveKey'],
  );
  await send('setKey', {
    participantIdentity: spec.identity,
    isPublisher: mode === 'encrypt',
    key,
    keyIndex: index,
    updateCurrentKeyIndex: index === spec.current,
  });
}
await send('enable', { enabled: true, participantIdentity: spec.identity });

const hex = (bytes) => Buffer.from(bytes).toString('hex');
const frames = spec.frames.map((text, i) => {
  const data = new Uint8Array(Buffer.from(text, 'hex')).buffer;
  return {
    data,
    type: i === 0 ? 'key' : 'delta',
    timestamp: 90000 + i * 3000,
    getMetadata: () => ({ synchronizationSource: 0x5eed, payloadType: 96, mimeType: 'video/VP8' }),
  };
});
const out = [];
let index = 0;
const readable = new ReadableStream({
  pull(controller) {
    if (index < frames.length) {
      controller.enqueue(frames[index++]);
    } else {
      controller.close();
    }
  },
});
const writable = new WritableStream({
  write(frame) {
    out.push(frame);
  },
});
await send(mode === 'encrypt' ? 'encode' : 'decode', {
  participantIdentity: spec.identity,
  trackId: 'hearth-test-track',
  codec: 'vp8',
  readableStream: readable,
  writableStream: writable,
  isReuse: false,
  hasPacketTrailer: false,
});
await new Promise((resolve) => setTimeout(resolve, 300));
// Frames that did not decrypt never reach the writable side.
const results = frames.map((frame) => (out.includes(frame) ? hex(new Uint8Array(frame.data)) : null));
process.stdout.write(JSON.stringify({ frames: results }) + '\n');
process.exit(0);
