package typedmsg_test

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/leanhub/realtime/typedmsg"
)

func Example() {
	// A body as the JS SDK's TextMessage sends it.
	m, err := typedmsg.Decode(`{"_lctext":"hi","_lcattrs":{"city":"Montreal"},"_lctype":-1}`)
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Type, *m.Text, string(m.Attrs))

	loc := typedmsg.NewLocation(45.5017, -73.5673)
	loc.SetText("Old Port")
	body, err := loc.Encode()
	if err != nil {
		panic(err)
	}
	fmt.Println(body)

	t, ok := typedmsg.TypeOf(body)
	fmt.Println(t, ok, typedmsg.IsTyped("plain text"))
	// Output:
	// text hi {"city":"Montreal"}
	// {"_lctext":"Old Port","_lcloc":{"latitude":45.5017,"longitude":-73.5673},"_lctype":-5}
	// location true false
}

// OperationMessage of the LeanCloud guide is a custom type 1 whose "op" field
// the JS SDK sends beside "_lctype" (messageField('op')).
func ExampleRegistry() {
	const operationMessage typedmsg.Type = 1

	var registry typedmsg.Registry
	err := registry.Register(operationMessage, "operation", func(m *typedmsg.Message) error {
		var op string
		if json.Unmarshal(m.Extra["op"], &op) != nil || op == "" {
			return errors.New(`"op" must be a non-empty string`)
		}
		return nil
	})
	if err != nil {
		panic(err)
	}

	fmt.Println(registry.Validate(`{"op":"typing","_lctype":1}`))
	fmt.Println(registry.Validate(`{"_lctext":"no op","_lctype":1}`))
	fmt.Println(registry.Validate(`just text`))

	// Building one on the server side, e.g. for a system notification.
	m := &typedmsg.Message{Type: operationMessage, Extra: map[string]json.RawMessage{"op": json.RawMessage(`"kicked"`)}}
	body, _ := m.Encode()
	fmt.Println(body)
	// Output:
	// <nil>
	// realtime: 4410 INVALID_MESSAGE: operation message: "op" must be a non-empty string
	// <nil>
	// {"op":"kicked","_lctype":1}
}
