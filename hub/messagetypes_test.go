package hub_test

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	realtime "github.com/leanhub/realtime"
	"github.com/leanhub/realtime/hub"
	"github.com/leanhub/realtime/internal/wire"
	"github.com/leanhub/realtime/typedmsg"
)

func TestMessageTypesValidateBodiesAndHistoryFiltersByType(t *testing.T) {
	reg := &typedmsg.Registry{}
	if err := reg.Register(1, "OperationMessage", func(m *typedmsg.Message) error {
		if _, ok := m.Extra["op"]; !ok {
			return errors.New("op is required")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	each(t, func(t *testing.T, srv *testServer, id func(string) string) {
		ctx := ctxT(t)
		tom := srv.Login(t, id("Tom"))
		cid, _ := tom.StartConversation(ctx, id("Jerry"))
		send := func(body string) error {
			_, err := tom.SendDirect(ctx, &wire.DirectCommand{Cid: proto.String(cid), Msg: proto.String(body)})
			return err
		}
		if err := send(`{"_lctype":1}`); !errors.Is(err, realtime.ErrInvalidMessage) {
			t.Fatalf("custom type without op: %v", err)
		}
		if err := send(`{"_lctype":-5,"_lcloc":{"latitude":123,"longitude":0}}`); !errors.Is(err, realtime.ErrInvalidMessage) {
			t.Fatalf("location out of range: %v", err)
		}
		for _, ok := range []string{`{"_lctype":1,"op":"typing"}`, text("hi"), "plain text", `{"_lctype":77,"x":1}`} {
			if err := send(ok); err != nil {
				t.Fatalf("%s refused: %v", ok, err)
			}
		}
		logs, err := tom.History(ctx, &wire.LogsCommand{Cid: proto.String(cid), Lctype: proto.Int32(1)})
		if err != nil || len(logs) != 1 || logs[0].GetData() != `{"_lctype":1,"op":"typing"}` {
			t.Fatalf("history of type 1 = %v, %v", logs, err)
		}
	}, &hub.Config{MessageTypes: reg})
}
