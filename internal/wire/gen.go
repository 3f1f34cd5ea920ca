// Package wire holds the protobuf messages of LeanCloud's realtime protocol
// and the frame codec for its two websocket subprotocols.
package wire

//go:generate protoc --go_out=. --go_opt=paths=source_relative wire.proto
