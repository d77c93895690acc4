package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
	"github.com/autoheal/autoheal/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// journal collects the events a Notifier journals.
type journal struct {
	mu  sync.Mutex
	evs []store.Event
}

func (j *journal) append(_ context.Context, ev store.Event) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.evs = append(j.evs, ev)
	return nil
}

// wait returns the types of the events journaled once there are n.
func (j *journal) wait(t *testing.T, n int) []string {
	t.Helper()
	testutil.WaitFor(t, testutil.Timeout, "journal events", func() bool { return len(j.types()) >= n })
	return j.types()
}

func (j *journal) types() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []string
	for _, ev := range j.evs {
		out = append(out, string(ev.Type))
	}
	return out
}

// fastOptions retries within milliseconds, so tests do not wait on
// production backoffs.
func fastOptions(j *journal) Options {
	o := Options{BaseBackoff: 2 * time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)}
	if j != nil {
		o.Journal = j.append
	}
	return o
}

func newNotifier(t *testing.T, st *store.Store, specs []ChannelSpec, opts Options) *Notifier {
	t.Helper()
	n, err := New(st, specs, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// received is one request a test server got.
type received struct {
	header http.Header
	body   []byte
}

// receiver is a real HTTP server that records what it gets and answers
// with respond (200 when nil).
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []received
	respond func(r received, n int) (int, string) // n counts requests from 1
}

func newReceiver(t *testing.T, respond func(r received, n int) (int, string)) *receiver {
	t.Helper()
	rc := &receiver{respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got := received{header: r.Header.Clone(), body: body}
		rc.mu.Lock()
		rc.got = append(rc.got, got)
		n := len(rc.got)
		rc.mu.Unlock()
		code, text := http.StatusOK, "ok"
		if rc.respond != nil {
			code, text = rc.respond(got, n)
		}
		w.WriteHeader(code)
		io.WriteString(w, text)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// waitStatus waits until every delivery of key has left pending and returns
// them oldest first.
func waitDone(t *testing.T, n *Notifier, f Filter, want int) []Delivery {
	t.Helper()
	var ds []Delivery
	testutil.WaitFor(t, testutil.Timeout, "deliveries to finish", func() bool {
		var err error
		ds, err = n.Deliveries(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) < want {
			return false
		}
		for _, d := range ds {
			if d.Status == StatusPending {
				return false
			}
		}
		return true
	})
	for i, j := 0, len(ds)-1; i < j; i, j = i+1, j-1 {
		ds[i], ds[j] = ds[j], ds[i]
	}
	return ds
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func incident(key, event string) Message {
	return Message{
		Key: key, Event: event, Severity: SeverityCritical,
		Summary: "CPUUtilization > 90 on web (i-3): runbook restart-web failed twice",
		Source:  "alarm web-cpu", Group: "web", Instance: "i-3",
		Details: map[string]any{
			"alarm":    "web-cpu",
			"runbook":  "restart-web",
			"attempts": 2,
			"timeline": []any{map[string]any{"time": "2025-03-01T11:58:00Z", "step": "restart", "status": "Failed"}},
		},
		Time: t0,
	}
}

func TestWebhookSignatureVerifies(t *testing.T) {
	t.Parallel()
	const secret = "s3cret"
	var verified atomic.Bool
	rc := newReceiver(t, func(r received, _ int) (int, string) {
		if !Verify(secret, r.header.Get(HeaderTimestamp), r.body, r.header.Get(HeaderSignature)) {
			return http.StatusUnauthorized, "bad signature"
		}
		verified.Store(true)
		return http.StatusOK, "ok"
	})
	j := &journal{}
	st := openStore(t, t.TempDir())
	n := newNotifier(t, st, []ChannelSpec{{Name: "ops", Type: TypeWebhook, URL: rc.URL + "/hook", Secret: secret}}, fastOptions(j))

	m := incident("inc-1", EventTrigger)
	if err := n.Send(context.Background(), "ops", m); err != nil {
		t.Fatal(err)
	}
	ds := waitDone(t, n, Filter{Key: "inc-1"}, 1)
	if d := ds[0]; d.Status != StatusDelivered || d.Attempts != 1 || d.LastHTTPStatus != 200 || d.LastError != "" {
		t.Fatalf("delivery = %+v, want delivered at the first attempt", d)
	}
	if !verified.Load() {
		t.Fatal("the receiver never verified a signature")
	}
	req := rc.requests()[0]
	for h, want := range map[string]string{
		"Content-Type": "application/json",
		HeaderEvent:    "trigger",
		HeaderDelivery: strconv.FormatInt(ds[0].ID, 10),
	} {
		if got := req.header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	ts, err := strconv.ParseInt(req.header.Get(HeaderTimestamp), 10, 64)
	if err != nil || ts <= 0 {
		t.Fatalf("%s = %q, want unix seconds", HeaderTimestamp, req.header.Get(HeaderTimestamp))
	}
	var body Message
	if err := json.Unmarshal(req.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Key != m.Key || body.Event != m.Event || body.Summary != m.Summary || !body.Time.Equal(m.Time) ||
		body.Group != "web" || body.Instance != "i-3" || body.Details["runbook"] != "restart-web" {
		t.Fatalf("body = %+v", body)
	}
	if got := j.wait(t, 1); len(got) != 1 || got[0] != string(event.KindNotifyDelivered) {
		t.Fatalf("journal = %v, want [%s]", got, string(event.KindNotifyDelivered))
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"key":"inc-1"}`)
	good := Sign("k", "1700000000", body)
	for _, tc := range []struct {
		name, secret, ts string
		body             []byte
		sig              string
		want             bool
	}{
		{"good", "k", "1700000000", body, good, true},
		{"wrong secret", "other", "1700000000", body, good, false},
		{"tampered body", "k", "1700000000", []byte(`{"key":"inc-2"}`), good, false},
		{"tampered timestamp", "k", "1700000001", body, good, false},
		{"no prefix", "k", "1700000000", body, strings.TrimPrefix(good, "sha256="), false},
		{"not hex", "k", "1700000000", body, "sha256=zz", false},
		{"truncated", "k", "1700000000", body, good[:len(good)-2], false},
		{"empty secret", "", "1700000000", body, Sign("", "1700000000", body), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Verify(tc.secret, tc.ts, tc.body, tc.sig); got != tc.want {
				t.Fatalf("Verify = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestPayloadsGolden sends each format through a real server and compares
// the bodies received with testdata/*.golden.json (go test -update rewrites
// them).
func TestPayloadsGolden(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(r received, _ int) (int, string) {
		if strings.Contains(string(r.body), "routing_key") {
			return http.StatusAccepted, `{"status":"success","message":"Event processed"}`
		}
		return http.StatusOK, "ok"
	})
	st := openStore(t, t.TempDir())
	n := newNotifier(t, st, []ChannelSpec{
		{Name: "hook", Type: TypeWebhook, URL: rc.URL, Secret: "k"},
		{Name: "chat", Type: TypeSlack, URL: rc.URL},
		{Name: "pager", Type: TypePagerDuty, URL: rc.URL, RoutingKey: "R0UTINGKEY"},
	}, fastOptions(nil))

	warn := incident("inc-2", EventUpdate)
	warn.Severity, warn.Summary = SeverityWarning, "runbook <restart-web> & retry: attempt 2 of 3"
	cases := []struct {
		golden, channel string
		m               Message
	}{
		{"webhook.trigger", "hook", incident("inc-1", EventTrigger)},
		{"slack.trigger", "chat", incident("inc-1", EventTrigger)},
		{"slack.update", "chat", warn},
		{"slack.resolve", "chat", Message{Key: "inc-1", Event: EventResolve, Summary: "CPUUtilization back to OK on web", Group: "web", Time: t0.Add(5 * time.Minute)}},
		{"pagerduty.trigger", "pager", incident("inc-1", EventTrigger)},
		{"pagerduty.update", "pager", warn},
		{"pagerduty.resolve", "pager", Message{Key: "inc-1", Event: EventResolve, Summary: "CPUUtilization back to OK on web", Time: t0.Add(5 * time.Minute)}},
	}
	// One at a time, so the n-th request is the n-th case.
	for i, tc := range cases {
		if err := n.Send(context.Background(), tc.channel, tc.m); err != nil {
			t.Fatal(err)
		}
		waitDone(t, n, Filter{}, i+1)
	}
	reqs := rc.requests()
	if len(reqs) != len(cases) {
		t.Fatalf("got %d requests, want %d", len(reqs), len(cases))
	}
	for i, tc := range cases {
		t.Run(tc.golden, func(t *testing.T) {
			checkGolden(t, tc.golden, reqs[i].body)
		})
	}
}

func checkGolden(t *testing.T, name string, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep the golden files readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s differs (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestRetriesUntilSuccess(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(_ received, n int) (int, string) {
		if n <= 2 {
			return http.StatusServiceUnavailable, "busy"
		}
		return http.StatusOK, "ok"
	})
	j := &journal{}
	st := openStore(t, t.TempDir())
	n := newNotifier(t, st, []ChannelSpec{{Name: "ops", Type: TypeWebhook, URL: rc.URL, Secret: "k"}}, fastOptions(j))
	if err := n.Send(context.Background(), "ops", incident("inc-1", EventTrigger)); err != nil {
		t.Fatal(err)
	}
	d := waitDone(t, n, Filter{}, 1)[0]
	if d.Status != StatusDelivered || d.Attempts != 3 || d.LastHTTPStatus != 200 {
		t.Fatalf("delivery = %+v, want delivered after 3 attempts", d)
	}
	reqs := rc.requests()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		// Retries are the same delivery, so receivers can dedupe.
		if got := r.header.Get(HeaderDelivery); got != strconv.FormatInt(d.ID, 10) {
			t.Errorf("request %d: delivery id %s, want %d", i, got, d.ID)
		}
	}
	if got := j.wait(t, 1); len(got) != 1 || got[0] != string(event.KindNotifyDelivered) {
		t.Fatalf("journal = %v, want one %s", got, string(event.KindNotifyDelivered))
	}
}

func TestPermanentFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, typ string
		code      int
		body      string
	}{
		{"pagerduty 400", TypePagerDuty, http.StatusBadRequest, `{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect"]}`},
		{"slack 404", TypeSlack, http.StatusNotFound, "no_service"},
		{"webhook redirect", TypeWebhook, http.StatusFound, "moved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, func(received, int) (int, string) { return tc.code, tc.body })
			j := &journal{}
			st := openStore(t, t.TempDir())
			n := newNotifier(t, st, []ChannelSpec{{Name: "c", Type: tc.typ, URL: rc.URL, RoutingKey: "r", MaxAttempts: 5}}, fastOptions(j))
			if err := n.Send(context.Background(), "c", incident("inc-1", EventTrigger)); err != nil {
				t.Fatal(err)
			}
			d := waitDone(t, n, Filter{}, 1)[0]
			if d.Status != StatusFailed || d.Attempts != 1 || d.LastHTTPStatus != tc.code {
				t.Fatalf("delivery = %+v, want failed after 1 attempt with %d", d, tc.code)
			}
			if !strings.Contains(d.LastError, strings.Fields(tc.body)[0]) {
				t.Fatalf("last error %q does not carry the response body", d.LastError)
			}
			if got := len(rc.requests()); got != 1 {
				t.Fatalf("receiver got %d requests, want 1 (no retry)", got)
			}
			if got := j.wait(t, 1); len(got) != 1 || got[0] != string(event.KindNotifyFailed) {
				t.Fatalf("journal = %v, want one %s", got, string(event.KindNotifyFailed))
			}
		})
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(received, int) (int, string) { return http.StatusInternalServerError, "boom" })
	st := openStore(t, t.TempDir())
	n := newNotifier(t, st, []ChannelSpec{{Name: "ops", Type: TypeWebhook, URL: rc.URL, MaxAttempts: 3}}, fastOptions(nil))
	if err := n.Send(context.Background(), "ops", incident("inc-1", EventTrigger)); err != nil {
		t.Fatal(err)
	}
	d := waitDone(t, n, Filter{}, 1)[0]
	if d.Status != StatusFailed || d.Attempts != 3 || d.LastError != "HTTP 500: boom" {
		t.Fatalf("delivery = %+v, want failed after 3 attempts with HTTP 500: boom", d)
	}
	if got := len(rc.requests()); got != 3 {
		t.Fatalf("receiver got %d requests, want 3", got)
	}
}

func TestNetworkErrorIsRetried(t *testing.T) {
	t.Parallel()
	// A server that is closed refuses connections: there is no response.
	rc := newReceiver(t, nil)
	url := rc.URL
	rc.Close()
	st := openStore(t, t.TempDir())
	n := newNotifier(t, st, []ChannelSpec{{Name: "chat", Type: TypeSlack, URL: url + "/services/T0/B0/SECRETTOKEN", MaxAttempts: 2}}, fastOptions(nil))
	if err := n.Send(context.Background(), "chat", incident("inc-1", EventTrigger)); err != nil {
		t.Fatal(err)
	}
	d := waitDone(t, n, Filter{}, 1)[0]
	if d.Status != StatusFailed || d.Attempts != 2 || d.LastHTTPStatus != 0 || d.LastError == "" {
		t.Fatalf("delivery = %+v, want failed after 2 attempts without a response", d)
	}
	// A Slack webhook URL is a credential: it must not be recorded.
	if strings.Contains(d.LastError, "SECRETTOKEN") {
		t.Fatalf("last error %q leaks the URL", d.LastError)
	}
}

// TestDurableAcrossRestart: a delivery still pending when the controller
// stops is delivered by the next one on the same state dir.
func TestDurableAcrossRestart(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	var accepted atomic.Int32
	down.Store(true)
	rc := newReceiver(t, func(received, int) (int, string) {
		if down.Load() {
			return http.StatusServiceUnavailable, "down"
		}
		accepted.Add(1)
		return http.StatusOK, "ok"
	})
	dir := t.TempDir()
	specs := []ChannelSpec{{Name: "ops", Type: TypeWebhook, URL: rc.URL, Secret: "k", MaxAttempts: 1000}}
	opts := fastOptions(nil)
	opts.BaseBackoff, opts.MaxBackoff = 50*time.Millisecond, 50*time.Millisecond

	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(st, specs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Send(context.Background(), "ops", incident("inc-1", EventTrigger)); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, testutil.Timeout, "a failed attempt", func() bool { return len(rc.requests()) > 0 })
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Send(context.Background(), "ops", incident("inc-2", EventTrigger)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}

	down.Store(false)
	st = openStore(t, dir)
	n = newNotifier(t, st, specs, opts)
	d := waitDone(t, n, Filter{}, 1)[0]
	if d.Status != StatusDelivered || d.Key != "inc-1" || d.Attempts < 1 {
		t.Fatalf("delivery = %+v, want inc-1 delivered after the restart", d)
	}
	for _, r := range rc.requests() {
		if r.header.Get(HeaderDelivery) != strconv.FormatInt(d.ID, 10) {
			t.Fatalf("unexpected delivery %s", r.header.Get(HeaderDelivery))
		}
	}
	if got := accepted.Load(); got != 1 {
		t.Fatalf("receiver accepted the delivery %d times, want once", got)
	}
}

// TestSendNeverBlocks: Send returns while the receiver is still holding
// the previous request of the same lane; the order is then kept.
func TestSendNeverBlocks(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	var returned atomic.Int32
	rc := newReceiver(t, func(received, int) (int, string) {
		entered <- struct{}{}
		<-release
		returned.Add(1)
		return http.StatusOK, "ok"
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	st := openStore(t, t.TempDir())
	n := newNotifier(t, st, []ChannelSpec{{Name: "ops", Type: TypeWebhook, URL: rc.URL, Timeout: time.Minute}}, fastOptions(nil))
	ctx := context.Background()
	if err := n.Send(ctx, "ops", incident("inc-1", EventTrigger)); err != nil {
		t.Fatal(err)
	}
	<-entered // the receiver now holds the first delivery
	if err := n.Send(ctx, "ops", incident("inc-1", EventResolve)); err != nil {
		t.Fatal(err)
	}
	if got := returned.Load(); got != 0 {
		t.Fatalf("Send returned after the receiver answered %d request(s); it must not wait for it", got)
	}
	close(release)
	ds := waitDone(t, n, Filter{Key: "inc-1"}, 2)
	var events []string
	for _, r := range rc.requests() {
		events = append(events, r.header.Get(HeaderEvent))
	}
	if strings.Join(events, ",") != "trigger,resolve" || ds[0].Status != StatusDelivered || ds[1].Status != StatusDelivered {
		t.Fatalf("received %v, deliveries %+v; want trigger then resolve, both delivered", events, ds)
	}
}

// TestCloseCancelsHangingAttempt: Close does not wait for a hung receiver,
// and the cut attempt neither counts nor loses the delivery.
func TestCloseCancelsHangingAttempt(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	rc := newReceiver(t, func(received, int) (int, string) {
		entered <- struct{}{}
		<-release
		return http.StatusOK, "ok"
	})
	t.Cleanup(func() { close(release) })
	st := openStore(t, t.TempDir())
	n, err := New(st, []ChannelSpec{{Name: "ops", Type: TypeWebhook, URL: rc.URL, Timeout: time.Hour}}, fastOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Send(context.Background(), "ops", incident("inc-1", EventTrigger)); err != nil {
		t.Fatal(err)
	}
	<-entered
	n.Close() // would hang for the hour-long timeout if it waited
	recs, err := st.Notifications(context.Background(), store.NotificationFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Status != StatusPending || recs[0].Attempts != 0 {
		t.Fatalf("after Close: %+v, want one pending delivery with no attempt counted", recs)
	}
}

// TestLanesAreIndependent: a receiver hung on one incident does not hold up
// another incident, nor another channel.
func TestLanesAreIndependent(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rc := newReceiver(t, func(r received, _ int) (int, string) {
		if strings.Contains(string(r.body), `"key":"hung"`) {
			<-release
		}
		return http.StatusOK, "ok"
	})
	t.Cleanup(func() { close(release) }) // before rc.Close, which waits for handlers
	st := openStore(t, t.TempDir())
	n := newNotifier(t, st, []ChannelSpec{
		{Name: "a", Type: TypeWebhook, URL: rc.URL, Timeout: time.Hour},
		{Name: "b", Type: TypeWebhook, URL: rc.URL, Timeout: time.Hour},
	}, fastOptions(nil))
	ctx := context.Background()
	if err := n.Send(ctx, "a", incident("hung", EventTrigger)); err != nil {
		t.Fatal(err)
	}
	if err := n.SendAll(ctx, []string{"a", "b"}, incident("other", EventTrigger)); err != nil {
		t.Fatal(err)
	}
	ds := waitDone(t, n, Filter{Key: "other"}, 2)
	if ds[0].Channel != "a" || ds[1].Channel != "b" {
		t.Fatalf("deliveries %+v, want one per channel", ds)
	}
	hung, err := n.Deliveries(ctx, Filter{Key: "hung"})
	if err != nil || len(hung) != 1 || hung[0].Status != StatusPending || hung[0].NextAttempt == nil {
		t.Fatalf("hung delivery %+v, %v: want still pending", hung, err)
	}
}

// TestOrderPerLane: with every first attempt failing, each incident's
// messages still reach each channel in the order they were sent.
func TestOrderPerLane(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]bool{} // delivery ids that failed once
	var order []string        // key/seq of accepted requests
	rc := newReceiver(t, func(r received, _ int) (int, string) {
		id := r.header.Get(HeaderDelivery)
		mu.Lock()
		defer mu.Unlock()
		if !seen[id] {
			seen[id] = true
			return http.StatusBadGateway, "flaky"
		}
		var m Message
		json.Unmarshal(r.body, &m)
		order = append(order, m.Key+"/"+m.Summary)
		return http.StatusOK, "ok"
	})
	st := openStore(t, t.TempDir())
	n := newNotifier(t, st, []ChannelSpec{{Name: "ops", Type: TypeWebhook, URL: rc.URL}}, fastOptions(nil))
	const perKey = 15
	keys := []string{"inc-1", "inc-2", "inc-3"}
	for i := range perKey {
		for _, k := range keys {
			m := Message{Key: k, Event: EventUpdate, Summary: strconv.Itoa(i)}
			if err := n.Send(context.Background(), "ops", m); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitDone(t, n, Filter{Limit: 1000}, perKey*len(keys))
	next := map[string]int{}
	mu.Lock()
	defer mu.Unlock()
	for _, o := range order {
		k, seq, _ := strings.Cut(o, "/")
		if want := strconv.Itoa(next[k]); seq != want {
			t.Fatalf("%s: got message %s, want %s (order %v)", k, seq, want, order)
		}
		next[k]++
	}
	for _, k := range keys {
		if next[k] != perKey {
			t.Fatalf("%s: %d messages accepted, want %d", k, next[k], perKey)
		}
	}
}

// TestRemovedChannelIsAbandoned: a pending delivery whose channel left the
// config fails at the next start instead of waiting forever.
func TestRemovedChannelIsAbandoned(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(received, int) (int, string) { return http.StatusServiceUnavailable, "down" })
	st := openStore(t, t.TempDir())
	opts := fastOptions(nil)
	opts.BaseBackoff, opts.MaxBackoff = time.Hour, time.Hour
	n, err := New(st, []ChannelSpec{{Name: "old", Type: TypeWebhook, URL: rc.URL}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Send(context.Background(), "old", incident("inc-1", EventTrigger)); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, testutil.Timeout, "a failed attempt", func() bool { return len(rc.requests()) > 0 })
	n.Close()

	n = newNotifier(t, st, []ChannelSpec{{Name: "new", Type: TypeWebhook, URL: rc.URL}}, opts)
	d := waitDone(t, n, Filter{}, 1)[0]
	if d.Status != StatusFailed || !strings.Contains(d.LastError, "not configured") {
		t.Fatalf("delivery = %+v, want failed: channel not configured", d)
	}
}

func TestSendRejects(t *testing.T) {
	t.Parallel()
	st := openStore(t, t.TempDir())
	n := newNotifier(t, st, []ChannelSpec{{Name: "ops", Type: TypeWebhook, URL: "http://127.0.0.1:1/"}}, fastOptions(nil))
	for _, tc := range []struct {
		name    string
		channel string
		m       Message
		want    error
	}{
		{"unknown channel", "nope", incident("inc-1", EventTrigger), ErrUnknownChannel},
		{"resolve without key", "ops", Message{Event: EventResolve}, ErrInvalidMessage},
		{"trigger without summary", "ops", Message{Key: "inc-1"}, ErrInvalidMessage},
		{"unknown event", "ops", Message{Key: "inc-1", Event: "page", Summary: "x"}, ErrInvalidMessage},
		{"unknown severity", "ops", Message{Key: "inc-1", Severity: "sev1", Summary: "x"}, ErrInvalidMessage},
		{"details not JSON", "ops", Message{Key: "inc-1", Summary: "x", Details: map[string]any{"f": func() {}}}, ErrInvalidMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := n.Send(context.Background(), tc.channel, tc.m); !errors.Is(err, tc.want) {
				t.Fatalf("Send = %v, want %v", err, tc.want)
			}
		})
	}
	if ds, err := n.Deliveries(context.Background(), Filter{}); err != nil || len(ds) != 0 {
		t.Fatalf("deliveries = %+v, %v; want none stored", ds, err)
	}
}

func TestLargeDetailsAreTruncated(t *testing.T) {
	t.Parallel()
	st := openStore(t, t.TempDir())
	opts := fastOptions(nil)
	opts.BaseBackoff, opts.MaxBackoff = time.Hour, time.Hour
	n := newNotifier(t, st, []ChannelSpec{{Name: "ops", Type: TypeWebhook, URL: "http://127.0.0.1:1/"}}, opts)
	m := incident("inc-1", EventTrigger)
	m.Details = map[string]any{"output": strings.Repeat("x", maxBody)}
	if err := n.Send(context.Background(), "ops", m); err != nil {
		t.Fatal(err)
	}
	ds, err := n.Deliveries(context.Background(), Filter{})
	if err != nil || len(ds) != 1 {
		t.Fatal(ds, err)
	}
	if _, ok := ds[0].Message.Details["truncated"]; !ok || ds[0].Message.Summary != m.Summary {
		t.Fatalf("message = %+v, want details replaced by a note", ds[0].Message)
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	st := openStore(t, t.TempDir())
	for _, tc := range []struct {
		name  string
		specs []ChannelSpec
		want  string
	}{
		{"no name", []ChannelSpec{{Type: TypeWebhook, URL: "http://x"}}, "without a name"},
		{"unknown type", []ChannelSpec{{Name: "a", Type: "email", URL: "http://x"}}, `unknown type "email"`},
		{"no url", []ChannelSpec{{Name: "a", Type: TypeSlack}}, "absolute http or https"},
		{"relative url", []ChannelSpec{{Name: "a", Type: TypeWebhook, URL: "/hook"}}, "absolute http or https"},
		{"pagerduty without key", []ChannelSpec{{Name: "a", Type: TypePagerDuty}}, "routing key"},
		{"duplicate", []ChannelSpec{{Name: "a", Type: TypeWebhook, URL: "http://x"}, {Name: "a", Type: TypeSlack, URL: "http://y"}}, "duplicate"},
		{"negative", []ChannelSpec{{Name: "a", Type: TypeWebhook, URL: "http://x", MaxAttempts: -1}}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(st, tc.specs, Options{})
			if err == nil {
				n.Close()
				t.Fatal("New accepted it")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to mention %q", err, tc.want)
			}
		})
	}
	n, err := New(st, []ChannelSpec{{Name: "pd", Type: TypePagerDuty, RoutingKey: "k"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if c := n.channels["pd"]; c.URL != DefaultPagerDutyURL || c.Timeout != DefaultTimeout || c.MaxAttempts != DefaultMaxAttempts {
		t.Fatalf("defaults not filled: %+v", c)
	}
}

// TestOutboxRetention exercises the store side the API reads: filters and
// pruning, which never drops a pending delivery.
func TestOutboxRetention(t *testing.T) {
	t.Parallel()
	st := openStore(t, t.TempDir())
	ctx := context.Background()
	var recs []store.NotificationRecord
	for i := range 6 {
		recs = append(recs, store.NotificationRecord{Channel: "ops", Key: "inc-" + strconv.Itoa(i%2), Event: EventTrigger, Group: "web", Body: []byte(`{}`)})
	}
	recs, err := st.EnqueueNotifications(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if i > 0 && r.ID <= recs[i-1].ID {
			t.Fatalf("ids not increasing: %d after %d", r.ID, recs[i-1].ID)
		}
		if i == 2 { // stays pending
			continue
		}
		r.Status, r.Attempts = StatusDelivered, 1
		if err := st.UpdateNotification(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.UpdateNotification(ctx, store.NotificationRecord{ID: 999, Status: StatusFailed}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of a missing row = %v, want ErrNotFound", err)
	}
	got, err := st.Notifications(ctx, store.NotificationFilter{Key: "inc-1", Group: "web"})
	if err != nil || len(got) != 3 || got[0].ID != recs[5].ID {
		t.Fatalf("by key: %+v, %v", got, err)
	}
	if err := st.PruneNotifications(ctx, 1); err != nil {
		t.Fatal(err)
	}
	got, err = st.Notifications(ctx, store.NotificationFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != recs[5].ID || got[1].ID != recs[2].ID || got[1].Status != StatusPending {
		t.Fatalf("after prune: %+v, want the newest finished and the pending one", got)
	}
	pending, err := st.PendingNotifications(ctx, 0, 0)
	if err != nil || len(pending) != 1 || pending[0].ID != recs[2].ID {
		t.Fatalf("pending: %+v, %v", pending, err)
	}
}

// TestPagesThroughOutbox: an outbox larger than the worker holds in memory
// is delivered in full and in order, rows of removed channels included.
func TestPagesThroughOutbox(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var order []string
	rc := newReceiver(t, func(r received, _ int) (int, string) {
		var m Message
		json.Unmarshal(r.body, &m)
		mu.Lock()
		order = append(order, m.Key+"/"+m.Summary)
		mu.Unlock()
		return http.StatusOK, "ok"
	})
	st := openStore(t, t.TempDir())
	ctx := context.Background()
	var gone []store.NotificationRecord
	for range 5 {
		gone = append(gone, store.NotificationRecord{Channel: "gone", Key: "inc-0", Event: EventTrigger, Body: []byte(`{}`)})
	}
	if _, err := st.EnqueueNotifications(ctx, gone); err != nil {
		t.Fatal(err)
	}
	n, err := build(st, []ChannelSpec{{Name: "ops", Type: TypeWebhook, URL: rc.URL}}, fastOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	n.maxLoaded = 2
	const perKey = 6
	for i := range perKey {
		for _, k := range []string{"inc-1", "inc-2"} {
			if err := n.Send(ctx, "ops", Message{Key: k, Event: EventUpdate, Summary: strconv.Itoa(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	n.start()
	ds := waitDone(t, n, Filter{}, 5+2*perKey)
	failed := 0
	for _, d := range ds {
		if d.Channel == "gone" && d.Status == StatusFailed {
			failed++
		} else if d.Status != StatusDelivered {
			t.Fatalf("delivery %+v, want delivered", d)
		}
	}
	if failed != 5 {
		t.Fatalf("%d deliveries of the removed channel failed, want 5", failed)
	}
	next := map[string]int{}
	mu.Lock()
	defer mu.Unlock()
	for _, o := range order {
		k, seq, _ := strings.Cut(o, "/")
		if want := strconv.Itoa(next[k]); seq != want {
			t.Fatalf("%s: got message %s, want %s (order %v)", k, seq, want, order)
		}
		next[k]++
	}
	if len(order) != 2*perKey {
		t.Fatalf("receiver got %d messages, want %d", len(order), 2*perKey)
	}
}
