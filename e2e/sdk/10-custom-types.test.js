'use strict';
// Custom message types (seed: "Custom Message Types"): an OperationMessage declared with
// messageType(1) and messageField('op') exactly as the seed does (with a class instead of
// `inherit`), TextMessage attributes, and the rich-media types of the official typed-messages
// plugin (LocationMessage, ImageMessage, FileMessage).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const AV = require('leancloud-storage');
const initTypedMessages = require('leancloud-realtime-plugin-typed-messages');
const { eachBackend, T } = require('../lib/suite');
const { Event, ids, waitFor, withTimeout, WAIT_MS } = require('../lib/clients');

// The plugin builds its file and location types on the storage SDK's AV.File / AV.GeoPoint.
// Nothing here talks to a storage server: AV.init only satisfies the storage SDK.
AV.init({ appId: 'e2e-storage-unused', appKey: 'unused', serverURL: 'http://127.0.0.1:9' });

const typesBySdk = new Map();
/**
 * The message classes for one SDK module (4.x and 5.x each have their own TypedMessage, so
 * each gets its own OperationMessage and its own plugin classes). The plugin requires nothing
 * by name: initTypedMessages(AV, IM) takes the SDK it extends, and plugin 4.0.2 declares
 * leancloud-realtime ^4.0.0-alpha.3 || ^5.0.0-alpha.2 as its peer, so one version serves both.
 */
function typesFor(SDK) {
  if (!typesBySdk.has(SDK)) {
    const { TypedMessage, messageType, messageField } = SDK;
    // Define OperationMessage for sending and receiving messages regarding user operations
    class OperationMessage extends TypedMessage {}
    // Specify the type; can be other positive integers
    messageType(1)(OperationMessage);
    // The `op` field needs to be sent with the message
    messageField('op')(OperationMessage);
    typesBySdk.set(SDK, { OperationMessage, ...initTypedMessages(AV, SDK) });
  }
  return typesBySdk.get(SDK);
}

/** An already-uploaded file, as the plugin's FileMessage itself rebuilds one from a received message. */
function uploadedFile(FileMessage, objId, name, url, metaData) {
  return FileMessage._parseFileFromRawData({ _lcfile: { objId, url, metaData: { ...metaData, name } } });
}

eachBackend('custom message types', {
  realtime: SDK => ({ messageClasses: [typesFor(SDK).OperationMessage], plugins: [typesFor(SDK).TypedMessagesPlugin] }),
}, ctx => {
  const { TextMessage } = ctx.SDK;
  const {
    OperationMessage, LocationMessage, ImageMessage, FileMessage,
  } = typesFor(ctx.SDK);

  async function pair(name) {
    const { Tom, Jerry } = ids('Tom', 'Jerry');
    const tom = await ctx.login(Tom);
    const jerry = await ctx.login(Jerry);
    const conversation = await tom.createConversation({ members: [Jerry], name });
    return { Tom, Jerry, tom, jerry, conversation };
  }

  async function roundTrip(conversation, jerry, message) {
    const received = waitFor(jerry, Event.MESSAGE);
    const sent = await withTimeout(conversation.send(message), WAIT_MS, 'send');
    const [m] = await received;
    assert.equal(m.id, sent.id);
    const [stored] = await (await jerry.getConversation(conversation.id)).queryMessages({ limit: 1 });
    assert.equal(stored.id, sent.id);
    return [m, stored];
  }

  test('OperationMessage (type 1, field op) arrives as OperationMessage, live and in history', T, async () => {
    const { Tom, jerry, conversation } = await pair('operation');
    const message = new OperationMessage();
    message.op = 'typing';
    message.setText('Tom is typing…');
    message.setAttributes({ since: 1234 });
    for (const m of await roundTrip(conversation, jerry, message)) {
      assert.ok(m instanceof OperationMessage, `got ${m && m.constructor.name}`);
      assert.equal(m.type, 1);
      assert.equal(m.op, 'typing');
      assert.equal(m.text, 'Tom is typing…');
      assert.deepEqual(m.getAttributes(), { since: 1234 });
      assert.equal(m.from, Tom);
    }
  });

  test('TextMessage attributes: setAttributes({city: "Montreal"})', T, async () => {
    const { jerry, conversation } = await pair('attributes');
    const messageWithCity = new TextMessage("It's too cold now.");
    messageWithCity.setAttributes({ city: 'Montreal' });
    for (const m of await roundTrip(conversation, jerry, messageWithCity)) {
      assert.ok(m instanceof TextMessage);
      assert.equal(m.text, "It's too cold now.");
      assert.deepEqual(m.getAttributes(), { city: 'Montreal' });
    }
  });

  test('LocationMessage keeps latitude and longitude', T, async () => {
    const { jerry, conversation } = await pair('location');
    const message = new LocationMessage(new AV.GeoPoint({ latitude: 45.5017, longitude: -73.5673 }));
    message.setText('Montreal');
    for (const m of await roundTrip(conversation, jerry, message)) {
      assert.ok(m instanceof LocationMessage, `got ${m && m.constructor.name}`);
      assert.equal(m.type, -5);
      assert.equal(m.getLocation().latitude, 45.5017);
      assert.equal(m.getLocation().longitude, -73.5673);
      assert.equal(m.text, 'Montreal');
    }
  });

  test('ImageMessage and FileMessage keep the file reference and metadata', T, async () => {
    const { jerry, conversation } = await pair('files');
    const image = new ImageMessage(uploadedFile(FileMessage, '5f00000000000000000000a1', 'photo.png',
      'http://127.0.0.1:1/files/photo.png', { width: 640, height: 480, format: 'png', size: 1024 }));
    image.setText('a photo');
    for (const m of await roundTrip(conversation, jerry, image)) {
      assert.ok(m instanceof ImageMessage, `got ${m && m.constructor.name}`);
      assert.equal(m.type, -2);
      const file = m.getFile();
      assert.equal(file.id, '5f00000000000000000000a1');
      assert.equal(file.url(), 'http://127.0.0.1:1/files/photo.png');
      assert.equal(file.name(), 'photo.png');
      assert.equal(file.metaData().width, 640);
      assert.equal(m.text, 'a photo');
    }

    const doc = new FileMessage(uploadedFile(FileMessage, '5f00000000000000000000a2', 'notes.md',
      'http://127.0.0.1:1/files/notes.md', { size: 42 }));
    for (const m of await roundTrip(conversation, jerry, doc)) {
      assert.ok(m instanceof FileMessage && !(m instanceof ImageMessage), `got ${m && m.constructor.name}`);
      assert.equal(m.type, -6);
      assert.equal(m.getFile().name(), 'notes.md');
      assert.equal(m.getFile().metaData().size, 42);
    }
  });
});
