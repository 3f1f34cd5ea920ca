// Package push sends push notifications for messages that reached
// recipients while they were offline, the way LeanCloud's LeanMessage did.
//
// It has three parts:
//
//   - Render chooses a message's push content by LeanCloud's priority: the
//     ReceiversOffline hook's pushMessage, else the sender's pushData, else
//     the app's static Template (with ${convId}, ${timestamp} and
//     ${fromClientId}). It strips "_profile" and "_apns_team_id" and notes a
//     badge of "Increment"; Rendered.Notifications then builds one
//     realtime.Notification per device, incrementing badges. With no
//     template configured and no pushData (and no hook content), nothing is
//     pushed.
//   - Queue delivers notifications from the durable queue of a
//     realtime.DeviceStore with bounded concurrency, jittered exponential
//     backoff, the 7-day validity of a push, and unregistration of devices
//     whose token the service refuses.
//   - Pushers speak to the services: APNs (token auth over HTTP/2), FCM
//     (HTTP v1 API with a service account), Webhook (a signed POST to the
//     app, which forwards it anywhere), Log (development) and Multi (route
//     by device platform). A pusher's error tells the Queue what to do:
//     wrapping realtime.ErrBadDeviceToken unregisters the device and drops
//     the notification, wrapping ErrPermanent drops it, anything else
//     retries. The HTTP pushers return *ProviderError.
//
// # How the hub uses it
//
// The hub decides who is offline: after storing a message it runs the
// ReceiversOffline hook, skips members who muted the conversation (unless
// the hook forces), and for the remaining offline recipients calls Render,
// DeviceStore.Devices, Rendered.Notifications and Queue.Enqueue. Enqueue
// writes to the store before returning, so pushes survive a restart; the
// Queue, started with the hub and stopped on shutdown, does the rest.
// Nothing here is called for transient conversations or messages.
//
// # Concurrency
//
// Render, the pushers and Queue.Enqueue are safe for concurrent use. A
// Queue's Start and Stop own its goroutines: after Stop returns none is
// left. Delivery is at least once; receivers of Webhook calls should
// de-duplicate by notification id.
package push
