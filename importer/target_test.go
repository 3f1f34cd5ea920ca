package importer_test

import (
	"github.com/leanhub/realtime/importer"
	"github.com/leanhub/realtime/store"
)

var _ importer.Target = (*store.SQL)(nil)
