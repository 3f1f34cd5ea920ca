package cluster

import (
	"bytes"
	"reflect"
	"testing"

	realtime "github.com/leanhub/realtime"
)

func TestMessageRoundTrip(t *testing.T) {
	m := &realtime.Message{ID: "m1", ConvID: "c1", From: "tom", Data: "hi", Timestamp: 5, Seq: 2,
		MentionAll: true, MentionPids: []string{"jerry"}, Receipt: true, To: []string{}}
	b, err := Encode(&Event{Kind: KindMessage, Conv: "c1", Msg: FromMessage(m)})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	got := ev.Msg.Message(ev.Conv)
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip: got %+v, want %+v", got, m)
	}
	// nil To stays nil: it means every member, not nobody.
	m.To = nil
	b, _ = Encode(&Event{Kind: KindMessage, Conv: "c1", Msg: FromMessage(m)})
	ev, _ = Decode(b)
	if ev.Msg.To != nil {
		t.Fatalf("nil To came back as %#v", ev.Msg.To)
	}
}

func TestDecodeRefusesIncompleteEvents(t *testing.T) {
	for _, in := range []string{
		``, `{}`, `{"k":"zz"}`, `{"k":"m"}`, `{"k":"m","c":"x"}`, `{"k":"l","c":"x"}`,
		`{"k":"p"}`, `{"k":"p","p":{"f":""}}`, `{"k":"p","p":{"f":"AA==","mb":true}}`,
		`{"k":"c"}`, `{"k":"x"}`, `{"k":"r","r":{}}`, `{"k":"s"}`, `{"k":"d"}`, `[1]`, `{"k":"m",`,
	} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%q) = nil error", in)
		}
	}
	if _, err := Decode(bytes.Repeat([]byte(" "), MaxEventSize+1)); err == nil {
		t.Error("an oversized event was accepted")
	}
}

func FuzzDecode(f *testing.F) {
	for _, ev := range []*Event{
		{Kind: KindMessage, Conv: "c", Msg: &Msg{ID: "1", From: "a", Binary: []byte{0, 1}}},
		{Kind: KindPush, Conv: "c", Push: &Push{Frame: []byte{8, 1}, Clients: []string{"a"}, Members: true, GroupOnly: true}},
		{Kind: KindPresence, Node: "n", Sessions: []Session{{ID: "1", Client: "a", Tag: "t"}}, Gone: []string{"2"}},
		{Kind: KindKick, Kick: &Kick{Client: "a", Sessions: []string{"n/1"}, Code: 4111}},
	} {
		b, _ := Encode(ev)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Decode(b)
		if err != nil {
			return
		}
		// What decodes re-encodes and decodes to the same event.
		again, err := Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		ev2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded event does not decode: %v", err)
		}
		third, _ := Encode(ev2)
		if !bytes.Equal(again, third) {
			t.Fatalf("round trip changed the event:\n%s\n%s", again, third)
		}
	})
}
