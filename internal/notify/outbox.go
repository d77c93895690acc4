package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
)

// Worker bounds.
const (
	// maxInFlight bounds concurrent attempts across all lanes, so a burst
	// of incidents does not open hundreds of connections at once.
	maxInFlight = 16
	// maxLoaded bounds the pending deliveries held in memory; the rest
	// stay in the store and are loaded as these finish.
	maxLoaded = 10000
	// maxSleep bounds one wait, so a wall clock that jumps is noticed
	// within this long (retry times are wall clock, timers monotonic).
	maxSleep = time.Minute
	// loadRetry is the pause after the store failed to read.
	loadRetry = time.Second
	// writeTimeout bounds recording an attempt's outcome. It does not
	// inherit Close's cancellation: a delivery that went out must be
	// recorded as such, or it would be sent again after a restart.
	writeTimeout = 10 * time.Second
	// maxRespBody is how much of a response is read: the start of it
	// explains a failure; the rest is drained up to maxDrain so the
	// connection can be reused, and otherwise dropped.
	maxRespBody = 1 << 10
	maxDrain    = 64 << 10
	// maxErrLen bounds a recorded error.
	maxErrLen = 1 << 10
)

// backoff is the pause after attempt attempts (1 or more) failed: base
// doubled per attempt, capped at max, then "equal jitter" keeps it in
// [d/2, d] with jitter in [0, 1), so receivers that come back are not hit
// by every sender at once, yet the pause never collapses to nothing.
func backoff(attempt int, base, max time.Duration, jitter float64) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + time.Duration(jitter*float64(d-d/2))
}

// lane is the unit of ordering: the messages of one channel and one key are
// delivered one at a time, in the order they were sent. Lanes are
// independent, so a hung receiver only holds up its own.
type lane struct{ channel, key string }

type queue struct {
	items []store.NotificationRecord // items[0] is the head
	busy  bool                       // the head is being attempted
}

// result is an attempt's report to the worker.
type result struct {
	lane lane
	rec  store.NotificationRecord // the head's new state
	done bool                     // delivered or failed: pop the head
}

// run is the worker: it restarts the loop after a panic, from the store.
func (n *Notifier) run() {
	defer n.wg.Done()
	for !n.loop() {
		// The attempts of the dead loop may still be running; starting
		// the same deliveries again before they end would send twice.
		n.inflight.Wait()
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(loadRetry):
		}
	}
}

// loop owns the lanes: it loads pending deliveries from the store, starts
// the attempt of every lane head that is due, and waits for a result, a
// Send, the next due time or Close. It returns false after a panic.
func (n *Notifier) loop() (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			n.log.Error("notify: worker panic", "panic", p, "stack", string(debug.Stack()))
			ok = false
		}
	}()
	w := worker{
		// Buffered for every attempt that can be in flight, so an attempt
		// never blocks reporting, even after this loop returned.
		results: make(chan result, maxInFlight),
		lanes:   map[lane]*queue{},
		more:    true,
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := n.opts.Now()
		if w.more && w.loaded < n.maxLoaded && !now.Before(w.loadAt) {
			if !n.load(&w, now) {
				return true
			}
		}
		if next := n.dispatch(&w, now); !next.IsZero() {
			timer.Reset(min(max(next.Sub(now), 0), maxSleep))
		} else {
			timer.Stop()
		}

		select {
		case <-n.ctx.Done():
			// Attempts in flight see the same cancellation; Close waits
			// for them.
			return true
		case <-n.wake:
			w.more = true
		case res := <-w.results:
			w.finish(res)
		case <-timer.C:
		}
	}
}

// worker is the state of one run of loop, owned by its goroutine.
type worker struct {
	results  chan result
	lanes    map[lane]*queue
	lastID   int64 // the newest row loaded
	loaded   int   // rows held in lanes
	inflight int
	more     bool // the store may hold rows not loaded yet
	loadAt   time.Time
}

// load adds the next pending deliveries from the store to their lanes,
// abandoning those of channels no longer configured. After a failure it
// sets when to try again; it returns false when the Notifier is closing.
func (n *Notifier) load(w *worker, now time.Time) bool {
	recs, err := n.st.PendingNotifications(n.ctx, w.lastID, n.maxLoaded-w.loaded)
	if err != nil {
		if n.ctx.Err() != nil {
			return false
		}
		n.log.Warn("notify: load pending deliveries", "err", err)
		w.loadAt = now.Add(loadRetry)
		return true
	}
	w.more = len(recs) == n.maxLoaded-w.loaded
	for _, r := range recs {
		w.lastID = r.ID
		if _, ok := n.channels[r.Channel]; !ok {
			n.abandon(r)
			continue
		}
		l := lane{r.Channel, r.Key}
		q := w.lanes[l]
		if q == nil {
			q = &queue{}
			w.lanes[l] = q
		}
		q.items = append(q.items, r)
		w.loaded++
	}
	return true
}

// dispatch starts the attempt of every lane head that is due, as many as
// maxInFlight allows, drops empty lanes, and returns when the loop should
// next wake without a result or a Send: the earliest head not yet due, or
// the next load; zero for never.
func (n *Notifier) dispatch(w *worker, now time.Time) (next time.Time) {
	if w.more && w.loaded < n.maxLoaded {
		// Rows are left to load (a batch held deliveries that
		// were abandoned, or the store failed): come back at once,
		// or after the pause.
		next = now
		if w.loadAt.After(now) {
			next = w.loadAt
		}
	}
	for l, q := range w.lanes {
		if q.busy {
			continue
		}
		if len(q.items) == 0 {
			delete(w.lanes, l)
			continue
		}
		head := q.items[0]
		if head.NextAt.After(now) {
			if next.IsZero() || head.NextAt.Before(next) {
				next = head.NextAt
			}
			continue
		}
		if w.inflight >= maxInFlight {
			continue // a result will free a slot and wake us
		}
		q.busy = true
		w.inflight++
		n.inflight.Add(1)
		go n.attempt(l, head, w.results)
	}
	return next
}

// finish applies an attempt's result to its lane: the head is popped when
// it was delivered or failed, or replaced by its new state to retry.
func (w *worker) finish(res result) {
	w.inflight--
	q := w.lanes[res.lane]
	q.busy = false
	if res.done {
		q.items = q.items[1:]
		w.loaded--
	} else {
		q.items[0] = res.rec
	}
}

// abandon marks a delivery for a channel that is no longer configured as
// failed, so it neither waits forever nor reaches whatever the name means
// now.
func (n *Notifier) abandon(r store.NotificationRecord) {
	r.Status = StatusFailed
	r.LastError = fmt.Sprintf("channel %s is not configured", r.Channel)
	r.UpdatedAt = n.opts.Now().UTC()
	r.NextAt = time.Time{}
	n.log.Warn("notify: delivery abandoned", "delivery", r.ID, "channel", r.Channel, "key", r.Key, "err", r.LastError)
	n.record(r)
}

// attempt makes one attempt of delivery r, records its outcome and reports
// it to the worker.
func (n *Notifier) attempt(l lane, r store.NotificationRecord, results chan<- result) {
	defer n.inflight.Done()
	res := result{lane: l, rec: r}
	defer func() {
		if p := recover(); p != nil {
			n.log.Error("notify: delivery panic", "delivery", r.ID, "panic", p, "stack", string(debug.Stack()))
			// Retrying a panic would only panic again.
			r.Status, r.LastError, r.UpdatedAt = StatusFailed, fmt.Sprintf("internal error: %v", p), n.opts.Now().UTC()
			n.record(r)
			res = result{lane: l, rec: r, done: true}
		}
		results <- res
	}()

	c := n.channels[r.Channel]
	var m Message
	if err := json.Unmarshal(r.Body, &m); err != nil {
		r.Status, r.LastError, r.UpdatedAt = StatusFailed, "stored message: "+err.Error(), n.opts.Now().UTC()
		n.finish(r, m, c)
		res = result{lane: l, rec: r, done: true}
		return
	}

	status, wait, err := n.post(c, r.ID, m)
	if status == 0 && err != nil && n.ctx.Err() != nil {
		// Close cut the attempt short before any answer: it does not
		// count, and the delivery stays pending for the next Notifier.
		return
	}
	now := n.opts.Now().UTC()
	r.Attempts++
	r.LastStatus = status
	r.UpdatedAt = now
	r.NextAt = time.Time{}
	switch classify(status, err) {
	case delivered:
		r.Status, r.LastError = StatusDelivered, ""
	case permanent:
		r.Status, r.LastError = StatusFailed, errText(status, err)
	case retryable:
		r.LastError = errText(status, err)
		if r.Attempts >= c.MaxAttempts {
			r.Status = StatusFailed
			break
		}
		pause := max(backoff(r.Attempts, n.opts.BaseBackoff, n.opts.MaxBackoff, rand.Float64()), min(wait, n.opts.MaxBackoff))
		r.NextAt = now.Add(pause)
		n.log.Info("notify: delivery will be retried", "delivery", r.ID, "channel", r.Channel, "key", r.Key,
			"attempt", r.Attempts, "in", pause.Round(time.Millisecond), "err", r.LastError)
	}
	n.finish(r, m, c)
	res = result{lane: l, rec: r, done: r.Status != StatusPending}
}

// post sends m to c and returns the HTTP status (0 without a response), the
// pause the receiver asked for with Retry-After, and an error when there
// was no response or it was not 2xx.
func (n *Notifier) post(c ChannelSpec, id int64, m Message) (int, time.Duration, error) {
	req, err := render(c, id, m, n.opts.Now())
	if err != nil {
		return 0, 0, &permanentError{fmt.Errorf("format: %w", err)}
	}
	ctx, cancel := context.WithTimeout(n.ctx, c.Timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(req.body))
	if err != nil {
		return 0, 0, &permanentError{errors.New("bad url")} // the URL may be a secret: not quoted
	}
	hreq.Header = req.header
	resp, err := n.opts.Client.Do(hreq)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && n.ctx.Err() == nil {
			return 0, 0, fmt.Errorf("no response within %s", c.Timeout)
		}
		// A *url.Error quotes the URL, which may be a secret (a Slack
		// webhook URL is one): keep only what went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
		}
		return 0, 0, err
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxRespBody))
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, 0, nil
	}
	wait := retryAfter(resp.Header.Get("Retry-After"), n.opts.Now())
	msg := strings.Join(strings.Fields(string(head)), " ")
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return resp.StatusCode, wait, fmt.Errorf("%s", msg)
}

// errText is how an attempt's failure is recorded.
func errText(status int, err error) string {
	s := "unknown error"
	if err != nil {
		s = err.Error()
	}
	if status != 0 {
		s = fmt.Sprintf("HTTP %d: %s", status, s)
	}
	return truncate(s, maxErrLen)
}

// finish records r and, when it reached a final status, journals it.
func (n *Notifier) finish(r store.NotificationRecord, m Message, c ChannelSpec) {
	n.record(r)
	d := event.Delivery{Delivery: r.ID, Channel: r.Channel, ChannelType: c.Type, Key: r.Key, Event: r.Event,
		Attempts: r.Attempts, HTTPStatus: r.LastStatus, Error: r.LastError}
	var ev store.Event
	switch r.Status {
	case StatusDelivered:
		ev = event.New(m.Group, m.Instance,
			fmt.Sprintf("%s of %s delivered to %s (%s) after %d attempt(s)", r.Event, keyText(r.Key), r.Channel, c.Type, r.Attempts),
			event.NotifyDelivered{Delivery: d})
	case StatusFailed:
		n.log.Warn("notify: delivery failed", "delivery", r.ID, "channel", r.Channel, "key", r.Key,
			"attempts", r.Attempts, "err", r.LastError)
		ev = event.New(m.Group, m.Instance,
			fmt.Sprintf("%s of %s to %s (%s) failed after %d attempt(s): %s", r.Event, keyText(r.Key), r.Channel, c.Type, r.Attempts, r.LastError),
			event.NotifyFailed{Delivery: d})
	default:
		return
	}
	ev.Time = r.UpdatedAt
	ctx, cancel := context.WithTimeout(context.WithoutCancel(n.ctx), writeTimeout)
	defer cancel()
	if err := n.opts.Journal(ctx, ev); err != nil {
		n.log.Warn("notify: journal", "delivery", r.ID, "err", err)
	}
}

// record writes r's delivery state. A failed write is logged: the worker
// carries on from its memory, and a restart may send the delivery again.
func (n *Notifier) record(r store.NotificationRecord) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(n.ctx), writeTimeout)
	defer cancel()
	if err := n.st.UpdateNotification(ctx, r); err != nil {
		n.log.Error("notify: record delivery", "delivery", r.ID, "err", err)
	}
}

func keyText(key string) string {
	if key == "" {
		return "a message"
	}
	return key
}
