package hub

import "sync"

// registry is this hub's live sessions by client id: who is online here.
type registry struct {
	mu      sync.RWMutex
	clients map[string]map[*session]struct{}
	// groupRcp are the sessions that asked for receipts in group
	// conversations (configBitmap bit 64): usually few, so a read in a
	// big group looks at them instead of at every member.
	groupRcp map[*session]struct{}
}

func newRegistry() *registry {
	return &registry{clients: make(map[string]map[*session]struct{}), groupRcp: make(map[*session]struct{})}
}

// addLocked registers s; r.mu must be held.
func (r *registry) addLocked(s *session) {
	set := r.clients[s.clientID]
	if set == nil {
		set = make(map[*session]struct{}, 1)
		r.clients[s.clientID] = set
	}
	set[s] = struct{}{}
	if s.groupReceipts() {
		r.groupRcp[s] = struct{}{}
	}
}

// removeLocked unregisters s; r.mu must be held. It reports whether s
// was registered.
func (r *registry) removeLocked(s *session) bool {
	set, ok := r.clients[s.clientID]
	if !ok {
		return false
	}
	if _, ok := set[s]; !ok {
		return false
	}
	delete(set, s)
	if len(set) == 0 {
		delete(r.clients, s.clientID)
	}
	delete(r.groupRcp, s)
	return true
}

// sessionsOf returns the live sessions of a client.
func (r *registry) sessionsOf(clientID string) []*session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	set := r.clients[clientID]
	if len(set) == 0 {
		return nil
	}
	out := make([]*session, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	return out
}

// sessionsOfAll returns the live sessions of several clients, leaving out
// skip's.
func (r *registry) sessionsOfAll(clientIDs []string, skip string) []*session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*session
	for _, id := range clientIDs {
		if id == skip {
			continue
		}
		for s := range r.clients[id] {
			out = append(out, s)
		}
	}
	return out
}

// sessionsAndOffline returns the live sessions of several clients,
// leaving out skip's, and (with wantOffline) the clients that have none.
func (r *registry) sessionsAndOffline(clientIDs []string, skip string, wantOffline bool) ([]*session, []string) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*session
	var offline []string
	for _, id := range clientIDs {
		if id == skip {
			continue
		}
		set := r.clients[id]
		if len(set) == 0 && wantOffline {
			offline = append(offline, id)
		}
		for s := range set {
			out = append(out, s)
		}
	}
	return out, offline
}

// online reports whether a client has a live session on this hub.
func (r *registry) online(clientID string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.clients[clientID]) > 0
}

// groupReceiptSessions returns the sessions that want group receipts.
func (r *registry) groupReceiptSessions() []*session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.groupRcp) == 0 {
		return nil
	}
	out := make([]*session, 0, len(r.groupRcp))
	for s := range r.groupRcp {
		out = append(out, s)
	}
	return out
}

// count returns the number of live sessions and of distinct clients.
func (r *registry) count() (sessions, clients int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, set := range r.clients {
		sessions += len(set)
	}
	return sessions, len(r.clients)
}
