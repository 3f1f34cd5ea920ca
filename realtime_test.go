package realtime_test

import (
	"errors"
	"fmt"
	"testing"

	realtime "github.com/leanhub/realtime"
)

func TestErrorIsMatchesByCodeWhateverTheDetail(t *testing.T) {
	err := fmt.Errorf("send: %w", realtime.ErrMessageNotFound.WithDetail("message %s", "x"))
	if !errors.Is(err, realtime.ErrMessageNotFound) {
		t.Fatal("errors.Is lost the code through WithDetail and wrapping")
	}
	if errors.Is(err, realtime.ErrMessageOwnership) {
		t.Fatal("different codes matched")
	}
	if realtime.ErrMessageNotFound.Detail != "" {
		t.Fatal("WithDetail changed the sentinel")
	}
}

func TestAsErrorHidesForeignErrors(t *testing.T) {
	if got := realtime.AsError(errors.New("pq: password authentication failed")); got != realtime.ErrInternal || got.Detail != "" {
		t.Fatalf("foreign error became %v", got)
	}
	coded := realtime.ErrConvFull.WithDetail("at most 3")
	if got := realtime.AsError(fmt.Errorf("wrapped: %w", coded)); got != coded {
		t.Fatalf("coded error became %v", got)
	}
	if realtime.AsError(nil) != nil {
		t.Fatal("nil became an error")
	}
}

func TestMentionsAndMembership(t *testing.T) {
	m := &realtime.Message{MentionPids: []string{"Tom"}}
	if !m.Mentions("Tom") || m.Mentions("Jerry") {
		t.Fatal("mention list")
	}
	m.MentionAll = true
	if !m.Mentions("Jerry") {
		t.Fatal("mention-all mentions everyone")
	}
	c := &realtime.Conversation{Members: []string{"Jerry", "Tom"}}
	if !c.HasMember("Tom") || c.HasMember("Kate") {
		t.Fatal("HasMember")
	}
}

func TestRejectionCarriesAppCode(t *testing.T) {
	var r *realtime.Rejection
	if !errors.As(fmt.Errorf("hook: %w", realtime.Reject(42, "no")), &r) || r.AppCode != 42 || r.Detail != "no" {
		t.Fatalf("rejection = %+v", r)
	}
}
