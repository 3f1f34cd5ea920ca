package hub_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/hub/hubtest"
	"github.com/leanhub/realtime/store"
	"github.com/leanhub/realtime/typedmsg"
)

// A hub mounted under /im of a chi app; two clients speaking the LeanCloud
// protocol (as the official SDKs do) chat through it.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dir, _ := os.MkdirTemp("", "hub-example")
	defer os.RemoveAll(dir)

	st, err := store.Open(ctx, filepath.Join(dir, "chat.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	h, err := hub.New(st, &hub.Config{AppID: "my-app"})
	if err != nil {
		log.Fatal(err)
	}
	r := chi.NewRouter()
	r.Mount("/im", h) // the SDK's server option: http://host/im
	srv := httptest.NewServer(r)
	defer srv.Close()
	defer h.Shutdown(ctx)

	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/im/ws"
	login := func(id string) *hubtest.Client {
		c, err := hubtest.Dial(ctx, wsURL, hubtest.AppID("my-app"))
		if err != nil {
			log.Fatal(err)
		}
		if _, err := c.Open(ctx, id, hubtest.OpenOptions{}); err != nil {
			log.Fatal(err)
		}
		return c
	}
	tom, jerry := login("Tom"), login("Jerry")
	defer tom.Close()
	defer jerry.Close()

	conv, _ := tom.StartConversation(ctx, "Jerry")
	tom.SendText(ctx, conv, "hello Jerry")
	m, _ := jerry.NextMessage(ctx)
	body, _ := typedmsg.Decode(m.Data)
	fmt.Printf("%s got %q from %s\n", "Jerry", *body.Text, m.From)
	// Output: Jerry got "hello Jerry" from Tom
}

// Sending from Go, as a client or a system account, e.g. from an HTTP
// handler of the host app.
func ExampleHub_Send() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "hub-example")
	defer os.RemoveAll(dir)
	st, _ := store.Open(ctx, filepath.Join(dir, "chat.db"), nil)
	defer st.Close()
	h, _ := hub.New(st, nil)
	defer h.Shutdown(ctx)

	conv, _, _ := st.CreateConversation(ctx, &realtime.Conversation{Creator: "bot", Members: []string{"bot", "Tom"}})
	body, _ := typedmsg.NewText("Your order shipped").Encode()
	m, err := h.Send(ctx, &realtime.Message{ConvID: conv.ID, From: "bot", Data: body}, nil)
	fmt.Println(err == nil && m.ID != "" && m.Timestamp > 0, m.Data)
	// Output: true {"_lctext":"Your order shipped","_lctype":-1}
}
