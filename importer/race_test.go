//go:build race

package importer_test

// The race detector slows the pure-Go SQLite down tenfold: smaller exports.
func init() { raceEnabled = true }
