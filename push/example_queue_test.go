package push

import (
	"context"
	"fmt"
	"time"

	"github.com/leanhub/realtime"
)

// The path of a message to an offline member, as the hub takes it: render
// the content, build per-device notifications, enqueue them; the started
// Queue delivers. The in-memory store stands in for store.SQL.
func ExampleQueue() {
	ctx := context.Background()
	store := newMemStore() // any realtime.DeviceStore
	bob := realtime.Device{ClientID: "bob", Platform: realtime.PlatformIOS, Token: "abc", Badge: 1}
	store.RegisterDevice(ctx, bob)

	delivered := make(chan string)
	pusher := realtime.PusherFunc(func(ctx context.Context, n *realtime.Notification) error {
		delivered <- fmt.Sprintf("%s %s: %s", n.Device.Platform, n.Device.ClientID, n.Payload)
		return nil
	})
	q, err := NewQueue(store, pusher, &QueueOptions{Workers: 4, Logger: quietLogger()})
	if err != nil {
		panic(err)
	}
	q.Start(ctx)
	defer q.Stop(ctx)

	r, err := Render(RenderInput{
		Template: MustParseTemplate(`{"alert":"New message from ${fromClientId}","badge":"Increment"}`),
		ConvID:   "conv1",
		From:     "tom",
	})
	if err != nil || r == nil {
		panic("no push")
	}
	devices, _ := store.Devices(ctx, []string{"bob"})
	ns, err := r.Notifications(ctx, store, devices, Origin{ConvID: "conv1", From: "tom", MsgID: "m1"}, time.Now())
	if err != nil {
		panic(err)
	}
	if err := q.Enqueue(ctx, ns...); err != nil {
		panic(err)
	}
	fmt.Println(<-delivered)
	// Output:
	// ios bob: {"alert":"New message from tom","badge":2}
}
