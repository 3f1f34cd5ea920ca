package push_test

import (
	"fmt"
	"time"

	"github.com/leanhub/realtime/push"
)

func ExampleRender() {
	tmpl := push.MustParseTemplate(`{"alert":"${fromClientId} wrote in ${convId}","badge":"Increment","sent":"${timestamp}","_profile":"dev"}`)
	r, err := push.Render(push.RenderInput{
		PushData: []byte(`["not", "an", "object"]`), // the sender's pushData, invalid: skipped
		Template: tmpl,
		ConvID:   "5f1c0e2a9b0c4d3e2f1a0b9c",
		From:     "Tom",
		Time:     time.Unix(1700000000, 0),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Source, r.Profile, r.IncrementBadge)
	fmt.Println(r.Skipped)
	fmt.Printf("%s\n", r.WithBadge(3))
	// Output:
	// template dev true
	// [realtime: 4410 INVALID_MESSAGE: pushData: not a JSON object]
	// {"alert":"Tom wrote in 5f1c0e2a9b0c4d3e2f1a0b9c","badge":3,"sent":"1700000000"}
}
