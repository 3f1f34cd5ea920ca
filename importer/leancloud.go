package importer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Client reads a LeanCloud app's message history through LeanCloud's REST
// API v2 with the app's master key: GET /1.2/rtm/conversations/{id}/messages
// (one conversation) and GET /1.2/rtm/messages (the whole app). Both answer
// a page of history items, newest first; the client pages back in time with
// the oldest item's timestamp and msg-id as the next (exclusive) start, until
// a page is empty. 429 and 5xx answers and network errors are retried with
// exponential backoff (honouring Retry-After). The master key is sent in
// X-LC-Key and never logged or put in errors.
//
// A Client is safe for concurrent use; Concurrency bounds how many
// conversations an Importer fetches at once.
type Client struct {
	// BaseURL is the app's API server, e.g.
	// https://abcd1234.lc-cn-n1-shared.com (the console's "REST API
	// server address").
	BaseURL   string
	AppID     string
	MasterKey string

	// HTTPClient makes the requests; default a client with a 60 s timeout.
	HTTPClient *http.Client
	// PageSize is the limit of each request; default and maximum 1000.
	PageSize int
	// Concurrency is how many conversations are fetched at once;
	// default 4.
	Concurrency int
	// MaxAttempts bounds the tries of one request; default 8.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait before a retry (doubling
	// from MinBackoff); defaults 500 ms and 60 s.
	MinBackoff, MaxBackoff time.Duration

	requests, retries atomic.Int64
}

// HTTPError is a non-2xx answer from LeanCloud, with its error body
// ({"code": ..., "error": ...}) when it had one.
type HTTPError struct {
	StatusCode int
	Code       int
	Message    string
}

func (e *HTTPError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("leancloud: HTTP %d: code %d: %s", e.StatusCode, e.Code, e.Message)
	}
	return fmt.Sprintf("leancloud: HTTP %d", e.StatusCode)
}

// fatal reports whether err means no request can succeed (a wrong key or
// app id), so an import stops instead of skipping conversation after
// conversation.
func fatal(err error) bool {
	var he *HTTPError
	return errors.As(err, &he) && (he.StatusCode == http.StatusUnauthorized || he.StatusCode == http.StatusForbidden)
}

func (c *Client) check() error {
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("importer: LeanCloud base URL %q is not an http(s) URL", c.BaseURL)
	}
	if c.AppID == "" || c.MasterKey == "" {
		return errors.New("importer: LeanCloud needs an app id and the master key")
	}
	return nil
}

func (c *Client) pageSize() int {
	if c.PageSize <= 0 || c.PageSize > 1000 {
		return 1000
	}
	return c.PageSize
}

func (c *Client) concurrency() int { return cmpOr(c.Concurrency, 4) }

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// History returns every message of a conversation, newest first, as the
// raw items LeanCloud answered.
func (c *Client) History(ctx context.Context, convID string) ([]json.RawMessage, error) {
	var all []json.RawMessage
	err := c.pages(ctx, "/1.2/rtm/conversations/"+url.PathEscape(convID)+"/messages", func(page []json.RawMessage) error {
		all = append(all, page...)
		return nil
	})
	return all, err
}

// AppHistory calls page with every page of the app-wide history (GET
// /1.2/rtm/messages), newest first.
func (c *Client) AppHistory(ctx context.Context, page func([]json.RawMessage) error) error {
	return c.pages(ctx, "/1.2/rtm/messages", page)
}

func (c *Client) pages(ctx context.Context, path string, fn func([]json.RawMessage) error) error {
	if err := c.check(); err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(c.pageSize())}}
	var lastTS int64
	var lastID string
	for {
		items, err := c.get(ctx, path, q)
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return nil
		}
		if err := fn(items); err != nil {
			return err
		}
		ts, id, ok := pageCursor(items)
		if !ok {
			return fmt.Errorf("leancloud: %s: a page without msg-id and timestamp to page on", path)
		}
		if ts == lastTS && id == lastID {
			return fmt.Errorf("leancloud: %s: paging does not move past %d %s", path, ts, id)
		}
		lastTS, lastID = ts, id
		q.Set("timestamp", strconv.FormatInt(ts, 10))
		q.Set("msgid", id)
	}
}

// pageCursor is the timestamp and id of a page's oldest item: the last one
// (pages are newest first) that has both.
func pageCursor(items []json.RawMessage) (int64, string, bool) {
	for _, raw := range slices.Backward(items) {
		var it struct {
			ID string      `json:"msg-id"`
			TS json.Number `json:"timestamp"`
		}
		if json.Unmarshal(raw, &it) != nil || it.ID == "" {
			continue
		}
		if ts, err := it.TS.Int64(); err == nil && ts > 0 {
			return ts, it.ID, true
		}
	}
	return 0, "", false
}

// get fetches one page, retrying 429, 5xx and network errors.
func (c *Client) get(ctx context.Context, path string, q url.Values) ([]json.RawMessage, error) {
	hc := c.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient
	}
	attempts := cmpOr(c.MaxAttempts, 8)
	u := strings.TrimSuffix(c.BaseURL, "/") + path + "?" + q.Encode()
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, fmt.Errorf("leancloud: %w", err)
		}
		req.Header.Set("X-LC-Id", c.AppID)
		req.Header.Set("X-LC-Key", c.MasterKey+",master")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", "lcimport (github.com/leanhub/realtime)")
		c.requests.Add(1)
		items, retryAfter, err := c.do(hc, req)
		if err == nil {
			return items, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !retryable(err) || attempt >= attempts {
			return nil, fmt.Errorf("%s (GET %s, %d attempts): %w", "leancloud", path, attempt, err)
		}
		wait := c.backoff(attempt)
		if retryAfter > 0 {
			wait = min(retryAfter, cmpDur(c.MaxBackoff, 60*time.Second))
		}
		c.retries.Add(1)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}

var defaultHTTPClient = &http.Client{Timeout: 60 * time.Second}

// errTransport marks a network failure (retried).
type errTransport struct{ err error }

func (e errTransport) Error() string { return e.err.Error() }
func (e errTransport) Unwrap() error { return e.err }

func retryable(err error) bool {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.StatusCode == http.StatusTooManyRequests || he.StatusCode >= 500
	}
	var te errTransport
	return errors.As(err, &te)
}

// maxPage bounds the body of one answer (1000 items of at most 5 KB
// bodies, with room).
const maxPage = 64 << 20

func (c *Client) do(hc *http.Client, req *http.Request) ([]json.RawMessage, time.Duration, error) {
	resp, err := hc.Do(req)
	if err != nil {
		// url.Error carries the URL only, which holds no key.
		return nil, 0, errTransport{err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPage))
	if err != nil {
		return nil, 0, errTransport{err}
	}
	if resp.StatusCode != http.StatusOK {
		he := &HTTPError{StatusCode: resp.StatusCode}
		var e struct {
			Code  int    `json:"code"`
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil {
			he.Code, he.Message = e.Code, e.Error
		}
		var wait time.Duration
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
		return nil, wait, he
	}
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		// A cut or garbled answer: try again.
		return nil, 0, errTransport{fmt.Errorf("answer is not a JSON array: %w", err)}
	}
	return items, 0, nil
}

func cmpDur(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

// backoff is the wait before retry number attempt: MinBackoff doubled per
// attempt, at most MaxBackoff, with ±20% jitter so concurrent fetches do
// not retry in step.
func (c *Client) backoff(attempt int) time.Duration {
	lo, hi := cmpDur(c.MinBackoff, 500*time.Millisecond), cmpDur(c.MaxBackoff, 60*time.Second)
	d := lo << min(attempt-1, 30)
	if d <= 0 || d > hi {
		d = hi
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// fetchEach pulls the history of every imported conversation (bounded by
// Client.Concurrency) and writes each as soon as it is complete.
// Conversations the checkpoint has are not fetched unless Refresh.
func (r *run) fetchEach(w *writer) error {
	c := r.cfg.LeanCloud
	ids := slices.Sorted(maps.Keys(r.convs))
	r.setPhase(fmt.Sprintf("fetching the history of %d conversations", len(ids)))
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	var (
		mu          sync.Mutex
		firstErr    error
		consecutive atomic.Int64
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	jobs := make(chan *convInfo)
	plans := make(chan *convPlan, c.concurrency())
	var wg sync.WaitGroup
	for range c.concurrency() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for conv := range jobs {
				raws, err := c.History(ctx, conv.id)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					// Ten conversations failing in a row is LeanCloud (or
					// the network) failing, not one conversation.
					if fatal(err) || consecutive.Add(1) >= 10 {
						fail(fmt.Errorf("importer: fetch history: %w", err))
						return
					}
					r.sum.report("history", conv.id, ReasonFetchFailed, err.Error())
					continue
				}
				consecutive.Store(0)
				r.fetched.Add(1)
				if r.cfg.SaveFetched != nil {
					if err := r.cfg.SaveFetched(conv.id, raws); err != nil {
						fail(fmt.Errorf("importer: save fetched history: %w", err))
						return
					}
				}
				items := r.fetchedItems(conv.id, raws, conv.id)
				select {
				case plans <- r.plan(conv, items):
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for _, id := range ids {
			if st, ok := r.progress[id]; ok && !r.cfg.Refresh {
				r.sum.add(func(s *Summary) {
					s.Messages.Existing += stateCount(st)
					s.CheckpointedConversations++
				})
				r.convsDone.Add(1)
				continue
			}
			select {
			case jobs <- r.convs[id]:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(plans)
	}()
	for p := range plans {
		if ctx.Err() != nil {
			continue // drain: the workers are stopping
		}
		if err := w.add(p); err != nil {
			fail(err)
		}
	}
	if firstErr != nil {
		return firstErr
	}
	return r.ctx.Err()
}

// fetchedItems parses the raw items of a fetched page or history.
func (r *run) fetchedItems(name string, raws []json.RawMessage, fetchedFor string) []historyItem {
	items := make([]historyItem, 0, len(raws))
	for i, raw := range raws {
		where := fmt.Sprintf("%s#%d", name, i+1)
		if it, _, ok := r.item(where, raw, fetchedFor); ok {
			items = append(items, it)
		}
	}
	return items
}

// fetchAppWide pulls the app-wide history, groups it by conversation and
// writes it.
func (r *run) fetchAppWide(w *writer) error {
	groups := map[string][]historyItem{}
	n := 0
	err := r.cfg.LeanCloud.AppHistory(r.ctx, func(page []json.RawMessage) error {
		n++
		name := fmt.Sprintf("app-%06d", n)
		if r.cfg.SaveFetched != nil {
			if err := r.cfg.SaveFetched(name, page); err != nil {
				return fmt.Errorf("importer: save fetched history: %w", err)
			}
		}
		r.fetched.Add(int64(len(page)))
		for _, it := range r.fetchedItems(name, page, "") {
			groups[it.msg.ConvID] = append(groups[it.msg.ConvID], it)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("importer: fetch app-wide history: %w", err)
	}
	return r.importGroups(w, groups)
}

// stateCount is the message count of a checkpoint state ("v1 n=12 ...").
func stateCount(st string) int {
	for _, f := range strings.Fields(st) {
		if v, ok := strings.CutPrefix(f, "n="); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}
