package hub

// Crash makes a hub of several nodes behave as if its process died (kill
// -9): it publishes and writes nothing more (no lease renewal, no
// presence, no will messages, no goodbye to the other nodes), and its
// sockets drop. The other nodes find out when its lease runs out.
func Crash(h *Hub) {
	h.cl.dead.Store(true)
	h.mu.RLock()
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.RUnlock()
	for _, c := range conns {
		c.closeWith(1001, "", closeDrop)
	}
}

// NodeID is the hub's node id (several nodes).
func NodeID(h *Hub) string { return h.cl.node }
