// Package importer moves a LeanCloud app's instant-messaging data into a
// store of this project before the app switches to its own server:
// conversations (members, attributes, unique, transient and system flags,
// mutes, creation times) from the console's _Conversation export, and each
// conversation's message history, pulled through LeanCloud's REST history
// API (Client) or read from files downloaded before. Messages keep their
// LeanCloud ids and timestamps, which the SDKs have cached; recalled
// messages stay recalled, binary ones binary, mentions mentions.
//
//	st, _ := store.Open(ctx, "chat.db", nil)
//	im, err := importer.New(st, &importer.Config{
//		Conversations: []importer.Source{importer.File("_Conversation.json")},
//		LeanCloud: &importer.Client{BaseURL: "https://abcd1234.lc-cn-n1-shared.com",
//			AppID: appID, MasterKey: masterKey},
//		Progress: os.Stderr,
//	})
//	summary, err := im.Run(ctx)
//	summary.WriteTo(os.Stdout)
//
// cmd/lcimport is the same as a command.
//
// # What a run does
//
// Conversations are imported first, then history conversation by
// conversation: a conversation's messages are sorted by timestamp (ties
// by message id), repeated ids dropped, and each gets the next sequence
// number of its conversation; the conversation's head (newest message,
// newest mention-all) follows. The store keeps timestamps unique per
// conversation; two messages LeanCloud stored in the same millisecond
// keep their order and the later one is moved 1 ms later (and so on),
// which is reported (ReasonTimestampMoved). After a conversation's last
// message, its members' read and delivered cursors move (see UnreadMode:
// by default to the newest imported message, so that nothing imported is
// unread) and the conversation is recorded in the checkpoint.
//
// # Idempotent and resumable
//
// Every write is an upsert by id (Target): a second run over the same data
// writes nothing, and a run stopped at any point (ctx cancelled, the
// process killed) leaves whole transactions behind and is continued by
// running it again, which ends in the same data as an uninterrupted run.
// The checkpoint (Target.ImportProgress; the store's import_progress
// table) lets a new run skip conversations that were imported completely:
// with the REST source they are not fetched again (Config.Refresh fetches
// them, to pick up messages sent on LeanCloud since); with files their
// messages are compared and skipped when unchanged.
//
// Messages are only added after a conversation's newest stored message: a
// message older than that which is not stored yet (the conversation was
// used on the new server in between, or the export changed under it) is
// skipped and reported. Import before going live; importing again later
// brings in LeanCloud messages newer than everything stored.
//
// # Bad input
//
// Malformed lines, records of the wrong shape, ids that are not LeanCloud
// ids (conversations: 24 lowercase hex digits; temporary _tmp:
// conversations, which LeanCloud does not export, are skipped), invalid
// client ids, undecodable bodies and duplicate messages are skipped and
// counted by Reason in the Summary with examples; the rest is imported.
// Unknown history fields are counted and ignored. Every _Conversation
// field that is not LeanCloud's own is kept as a custom attribute.
//
// # Concurrency
//
// Run reads the sources and writes through the Target from its own
// goroutine; with the REST source, Client.Concurrency conversations are
// fetched at once. Nothing is left running when Run returns. A hub serving
// the same store caches conversations in memory: import before starting
// it, or restart it afterwards, and do not serve the imported
// conversations while the import runs.
package importer
