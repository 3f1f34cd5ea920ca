// Package typedmsg reads, writes and checks LeanCloud typed-message bodies:
// the JSON strings the official SDKs send as a message's data, such as
//
//	{"_lctext":"hi","_lcattrs":{"city":"Montreal"},"_lctype":-1}
//
// A body is typed when it is a JSON object whose "_lctype" is an integer.
// Negative types are LeanCloud's built-ins (Text -1, Image -2, Audio -3,
// Video -4, Location -5, File -6, Recalled -127); positive ones are chosen by
// the application, whose SDK classes may add their own top-level fields
// (the JS SDK's messageField('op') puts "op" beside "_lctype"). Anything
// else (plain text, other JSON) is an untyped body the server passes on
// untouched.
//
// Decode turns a body into a Message and Encode writes it back. Encode uses
// the JS SDK's field order ("_lctext", "_lcattrs", "_lcfile", "_lcloc",
// custom fields sorted by name, "_lctype" last) and omits absent fields, so a
// body produced by the JS SDK comes back byte for byte when its custom fields
// are in name order; bodies from other SDKs come back with the same fields
// and values, possibly reordered. Fields this package does not know, at the
// top level and inside "_lcfile", "metaData" and "_lcloc", are kept verbatim.
// What is normalised: whitespace between tokens, JSON null for the known
// fields (treated as absent), and zero or empty metaData values and "url" /
// "objId" (omitted).
//
// TypeOf is the cheap check the store and hub use to filter history by
// "_lctype" without decoding a whole body.
//
// A Registry names the application's custom types and validates bodies
// before the hub accepts them; its errors are *realtime.Error values
// (realtime.ErrInvalidMessage with a detail) that the hub can send to the
// client.
//
// # Limits
//
// Decode refuses bodies longer than MaxSize bytes (realtime.ErrMessageTooLarge)
// and bodies nested deeper than MaxDepth objects or arrays
// (realtime.ErrInvalidMessage). These are safety nets against hostile input,
// not policy: the hub's configured message size limit, far lower, applies
// first. TypeOf and IsTyped have no depth limit (they do not build values).
//
// # Concurrency
//
// Decode, Encode, TypeOf and IsTyped are pure functions. A Registry is safe
// for concurrent use; register types at start-up, before Validate is called
// from many goroutines. A Message is a plain value: do not change it while
// another goroutine encodes it.
package typedmsg
