// Package myapp shows how an application in its own module tests its hooks
// against a real hub with hub/hubtest: nothing here names a type internal to
// github.com/leanhub/realtime.
package myapp

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/hub/hubtest"
	"github.com/leanhub/realtime/store"
)

// noLinks is the application's hook under test: it refuses messages with
// links.
var noLinks = realtime.MessageReceivedFunc(func(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
	if strings.Contains(ev.Message.Data, "http://") {
		return nil, realtime.Reject(1001, "no links")
	}
	return nil, nil
})

func TestNoLinks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "chat.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := hubtest.NewServer(t, st, &hub.Config{Hooks: []any{noLinks}})
	tom := srv.Login(t, "Tom")
	jerry := srv.Login(t, "Jerry")
	conv, err := tom.StartConversation(ctx, "Jerry")
	if err != nil {
		t.Fatal(err)
	}

	_, err = tom.SendText(ctx, conv, "see http://example.com")
	var e *realtime.Error
	if !errors.As(err, &e) || e.Code != realtime.CodeMessageRejectedByApp || e.AppCode != 1001 {
		t.Fatalf("link message: got %v, want 4402 with app code 1001", err)
	}
	if _, err := tom.SendText(ctx, conv, "hello"); err != nil {
		t.Fatal(err)
	}
	m, err := jerry.NextMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.From != "Tom" || !strings.Contains(m.Data, "hello") {
		t.Fatalf("jerry got %+v, want Tom's hello", m)
	}
}
