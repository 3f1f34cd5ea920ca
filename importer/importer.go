package importer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leanhub/realtime"
)

// Target is where an import writes: *store.SQL implements it. Every method
// must be an upsert by id (a second call with the same data changes
// nothing) and safe to call again after a failure.
type Target interface {
	// ImportConversations stores conversations with their own IDs,
	// members, attributes and times. created[i] reports whether convs[i]
	// was stored now; a conversation whose id is stored already is left
	// as it is (created false, errs[i] nil); errs[i] says why one was
	// refused. New members' cursors are at 0.
	ImportConversations(ctx context.Context, convs []realtime.Conversation) (created []bool, errs []error, err error)

	// ImportMessages stores messages with their own IDs and Timestamps
	// (ascending and unique within each conversation), each with the next
	// Seq of its conversation, and moves the conversations' heads. One
	// result per message: Message is the stored copy (with Seq);
	// Duplicate when that id was stored in that conversation before; Err
	// when refused (unknown conversation, id used elsewhere, not newer
	// than the conversation's newest message, malformed). Mentions raise
	// the mentioned members' marks; no read cursor moves.
	ImportMessages(ctx context.Context, msgs []realtime.Message) ([]realtime.AppendResult, error)

	// UpdateCursors moves members' read and delivered cursors forward
	// (realtime.Store's method).
	UpdateCursors(ctx context.Context, cursors []realtime.Cursor) error

	// ImportProgress returns the checkpoint of source: conversation id ->
	// the state saved by SaveImportProgress.
	ImportProgress(ctx context.Context, source string) (map[string]string, error)

	// SaveImportProgress records states in the checkpoint of source.
	SaveImportProgress(ctx context.Context, source string, states map[string]string) error
}

// Source is one input: a file of the export or of downloaded history.
type Source struct {
	Name string // shown in reports
	Open func() (io.ReadCloser, error)
}

// File is a Source reading the file at path.
func File(path string) Source {
	return Source{Name: path, Open: func() (io.ReadCloser, error) { return os.Open(path) }}
}

// Reader is a Source reading r (once).
func Reader(name string, r io.Reader) Source {
	return Source{Name: name, Open: func() (io.ReadCloser, error) { return io.NopCloser(r), nil }}
}

// UnreadMode is where the importer leaves members' read cursors.
type UnreadMode int

const (
	// AllRead (the default) marks every member as having read and
	// received everything imported: after the switch nobody sees old
	// history as unread. LeanCloud's exports carry no read positions.
	AllRead UnreadMode = iota
	// UnreadAfterOwn leaves each member's cursors at its own newest
	// imported message, as if the history had been sent on this server
	// and nobody had read anything since writing: a member's unread count
	// is the messages after its last one (all of them for a member who
	// never wrote).
	UnreadAfterOwn
)

// Config says what to import. The zero value of every field but the
// sources is usable.
type Config struct {
	// Conversations are _Conversation exports: JSON lines, a JSON array or
	// {"results": [...]}. Only messages of these conversations are
	// imported.
	Conversations []Source
	// History are files of history items as GET
	// /1.2/rtm/conversations/{id}/messages returns them (a JSON array per
	// page, or JSON lines), pages in any order, conversations mixed.
	History []Source
	// LeanCloud pulls history from the old app instead of History (one
	// of the two, or neither for conversations only).
	LeanCloud *Client
	// AppWide pulls history through the app-wide GET /1.2/rtm/messages
	// instead of conversation by conversation. A resumed run fetches all
	// of it again (the per-conversation pull skips conversations the
	// checkpoint has).
	AppWide bool
	// SaveFetched, when set, is called with what is fetched from
	// LeanCloud: a conversation's whole history (name is its id) or, with
	// AppWide, each page (name "app-000001", ...), before it is imported.
	SaveFetched func(name string, items []json.RawMessage) error

	// Unread is where members' read cursors are left; default AllRead.
	Unread UnreadMode
	// BatchSize is the number of messages per Target.ImportMessages call
	// (a transaction each in the SQL store). Default 500.
	BatchSize int
	// Refresh looks again at conversations the checkpoint says were
	// imported completely (to pick up messages sent on LeanCloud since);
	// the import stays idempotent.
	Refresh bool
	// DryRun reads and checks everything and writes nothing; the Target
	// may be nil. The summary says what would be imported into an empty
	// store.
	DryRun bool
	// Progress receives a progress line every ProgressEvery (default 2s)
	// and at each phase; nil for none.
	Progress      io.Writer
	ProgressEvery time.Duration
	// Now is the clock (messages more than a day after it are refused);
	// default time.Now.
	Now func() time.Time
}

// Importer imports a LeanCloud app's conversations and history into a
// Target. Create it with New; Run it once per import (it reads the sources
// again on every Run).
type Importer struct {
	target Target
	cfg    Config
}

// New checks cfg and returns an Importer writing to target (nil only with
// DryRun).
func New(target Target, cfg *Config) (*Importer, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if len(c.Conversations) == 0 {
		return nil, errors.New("importer: no conversation export given (Config.Conversations)")
	}
	if c.LeanCloud != nil && len(c.History) > 0 {
		return nil, errors.New("importer: history comes from files or from LeanCloud, not both")
	}
	if c.LeanCloud != nil {
		if err := c.LeanCloud.check(); err != nil {
			return nil, err
		}
	}
	if c.AppWide && c.LeanCloud == nil {
		return nil, errors.New("importer: AppWide needs Config.LeanCloud")
	}
	if c.Unread != AllRead && c.Unread != UnreadAfterOwn {
		return nil, fmt.Errorf("importer: unknown UnreadMode %d", c.Unread)
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 2 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.DryRun {
		target = newDryTarget()
	} else if target == nil {
		return nil, errors.New("importer: nil Target (only DryRun runs without one)")
	}
	return &Importer{target: target, cfg: c}, nil
}

// convInfo is an exported conversation as the importer keeps it.
type convInfo struct {
	id        string
	members   []string
	transient bool
}

// run is the state of one Run.
type run struct {
	*Importer
	ctx      context.Context
	sum      *Summary
	source   string
	convs    map[string]*convInfo // imported (or present) conversations
	progress map[string]string    // checkpoint
	maxTS    int64

	phase              atomic.Value // string
	convsDone, fetched atomic.Int64
	printMu            sync.Mutex // one progress line at a time on Config.Progress
}

// Run imports: the conversations of the export, then each conversation's
// history, and returns what it did. A fatal error (the Target or
// LeanCloud failing for good, ctx ending) stops it: what was written
// stays written and a new Run continues (conversations completed before
// are skipped through the checkpoint, the rest are upserted again).
// Records that cannot be imported are skipped and reported in the
// Summary, which Run returns also with an error.
func (im *Importer) Run(ctx context.Context) (*Summary, error) {
	start := time.Now()
	r := &run{Importer: im, ctx: ctx, sum: newSummary(), convs: map[string]*convInfo{}}
	r.sum.DryRun = im.cfg.DryRun
	r.maxTS = im.cfg.Now().Add(24 * time.Hour).UnixMilli()
	r.source = "files"
	if im.cfg.LeanCloud != nil {
		r.source = "leancloud:" + im.cfg.LeanCloud.AppID
	}
	var requests, retries int64
	if c := im.cfg.LeanCloud; c != nil {
		requests, retries = c.requests.Load(), c.retries.Load()
	}
	r.phase.Store("starting")
	stop := r.startProgress()
	err := r.run()
	stop()
	r.sum.Elapsed = time.Since(start)
	if c := im.cfg.LeanCloud; c != nil {
		r.sum.Requests, r.sum.Retries = c.requests.Load()-requests, c.retries.Load()-retries
	}
	return r.sum, err
}

func (r *run) run() error {
	r.setPhase("reading conversations")
	if err := r.importConversations(); err != nil {
		return err
	}
	var err error
	if r.progress, err = r.target.ImportProgress(r.ctx, r.source); err != nil {
		return fmt.Errorf("importer: read checkpoint: %w", err)
	}
	w := &writer{run: r}
	switch {
	case r.cfg.LeanCloud != nil && !r.cfg.AppWide:
		w.eager = true
		err = r.fetchEach(w)
	case r.cfg.LeanCloud != nil:
		r.setPhase("fetching app-wide history")
		err = r.fetchAppWide(w)
	default:
		r.setPhase("reading history")
		err = r.readHistoryFiles(w)
	}
	if err == nil {
		err = w.flush()
	}
	r.setPhase("done")
	return err
}

// importConversations reads the exports and imports the conversations.
func (r *run) importConversations() error {
	var list []realtime.Conversation
	seen := map[string]bool{}
	for _, src := range r.cfg.Conversations {
		err := r.read(src, "conversation", func(rec record) error {
			o, err := rec.decode()
			if err != nil {
				r.sum.report("conversation", rec.where(), ReasonMalformed, describeJSONError(rec.raw, err))
				return nil
			}
			c, dropped, reason, detail := parseConversation(o)
			if reason != "" {
				r.sum.report("conversation", rec.where(), reason, detail)
				return nil
			}
			if seen[c.ID] {
				r.sum.report("conversation", rec.where(), ReasonDuplicateConv, c.ID)
				return nil
			}
			seen[c.ID] = true
			for _, d := range dropped {
				r.sum.report("member", rec.where(), ReasonBadMember, fmt.Sprintf("conversation %s: %q", c.ID, d))
			}
			if len(c.Attrs) > 0 {
				var attrs map[string]json.RawMessage
				_ = json.Unmarshal(c.Attrs, &attrs)
				r.sum.add(func(s *Summary) {
					for k := range attrs {
						s.Attributes[k]++
					}
				})
			}
			list = append(list, c)
			return nil
		})
		if err != nil {
			return err
		}
	}
	r.setPhase(fmt.Sprintf("importing %d conversations", len(list)))
	const chunk = 500
	for start := 0; start < len(list); start += chunk {
		part := list[start:min(start+chunk, len(list))]
		created, errs, err := r.target.ImportConversations(r.ctx, part)
		if err != nil {
			return fmt.Errorf("importer: import conversations: %w", err)
		}
		for i, c := range part {
			switch {
			case errs[i] != nil:
				r.sum.report("conversation", c.ID, ReasonConvRefused, errs[i].Error())
				continue
			case created[i]:
				r.sum.add(func(s *Summary) { s.Conversations.Imported++ })
			default:
				r.sum.add(func(s *Summary) { s.Conversations.Existing++ })
			}
			r.convs[c.ID] = &convInfo{id: c.ID, members: c.Members, transient: c.Transient}
		}
	}
	return nil
}

// read reads the records of one source, reporting bad ones as records of
// kind.
func (r *run) read(src Source, kind string, obj func(record) error) error {
	rc, err := src.Open()
	if err != nil {
		return fmt.Errorf("importer: open %s: %w", src.Name, err)
	}
	defer rc.Close()
	err = readRecords(src.Name, rc, func(rec record) error {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		return obj(rec)
	}, func(pos int, detail string) {
		r.sum.report(kind, fmt.Sprintf("%s:%d", src.Name, pos), ReasonMalformed, detail)
	})
	if err != nil {
		return fmt.Errorf("importer: %w", err)
	}
	return nil
}

// item parses one history record, reporting it when it is skipped.
func (r *run) item(where string, raw []byte, fetchedFor string) (historyItem, string, bool) {
	it, unknown, reason, detail := parseItem(raw)
	if len(unknown) > 0 {
		r.sum.add(func(s *Summary) {
			for _, k := range unknown {
				s.UnknownFields[k]++
			}
		})
	}
	if reason == "" && it.msg.Timestamp > r.maxTS {
		reason, detail = ReasonFutureTimestamp, fmt.Sprintf("message %s: %d", it.msg.ID, it.msg.Timestamp)
	}
	var conv string
	if reason == "" {
		conv, reason, detail = resolveConv(&it, fetchedFor, func(id string) bool { return r.convs[id] != nil })
	}
	if reason == "" && r.convs[conv] == nil {
		reason, detail = ReasonUnknownConv, fmt.Sprintf("message %s of %s", it.msg.ID, conv)
	}
	if reason != "" {
		r.sum.report("message", where, reason, detail)
		return it, "", false
	}
	it.msg.ConvID = conv
	it.where = where
	return it, conv, true
}

// readHistoryFiles reads every history file (GOMAXPROCS at once), groups
// the messages by conversation and imports them conversation by
// conversation.
func (r *run) readHistoryFiles(w *writer) error {
	srcs := make(chan Source)
	parsed := make(chan map[string][]historyItem)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(1, len(r.cfg.History))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for src := range srcs {
				groups := map[string][]historyItem{}
				err := r.read(src, "message", func(rec record) error {
					if it, conv, ok := r.item(rec.where(), rec.raw, ""); ok {
						groups[conv] = append(groups[conv], it)
					}
					return nil
				})
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				parsed <- groups
			}
		}()
	}
	go func() {
		defer close(srcs)
		for _, src := range r.cfg.History {
			select {
			case srcs <- src:
			case <-r.ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(parsed)
	}()
	groups := map[string][]historyItem{}
	for g := range parsed {
		for conv, items := range g {
			groups[conv] = append(groups[conv], items...)
		}
	}
	select {
	case err := <-errs:
		return err
	default:
	}
	if err := r.ctx.Err(); err != nil {
		return err
	}
	return r.importGroups(w, groups)
}

// importGroups plans and writes the history of every imported
// conversation (empty for those without messages), in id order.
func (r *run) importGroups(w *writer, groups map[string][]historyItem) error {
	ids := slices.Sorted(maps.Keys(r.convs))
	r.setPhase(fmt.Sprintf("importing the history of %d conversations", len(ids)))
	for _, id := range ids {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		p := r.plan(r.convs[id], groups[id])
		delete(groups, id)
		if err := w.add(p); err != nil {
			return err
		}
	}
	return nil
}

// convPlan is the history of one conversation as it is written.
type convPlan struct {
	conv  *convInfo
	msgs  []realtime.Message
	where []string // of each message
	state string   // checkpoint state once complete

	pending int
	last    *realtime.Message            // newest stored message
	own     map[string]*realtime.Message // newest stored message of each sender
}

// plan orders a conversation's messages by (timestamp, id), drops
// repeated ids, and moves timestamps that are not above the previous
// message's by as many milliseconds as needed: the store keeps timestamps
// unique per conversation, and LeanCloud could give two messages the same
// millisecond. The result depends only on the set of messages, so every
// run (and a resumed one) plans the same seqs and timestamps.
func (r *run) plan(conv *convInfo, items []historyItem) *convPlan {
	slices.SortFunc(items, func(a, b historyItem) int {
		return cmp.Or(cmp.Compare(a.msg.Timestamp, b.msg.Timestamp), strings.Compare(a.msg.ID, b.msg.ID),
			strings.Compare(a.msg.From, b.msg.From), strings.Compare(a.msg.Data, b.msg.Data),
			slices.Compare(a.msg.Binary, b.msg.Binary))
	})
	p := &convPlan{conv: conv, msgs: make([]realtime.Message, 0, len(items)), own: map[string]*realtime.Message{}}
	seen := make(map[string]bool, len(items))
	h := fnv.New64a()
	var prev int64
	for i := range items {
		it := &items[i]
		m := it.msg
		if seen[m.ID] {
			r.sum.report("message", it.where, ReasonDuplicateMessage, fmt.Sprintf("message %s of %s", m.ID, conv.id))
			continue
		}
		seen[m.ID] = true
		if m.Timestamp <= prev {
			r.sum.report("message", it.where, ReasonTimestampMoved,
				fmt.Sprintf("message %s of %s: %d -> %d", m.ID, conv.id, m.Timestamp, prev+1))
			m.Timestamp = prev + 1
		}
		prev = m.Timestamp
		p.msgs = append(p.msgs, m)
		p.where = append(p.where, it.where)
		fmt.Fprintf(h, "%s\x00%d\x00", m.ID, m.Timestamp)
	}
	p.state = fmt.Sprintf("v1 n=%d h=%016x", len(p.msgs), h.Sum64())
	return p
}

// writer writes plans in batches of Config.BatchSize messages (a batch may
// hold several small conversations), then, every few hundred completed
// conversations and at the end, their cursors and checkpoint. (A
// conversation completed but not yet checkpointed when a run stops is
// upserted again by the next run, which moves its cursors then.)
type writer struct {
	*run
	batch    []realtime.Message
	owner    []*convPlan
	complete []*convPlan
	cursors  int // of the complete conversations
	// eager finishes completed conversations after every plan: fetching
	// is slow, and the checkpoint spares refetching them.
	eager bool
}

// Completed conversations are finished (cursors, checkpoint) once this
// many are waiting, or their members' cursors are this many.
const (
	completeBatch   = 256
	completeCursors = 4000
)

func (w *writer) add(p *convPlan) error {
	if st, ok := w.progress[p.conv.id]; ok && st == p.state {
		// Imported completely by an earlier run with these very messages.
		w.sum.add(func(s *Summary) {
			s.Messages.Existing += len(p.msgs)
			s.CheckpointedConversations++
		})
		w.convsDone.Add(1)
		return nil
	}
	if len(p.msgs) == 0 {
		w.completed(p)
	}
	p.pending = len(p.msgs)
	for i := range p.msgs {
		w.batch = append(w.batch, p.msgs[i])
		w.owner = append(w.owner, p)
		if len(w.batch) >= w.cfg.BatchSize {
			if err := w.write(); err != nil {
				return err
			}
		}
	}
	if len(w.complete) >= completeBatch || w.cursors >= completeCursors || (w.eager && len(w.complete) > 0) {
		return w.finish()
	}
	return nil
}

func (w *writer) completed(p *convPlan) {
	w.complete = append(w.complete, p)
	if !p.conv.transient {
		w.cursors += len(p.conv.members)
	}
}

// flush writes everything pending.
func (w *writer) flush() error {
	if err := w.write(); err != nil {
		return err
	}
	return w.finish()
}

// write imports the batch of messages.
func (w *writer) write() error {
	if len(w.batch) > 0 {
		res, err := w.target.ImportMessages(w.ctx, w.batch)
		if err != nil {
			return fmt.Errorf("importer: import messages: %w", err)
		}
		var imported, existing int
		for k, rs := range res {
			p := w.owner[k]
			p.pending--
			switch {
			case rs.Err != nil:
				reason := ReasonMessageRefused
				if errors.Is(rs.Err, realtime.ErrConvNotFound) {
					reason = ReasonUnknownConv
				}
				w.sum.report("message", p.where[len(p.msgs)-p.pending-1], reason, rs.Err.Error())
			case rs.Duplicate:
				existing++
			default:
				imported++
			}
			if rs.Err == nil && rs.Message != nil {
				p.last = rs.Message
				p.own[rs.Message.From] = rs.Message
			}
			if p.pending == 0 {
				w.completed(p)
			}
		}
		w.sum.add(func(s *Summary) {
			s.Messages.Imported += imported
			s.Messages.Existing += existing
		})
		w.batch, w.owner = w.batch[:0], w.owner[:0]
	}
	return nil
}

// finish moves the cursors of the completed conversations, then records
// them in the checkpoint.
func (w *writer) finish() error {
	if len(w.complete) == 0 {
		return nil
	}
	var cursors []realtime.Cursor
	states := map[string]string{}
	for _, p := range w.complete {
		states[p.conv.id] = p.state
		if p.conv.transient {
			continue
		}
		for _, m := range p.conv.members {
			at := p.last
			if w.cfg.Unread == UnreadAfterOwn {
				at = p.own[m]
			}
			if at != nil {
				cursors = append(cursors, realtime.Cursor{ConvID: p.conv.id, ClientID: m, DeliveredAt: at.Timestamp,
					ReadSeq: at.Seq, ReadAt: at.Timestamp, ReadMessageID: at.ID})
			}
		}
	}
	// The store writes a call's cursors as one statement: keep it small.
	for len(cursors) > 0 {
		n := min(len(cursors), 500)
		if err := w.target.UpdateCursors(w.ctx, cursors[:n]); err != nil {
			return fmt.Errorf("importer: move cursors: %w", err)
		}
		cursors = cursors[n:]
	}
	if err := w.target.SaveImportProgress(w.ctx, w.source, states); err != nil {
		return fmt.Errorf("importer: save checkpoint: %w", err)
	}
	w.convsDone.Add(int64(len(w.complete)))
	w.complete, w.cursors = w.complete[:0], 0
	return nil
}

func (r *run) setPhase(p string) {
	r.phase.Store(p)
	r.printProgress()
}

func (r *run) printProgress() {
	if r.cfg.Progress == nil {
		return
	}
	r.printMu.Lock()
	defer r.printMu.Unlock()
	convs, msgs := r.sum.snapshot()
	line := fmt.Sprintf("lcimport: %s: conversations %d imported, %d there, %d skipped; history of %d done; "+
		"messages %d imported, %d there, %d skipped", r.phase.Load(), convs.Imported, convs.Existing, convs.Skipped,
		r.convsDone.Load(), msgs.Imported, msgs.Existing, msgs.Skipped)
	if n := r.fetched.Load(); n > 0 {
		line += fmt.Sprintf("; fetched %d", n)
	}
	fmt.Fprintln(r.cfg.Progress, line)
}

// startProgress prints progress lines until the returned stop is called.
func (r *run) startProgress() (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				r.printProgress()
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// dryTarget is the Target of a dry run: it keeps conversation heads in
// memory and writes nothing.
type dryTarget struct {
	mu    sync.Mutex
	convs map[string]*realtime.Message // id -> newest message (zero before any)
	ids   map[string]bool
}

func newDryTarget() *dryTarget {
	return &dryTarget{convs: map[string]*realtime.Message{}, ids: map[string]bool{}}
}

func (d *dryTarget) ImportConversations(_ context.Context, convs []realtime.Conversation) ([]bool, []error, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	created, errs := make([]bool, len(convs)), make([]error, len(convs))
	for i, c := range convs {
		if _, ok := d.convs[c.ID]; !ok {
			d.convs[c.ID] = &realtime.Message{}
			created[i] = true
		}
	}
	return created, errs, nil
}

func (d *dryTarget) ImportMessages(_ context.Context, msgs []realtime.Message) ([]realtime.AppendResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	res := make([]realtime.AppendResult, len(msgs))
	for i, m := range msgs {
		head := d.convs[m.ConvID]
		switch {
		case head == nil:
			res[i].Err = realtime.ErrConvNotFound.WithDetail("conversation %s", m.ConvID)
		case d.ids[m.ID]:
			res[i].Err = realtime.ErrInvalidMessage.WithDetail("message id %s is used in another conversation", m.ID)
		case m.Timestamp <= head.Timestamp:
			res[i].Err = realtime.ErrInvalidMessage.WithDetail("message %s is not newer than the conversation's newest", m.ID)
		default:
			out := m
			out.Seq = head.Seq + 1
			d.convs[m.ConvID], d.ids[m.ID] = &out, true
			res[i].Message = &out
		}
	}
	return res, nil
}

func (d *dryTarget) UpdateCursors(context.Context, []realtime.Cursor) error { return nil }

func (d *dryTarget) ImportProgress(context.Context, string) (map[string]string, error) {
	return map[string]string{}, nil
}

func (d *dryTarget) SaveImportProgress(context.Context, string, map[string]string) error { return nil }
