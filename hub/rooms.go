package hub

import "sync"

// rooms tracks who has joined each chat room (transient conversation).
// LeanCloud keeps no member list for chat rooms: membership is presence, so
// it lives in memory and ends when a client's last session ends.
type rooms struct {
	mu      sync.RWMutex
	members map[string]map[string]struct{} // conv id -> client ids
	joined  map[string]map[string]struct{} // client id -> conv ids
}

func newRooms() *rooms {
	return &rooms{members: make(map[string]map[string]struct{}), joined: make(map[string]map[string]struct{})}
}

func (r *rooms) join(convID string, clientIDs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range clientIDs {
		if r.members[convID] == nil {
			r.members[convID] = make(map[string]struct{})
		}
		r.members[convID][id] = struct{}{}
		if r.joined[id] == nil {
			r.joined[id] = make(map[string]struct{})
		}
		r.joined[id][convID] = struct{}{}
	}
}

func (r *rooms) leave(convID string, clientIDs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range clientIDs {
		r.leaveLocked(convID, id)
	}
}

func (r *rooms) leaveLocked(convID, clientID string) {
	delete(r.members[convID], clientID)
	if len(r.members[convID]) == 0 {
		delete(r.members, convID)
	}
	delete(r.joined[clientID], convID)
	if len(r.joined[clientID]) == 0 {
		delete(r.joined, clientID)
	}
}

// leaveAll removes a client from every room (its last session ended).
func (r *rooms) leaveAll(clientID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for convID := range r.joined[clientID] {
		r.leaveLocked(convID, clientID)
	}
}

func (r *rooms) has(convID, clientID string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.members[convID][clientID]
	return ok
}

func (r *rooms) list(convID string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.members[convID]))
	for id := range r.members[convID] {
		out = append(out, id)
	}
	return out
}

func (r *rooms) count(convID string) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.members[convID])
}

// clear empties a room (it was deleted).
func (r *rooms) clear(convID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.members[convID] {
		r.leaveLocked(convID, id)
	}
}
