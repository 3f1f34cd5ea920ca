package hooks

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/leanhub/realtime"
)

// rewrite returns a hook that appends suffix to the body it sees, with code.
func rewrite(suffix string, code int, seen *[]string) realtime.MessageReceivedHook {
	return realtime.MessageReceivedFunc(func(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
		*seen = append(*seen, ev.Message.Data)
		data := ev.Message.Data + suffix
		return &realtime.MessageReceivedResult{Data: &data, PatchCode: code, PatchReason: suffix}, nil
	})
}

func TestChain(t *testing.T) {
	ctx := context.Background()
	pass := realtime.MessageReceivedFunc(func(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
		return nil, nil
	})
	newEvent := func() *realtime.MessageEvent {
		return &realtime.MessageEvent{Message: &realtime.Message{Data: "m"}, To: []string{"a", "b"}}
	}

	t.Run("rewrites accumulate, last code wins", func(t *testing.T) {
		var seen []string
		ev := newEvent()
		res, err := Chain(rewrite("1", 1, &seen), nil, pass, rewrite("2", 2, &seen)).MessageReceived(ctx, ev)
		if err != nil || res == nil {
			t.Fatalf("got %+v, %v", res, err)
		}
		if *res.Data != "m12" || res.PatchCode != 2 || res.PatchReason != "2" {
			t.Fatalf("got data %q code %d reason %q", *res.Data, res.PatchCode, res.PatchReason)
		}
		if !slices.Equal(seen, []string{"m", "m1"}) {
			t.Fatalf("hooks saw %q", seen)
		}
		if ev.Message.Data != "m" {
			t.Fatalf("caller's message modified: %q", ev.Message.Data)
		}
	})

	t.Run("same body is no rewrite", func(t *testing.T) {
		var seen []string
		same := realtime.MessageReceivedFunc(func(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
			data := ev.Message.Data
			return &realtime.MessageReceivedResult{Data: &data, PatchCode: 3}, nil
		})
		res, _ := Chain(rewrite("1", 1, &seen), same).MessageReceived(ctx, newEvent())
		if res == nil || *res.Data != "m1" || res.PatchCode != 1 {
			t.Fatalf("got %+v", res)
		}
		if res, _ := Chain(same).MessageReceived(ctx, newEvent()); res != nil {
			t.Fatalf("unchanged body reported: %+v", res)
		}
	})

	t.Run("recipients passed on", func(t *testing.T) {
		var sawTo []string
		narrow := realtime.MessageReceivedFunc(func(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
			return &realtime.MessageReceivedResult{To: []string{"a"}}, nil
		})
		look := realtime.MessageReceivedFunc(func(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
			sawTo = ev.To
			return nil, nil
		})
		ev := newEvent()
		res, _ := Chain(narrow, look).MessageReceived(ctx, ev)
		if res == nil || !slices.Equal(res.To, []string{"a"}) || res.Data != nil || !slices.Equal(sawTo, []string{"a"}) {
			t.Fatalf("got %+v, later hook saw %q", res, sawTo)
		}
		if len(ev.To) != 2 {
			t.Fatalf("caller's event modified: %q", ev.To)
		}
	})

	t.Run("drop stops", func(t *testing.T) {
		var seen []string
		drop := realtime.MessageReceivedFunc(func(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
			return &realtime.MessageReceivedResult{Drop: true, AppCode: 9}, nil
		})
		res, err := Chain(rewrite("1", 1, &seen), drop, rewrite("2", 2, &seen)).MessageReceived(ctx, newEvent())
		if err != nil || res == nil || !res.Drop || res.AppCode != 9 || len(seen) != 1 {
			t.Fatalf("got %+v, %v, seen %q", res, err, seen)
		}
	})

	t.Run("error stops", func(t *testing.T) {
		var seen []string
		reject := realtime.MessageReceivedFunc(func(ctx context.Context, ev *realtime.MessageEvent) (*realtime.MessageReceivedResult, error) {
			return nil, realtime.Reject(5, "no")
		})
		res, err := Chain(reject, rewrite("1", 1, &seen)).MessageReceived(ctx, newEvent())
		var rej *realtime.Rejection
		if res != nil || !errors.As(err, &rej) || rej.AppCode != 5 || len(seen) != 0 {
			t.Fatalf("got %+v, %v, seen %q", res, err, seen)
		}
	})

	t.Run("nothing changed", func(t *testing.T) {
		res, err := Chain(pass, NewKeywordFilter([]string{"x"}, nil)).MessageReceived(ctx, newEvent())
		if res != nil || err != nil {
			t.Fatalf("got %+v, %v", res, err)
		}
		if res, err := Chain().MessageReceived(ctx, newEvent()); res != nil || err != nil {
			t.Fatalf("empty chain: got %+v, %v", res, err)
		}
	})
}
