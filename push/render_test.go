package push

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/leanhub/realtime"
)

func TestRenderPriority(t *testing.T) {
	tmpl := MustParseTemplate(`{"alert":"from template"}`)
	at := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		name        string
		in          RenderInput
		wantSource  Source
		wantPayload string
		wantSkipped int
	}{
		{"hook wins", RenderInput{PushMessage: []byte(`{"alert":"hook"}`), PushData: []byte(`{"alert":"data"}`), Template: tmpl}, SourceHook, `{"alert":"hook"}`, 0},
		{"pushData over template", RenderInput{PushData: []byte(`{"alert":"data"}`), Template: tmpl}, SourcePushData, `{"alert":"data"}`, 0},
		{"template last", RenderInput{Template: tmpl}, SourceTemplate, `{"alert":"from template"}`, 0},
		{"bad hook falls back", RenderInput{PushMessage: []byte(`"text"`), PushData: []byte(`{"alert":"data"}`)}, SourcePushData, `{"alert":"data"}`, 1},
		{"array pushData falls back", RenderInput{PushData: []byte(`[1]`), Template: tmpl}, SourceTemplate, `{"alert":"from template"}`, 1},
		{"invalid JSON pushData falls back", RenderInput{PushData: []byte(`{"alert":`), Template: tmpl}, SourceTemplate, `{"alert":"from template"}`, 1},
		{"trailing data falls back", RenderInput{PushData: []byte(`{} {}`), Template: tmpl}, SourceTemplate, `{"alert":"from template"}`, 1},
		{"oversize pushData falls back", RenderInput{PushData: []byte(`{"alert":"` + strings.Repeat("x", 40) + `"}`), MaxPushDataSize: 32, Template: tmpl}, SourceTemplate, `{"alert":"from template"}`, 1},
		{"numbers kept exact", RenderInput{PushData: []byte(`{"n":12345678901234567890,"f":1.50}`)}, SourcePushData, `{"f":1.50,"n":12345678901234567890}`, 0},
		{"no HTML escaping", RenderInput{PushData: []byte(`{"alert":"a<b & c>d"}`)}, SourcePushData, `{"alert":"a<b & c>d"}`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Time = at
			r, err := Render(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if r.Source != tc.wantSource || string(r.Payload) != tc.wantPayload || len(r.Skipped) != tc.wantSkipped {
				t.Errorf("got %v %s skipped %v; want %v %s %d", r.Source, r.Payload, r.Skipped, tc.wantSource, tc.wantPayload, tc.wantSkipped)
			}
			for _, e := range r.Skipped {
				if !errors.Is(e, realtime.ErrInvalidMessage) {
					t.Errorf("skip reason %v is not ErrInvalidMessage", e)
				}
			}
		})
	}
}

func TestRenderNothing(t *testing.T) {
	r, err := Render(RenderInput{ConvID: "c"})
	if r != nil || err != nil {
		t.Errorf("no content: got %v, %v; want no push", r, err)
	}
	r, err = Render(RenderInput{PushData: []byte(`42`)})
	if r != nil || !errors.Is(err, realtime.ErrInvalidMessage) {
		t.Errorf("only invalid content: got %v, %v", r, err)
	}
}

func TestRenderTemplateVariables(t *testing.T) {
	tmpl := MustParseTemplate(`{
		"alert": "${fromClientId} wrote in ${convId} at ${timestamp}",
		"custom": {"list": ["${convId}", 3, true, null], "${convId}": "${unknown} ${convId"},
		"price": "$5 ${}"
	}`)
	r, err := Render(RenderInput{Template: tmpl, ConvID: "c1", From: `Tom "the cat"\`, Time: time.Unix(1700000000, 999)})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"alert":"Tom \"the cat\"\\ wrote in c1 at 1700000000","custom":{"${convId}":"${unknown} ${convId","list":["c1",3,true,null]},"price":"$5 ${}"}`
	if string(r.Payload) != want {
		t.Errorf("payload\n got %s\nwant %s", r.Payload, want)
	}
	if !json.Valid(r.Payload) {
		t.Error("invalid JSON")
	}
}

func TestRenderSpecialKeys(t *testing.T) {
	r, err := Render(RenderInput{PushData: []byte(`{"alert":"hi","badge":"Increment","_profile":"dev","_apns_team_id":"TEAM1"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Profile != "dev" || r.TeamID != "TEAM1" || !r.IncrementBadge {
		t.Errorf("got profile %q team %q increment %v", r.Profile, r.TeamID, r.IncrementBadge)
	}
	if string(r.Payload) != `{"alert":"hi","badge":"Increment"}` {
		t.Errorf("payload %s", r.Payload)
	}
	if got := string(r.WithBadge(7)); got != `{"alert":"hi","badge":7}` {
		t.Errorf("WithBadge = %s", got)
	}

	for _, badge := range []string{`"increment"`, `"INCREMENT"`, `1`} {
		r, _ := Render(RenderInput{PushData: []byte(`{"badge":` + badge + `}`)})
		if r.IncrementBadge {
			t.Errorf("badge %s taken for Increment", badge)
		}
		if string(r.WithBadge(7)) != string(r.Payload) {
			t.Errorf("WithBadge changed a payload without Increment")
		}
	}
}

func TestParseTemplate(t *testing.T) {
	for _, bad := range []string{"", "[]", `"x"`, `{"a":`, `{} x`} {
		if _, err := ParseTemplate(bad); err == nil {
			t.Errorf("ParseTemplate(%q) succeeded", bad)
		}
	}
}

func TestNotifications(t *testing.T) {
	store := newMemStore()
	ios := realtime.Device{ClientID: "bob", Platform: realtime.PlatformIOS, Token: "t1", Badge: 2}
	android := realtime.Device{ClientID: "bob", Platform: realtime.PlatformAndroid, Token: "t2"}
	store.RegisterDevice(t.Context(), ios)
	store.RegisterDevice(t.Context(), android)
	r, _ := Render(RenderInput{Template: MustParseTemplate(`{"alert":"new","badge":"Increment","_profile":"dev"}`)})
	now := time.Unix(1700000000, 0)
	ns, err := r.Notifications(t.Context(), store, []realtime.Device{ios, android}, Origin{ConvID: "c", From: "tom", MsgID: "m1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 2 || string(ns[0].Payload) != `{"alert":"new","badge":3}` || string(ns[1].Payload) != `{"alert":"new","badge":1}` {
		t.Fatalf("payloads %s %s", ns[0].Payload, ns[1].Payload)
	}
	if ns[0].Device.Badge != 3 || ns[0].Profile != "dev" || ns[0].MsgID != "m1" || !ns[0].CreatedAt.Equal(now) {
		t.Errorf("notification %+v", ns[0])
	}
	again, _ := r.Notifications(t.Context(), store, []realtime.Device{ios}, Origin{MsgID: "m1"}, now)
	if again[0].ID != ns[0].ID || ns[0].ID == ns[1].ID {
		t.Errorf("ids not stable per (message, device): %s %s %s", ns[0].ID, again[0].ID, ns[1].ID)
	}
	if !isUUID(ns[0].ID) {
		t.Errorf("id %q is not UUID-shaped", ns[0].ID)
	}
	if _, err := r.Notifications(t.Context(), nil, []realtime.Device{ios}, Origin{}, now); err == nil {
		t.Error("Increment without a BadgeCounter succeeded")
	}
}

func FuzzRender(f *testing.F) {
	f.Add([]byte(`{"alert":"hi","badge":"Increment","_profile":"dev"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"a":{"b":[1,2,{"c":"${convId}"}]}}`))
	tmpl := MustParseTemplate(`{"alert":"${fromClientId}"}`)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Render(RenderInput{PushData: data, Template: tmpl, From: string(data)})
		if err != nil {
			t.Fatal(err) // the template always remains
		}
		if !json.Valid(r.Payload) {
			t.Fatalf("invalid payload %q", r.Payload)
		}
		if r.IncrementBadge && !json.Valid(r.WithBadge(1)) {
			t.Fatal("invalid WithBadge")
		}
	})
}
