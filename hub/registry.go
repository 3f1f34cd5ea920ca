package hub

import (
	"slices"
	"sync"
)

// registry is this hub's live sessions by client id: who is online here.
type registry struct {
	mu sync.RWMutex
	// clients has each online client's sessions (a slice: usually one or
	// two, and a small map costs several times more per idle client).
	clients map[string][]*session
	// groupRcp are the sessions that asked for receipts in group
	// conversations (configBitmap bit 64): usually few, so a read in a
	// big group looks at them instead of at every member.
	groupRcp map[*session]struct{}
}

func newRegistry() *registry {
	return &registry{clients: make(map[string][]*session), groupRcp: make(map[*session]struct{})}
}

// addLocked registers s; r.mu must be held.
func (r *registry) addLocked(s *session) {
	r.clients[s.clientID] = append(r.clients[s.clientID], s)
	if s.groupReceipts() {
		r.groupRcp[s] = struct{}{}
	}
}

// removeLocked unregisters s; r.mu must be held. It reports whether s
// was registered.
func (r *registry) removeLocked(s *session) bool {
	set := r.clients[s.clientID]
	i := slices.Index(set, s)
	if i < 0 {
		return false
	}
	set = slices.Delete(set, i, i+1)
	if len(set) == 0 {
		delete(r.clients, s.clientID)
	} else {
		r.clients[s.clientID] = set
	}
	delete(r.groupRcp, s)
	return true
}

// sessionsOf returns the live sessions of a client.
func (r *registry) sessionsOf(clientID string) []*session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.clients[clientID])
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
		out = append(out, r.clients[id]...)
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
		out = append(out, set...)
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

// anyOnline reports whether any of clientIDs has a live session here.
func (r *registry) anyOnline(clientIDs []string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, id := range clientIDs {
		if len(r.clients[id]) > 0 {
			return true
		}
	}
	return false
}

// empty reports whether the hub has no live session.
func (r *registry) empty() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.clients) == 0
}
