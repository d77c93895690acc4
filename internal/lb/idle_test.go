package lb

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/config"
)

func TestShouldEvict(t *testing.T) {
	tests := []struct {
		open, limit int
		want        bool
	}{
		{1, 1, true},         // a limit of one: the reserve is that one
		{1, 10, false},       // far from the limit
		{9, 10, false},       // reserve of one: the last slot stays free
		{10, 10, true},       // at the limit
		{9899, 10000, false}, // 1% of 10,000 kept free
		{9900, 10000, false},
		{9901, 10000, true},
		{10000, 10000, true},
		{150, 200, false},
		{199, 200, true}, // 1% of 200 is 2
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d of %d", tt.open, tt.limit), func(t *testing.T) {
			if got := shouldEvict(tt.open, tt.limit); got != tt.want {
				t.Fatalf("shouldEvict(%d, %d) = %v, want %v", tt.open, tt.limit, got, tt.want)
			}
		})
	}
}

func TestPhaseIdle(t *testing.T) {
	tests := []struct {
		p    phase
		idle bool
	}{
		{phaseFirstByte, true},
		{phaseKeepAlive, true},
		{phaseHead, false},
		{phaseBusy, false},
	}
	for _, tt := range tests {
		if got := tt.p.idle(); got != tt.idle {
			t.Errorf("phase %d idle = %v, want %v", tt.p, got, tt.idle)
		}
	}
}

func TestReadDeadline(t *testing.T) {
	lc := config.Listener{FirstByteTimeout: config.Duration(3 * time.Second), HeaderTimeout: config.Duration(10 * time.Second), IdleTimeout: config.Duration(time.Minute)}
	since := time.Unix(1000, 0)
	tests := []struct {
		name string
		p    phase
		lc   config.Listener
		want time.Time
	}{
		{"first byte", phaseFirstByte, lc, since.Add(3 * time.Second)},
		{"head", phaseHead, lc, since.Add(10 * time.Second)},
		{"between requests: idle_timeout, lazily", phaseKeepAlive, lc, time.Time{}},
		{"busy", phaseBusy, lc, time.Time{}},
		{"no first byte timeout", phaseFirstByte, config.Listener{}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := readDeadline(tt.p, since, &tt.lc); !got.Equal(tt.want) {
				t.Fatalf("readDeadline = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestIdleListEvictsOldest: the list evicts in the order connections
// became idle; one that left the list (a request came) is not evicted,
// and learns that it was when it was.
func TestIdleListEvictsOldest(t *testing.T) {
	type op struct {
		do   string // add, remove, evict
		e    int
		want int // evict: which entry (-1 none); remove: 1 when not evicted, 0 when it was
	}
	tests := []struct {
		name string
		ops  []op
	}{
		{"oldest first", []op{{"add", 0, 0}, {"add", 1, 0}, {"add", 2, 0}, {"evict", 0, 0}, {"evict", 0, 1}, {"evict", 0, 2}, {"evict", 0, -1}}},
		{"busy again is skipped", []op{{"add", 0, 0}, {"add", 1, 0}, {"remove", 0, 1}, {"evict", 0, 1}, {"evict", 0, -1}}},
		{"idle again goes to the back", []op{{"add", 0, 0}, {"add", 1, 0}, {"remove", 0, 1}, {"add", 0, 0}, {"evict", 0, 1}, {"evict", 0, 0}}},
		{"evicted learns it", []op{{"add", 0, 0}, {"evict", 0, 0}, {"remove", 0, 0}}},
		{"empty", []op{{"evict", 0, -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l idleList
			es := make([]idleEntry, 3)
			for i, o := range tt.ops {
				switch o.do {
				case "add":
					l.add(&es[o.e])
				case "remove":
					if got := l.remove(&es[o.e]); got != (o.want == 1) {
						t.Fatalf("op %d: remove(%d) = %v", i, o.e, got)
					}
				case "evict":
					got := -1
					if e := l.evictOldest(); e != nil {
						for j := range es {
							if e == &es[j] {
								got = j
							}
						}
					}
					if got != o.want {
						t.Fatalf("op %d: evicted %d, want %d", i, got, o.want)
					}
				}
			}
			if n := l.len(); n < 0 {
				t.Fatalf("len %d", n)
			}
		})
	}
}

// listenerOf is bal's only listener.
func listenerOf(t *testing.T, bal *Balancer) *listener {
	t.Helper()
	if len(bal.listeners) != 1 {
		t.Fatalf("%d listeners", len(bal.listeners))
	}
	return bal.listeners[0]
}

// waitFor polls cond until it holds or 10s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// closedByPeer waits (up to 10s) for c to be closed by the balancer: a
// read that returns EOF or a reset, not a timeout.
func closedByPeer(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

// request sends one GET on c and reads the answer's status line and body.
func request(t *testing.T, c net.Conn, br *bufio.Reader) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.Status + " " + string(b)
}

func dialRaw(t *testing.T, url string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSilentConnectionClosedAfterFirstByteTimeout: a connection that
// sends nothing is closed after first_byte_timeout, well before
// idle_timeout and header_timeout; one that sent a request in time is
// served.
func TestSilentConnectionClosedAfterFirstByteTimeout(t *testing.T) {
	t.Parallel()
	a := newBackend(t, "a", nil)
	yaml := strings.Replace(tgYAML("round_robin", "address: "+a.addr()),
		"target_group: tg}", "target_group: tg, first_byte_timeout: 200ms, idle_timeout: 1h, header_timeout: 1h}", 1)
	bal, url := start(t, yaml)
	waitHealthy(t, bal, "tg", 1)
	silent := dialRaw(t, url)
	began := time.Now()
	if !closedByPeer(t, silent) {
		t.Fatal("a silent connection was still open after 10s (first_byte_timeout 200ms)")
	}
	t.Logf("closed after %v", time.Since(began).Round(time.Millisecond))
	c := dialRaw(t, url)
	if got := request(t, c, bufio.NewReader(c)); got != "200 OK a" {
		t.Fatalf("a request sent at once: %s", got)
	}
}

// TestKeepAliveIdleNotCutByFirstByteTimeout: between requests a connection
// is bounded by idle_timeout, not first_byte_timeout.
func TestKeepAliveIdleNotCutByFirstByteTimeout(t *testing.T) {
	t.Parallel()
	a := newBackend(t, "a", nil)
	yaml := strings.Replace(tgYAML("round_robin", "address: "+a.addr()),
		"target_group: tg}", "target_group: tg, first_byte_timeout: 100ms, idle_timeout: 1h}", 1)
	bal, url := start(t, yaml)
	waitHealthy(t, bal, "tg", 1)
	c := dialRaw(t, url)
	br := bufio.NewReader(c)
	if got := request(t, c, br); got != "200 OK a" {
		t.Fatal(got)
	}
	// Idle past several first byte timeouts: a silent connection that
	// was accepted after this one closes first, then this one still
	// serves.
	other := dialRaw(t, url)
	if !closedByPeer(t, other) {
		t.Fatal("silent connection not closed")
	}
	if got := request(t, c, br); got != "200 OK a" {
		t.Fatalf("after idling between requests: %s", got)
	}
}

// evictionYAML: a listener of max_connections 10 (the oldest idle
// connection is closed from the 10th on) whose timeouts do not interfere.
func evictionYAML(backend string) string {
	return strings.Replace(tgYAML("round_robin", "address: "+backend),
		"target_group: tg}", "target_group: tg, max_connections: 10, first_byte_timeout: 1h, idle_timeout: 1h, header_timeout: 1h}", 1)
}

// TestEvictsOldestIdleAtLimit: with the listener near its limit and every
// connection idle, a new client is served and the connection idle longest
// is the one closed; the others still serve.
func TestEvictsOldestIdleAtLimit(t *testing.T) {
	t.Parallel()
	a := newBackend(t, "a", nil)
	bal, url := start(t, evictionYAML(a.addr()))
	waitHealthy(t, bal, "tg", 1)
	l := listenerOf(t, bal)
	var idle []net.Conn
	for i := range 8 {
		idle = append(idle, dialRaw(t, url))
		waitFor(t, fmt.Sprintf("%d idle connections", i+1), func() bool { return l.idle.len() == i+1 })
	}
	// The 9th keeps the reserve free: nothing is evicted.
	ninth := dialRaw(t, url)
	waitFor(t, "9 idle connections", func() bool { return l.idle.len() == 9 })
	if n := l.evicted.Load(); n != 0 {
		t.Fatalf("%d evicted below the limit", n)
	}
	// The 10th reaches it: the oldest goes, and the new client is served.
	c := dialRaw(t, url)
	if got := request(t, c, bufio.NewReader(c)); got != "200 OK a" {
		t.Fatalf("new client at the limit: %s", got)
	}
	if !closedByPeer(t, idle[0]) {
		t.Fatal("the oldest idle connection was not closed")
	}
	if n := l.evicted.Load(); n != 1 {
		t.Fatalf("%d evicted, want 1", n)
	}
	for i, c := range append(idle[1:], ninth) {
		if got := request(t, c, bufio.NewReader(c)); got != "200 OK a" {
			t.Fatalf("idle connection %d after the eviction: %s", i+1, got)
		}
	}
}

// TestKeepAliveIdleIsEvicted: a connection idle between two requests
// counts as idle, by the time it became so: it served a request, then
// waited longer than the connections opened after that.
func TestKeepAliveIdleIsEvicted(t *testing.T) {
	t.Parallel()
	a := newBackend(t, "a", nil)
	bal, url := start(t, evictionYAML(a.addr()))
	waitHealthy(t, bal, "tg", 1)
	l := listenerOf(t, bal)
	// Opened first but kept busy until the others are idle.
	early := dialRaw(t, url)
	waitFor(t, "1 idle connection", func() bool { return l.idle.len() == 1 })
	var fresh []net.Conn
	for i := range 4 {
		fresh = append(fresh, dialRaw(t, url))
		waitFor(t, "idle connections", func() bool { return l.idle.len() == i+2 })
	}
	keep := dialRaw(t, url) // served, then idle between requests
	waitFor(t, "6 idle", func() bool { return l.idle.len() == 6 })
	kbr := bufio.NewReader(keep)
	if got := request(t, keep, kbr); got != "200 OK a" {
		t.Fatal(got)
	}
	waitFor(t, "keep idle again", func() bool { return l.idle.len() == 6 })
	ebr := bufio.NewReader(early)
	if got := request(t, early, ebr); got != "200 OK a" {
		t.Fatal(got)
	}
	// Idle order now: fresh[0..3], keep, early. Fill up to the limit.
	waitFor(t, "6 idle", func() bool { return l.idle.len() == 6 })
	for i := range 3 {
		dialRaw(t, url)
		waitFor(t, "idle connections", func() bool { return l.idle.len() == 7+i })
	}
	// 9 open; each of 5 new clients (kept open, so that the listener
	// stays at its limit) closes the oldest idle: fresh[0..3], then keep,
	// which became idle before early did.
	for i := range 5 {
		c := dialRaw(t, url)
		if got := request(t, c, bufio.NewReader(c)); got != "200 OK a" {
			t.Fatalf("new client %d: %s", i, got)
		}
	}
	for i, c := range fresh {
		if !closedByPeer(t, c) {
			t.Fatalf("fresh connection %d not evicted", i)
		}
	}
	if !closedByPeer(t, keep) {
		t.Fatal("a connection idle between requests was not evicted")
	}
	if got := request(t, early, ebr); got != "200 OK a" {
		t.Fatalf("the connection idle the shortest: %s", got)
	}
}

// TestBusyConnectionsNeverEvicted: a connection in the middle of a request
// head, or of a streamed response, is older than every idle one and still
// is not evicted, even when no idle connection is left to close.
func TestBusyConnectionsNeverEvicted(t *testing.T) {
	t.Parallel()
	next := make(chan struct{})
	a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			io.WriteString(w, "first\n")
			w.(http.Flusher).Flush()
			<-next
			io.WriteString(w, "second\n")
			return
		}
		io.WriteString(w, "a")
	})
	bal, url := start(t, evictionYAML(a.addr()))
	var once sync.Once
	release := func() { once.Do(func() { close(next) }) }
	t.Cleanup(release) // before the balancer's Close, which waits for the stream
	waitHealthy(t, bal, "tg", 1)
	l := listenerOf(t, bal)

	// A head begun and not finished.
	partial := dialRaw(t, url)
	partial.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(partial, "GET / HTTP/1.1\r\nHost: x\r\n")
	// A response streaming.
	stream := dialRaw(t, url)
	stream.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(stream, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
	sbr := bufio.NewReader(stream)
	resp, err := http.ReadResponse(sbr, nil)
	if err != nil {
		t.Fatal(err)
	}
	rb := bufio.NewReader(resp.Body)
	if line, err := rb.ReadString('\n'); err != nil || line != "first\n" {
		t.Fatalf("stream: %q %v", line, err)
	}
	waitFor(t, "no idle connection", func() bool { return l.idle.len() == 0 })
	var idle []net.Conn
	for i := range 7 {
		idle = append(idle, dialRaw(t, url))
		waitFor(t, "idle connections", func() bool { return l.idle.len() == i+1 })
	}
	// 9 open. Eight new clients, one after the other: each closes the
	// oldest idle connection, then (from the 8th) the previous client's
	// connection, idle after its request; never partial or stream.
	for i := range 8 {
		c := dialRaw(t, url)
		if got := request(t, c, bufio.NewReader(c)); got != "200 OK a" {
			t.Fatalf("new client %d: %s", i, got)
		}
	}
	for i, c := range idle {
		if !closedByPeer(t, c) {
			t.Fatalf("idle connection %d not evicted", i)
		}
	}
	// The busy ones finish.
	io.WriteString(partial, "\r\n")
	pr, err := http.ReadResponse(bufio.NewReader(partial), nil)
	if err != nil || pr.StatusCode != 200 {
		t.Fatalf("the request whose head was under way: %v %v", pr, err)
	}
	release()
	rest, err := io.ReadAll(rb)
	if err != nil || string(rest) != "second\n" {
		t.Fatalf("the streamed response: %q %v", rest, err)
	}
}

func TestShouldReclaim(t *testing.T) {
	tests := []struct {
		peak, open int64
		want       bool
	}{
		{0, 0, false},
		{10000, 9000, false},
		{10000, 8977, false},
		{10000, 8976, true},
		{2000, 0, true},
		{1023, 0, false},
	}
	for _, tt := range tests {
		if got := shouldReclaim(tt.peak, tt.open); got != tt.want {
			t.Errorf("shouldReclaim(%d, %d) = %v, want %v", tt.peak, tt.open, got, tt.want)
		}
	}
}

// TestReclaimAfterMassClose: once more than reclaimAfter connections have
// closed, the listener has the memory they held collected.
func TestReclaimAfterMassClose(t *testing.T) {
	t.Parallel()
	a := newBackend(t, "a", nil)
	// Silent connections, kept open until the test closes them.
	bal, url := start(t, strings.Replace(tgYAML("round_robin", "address: "+a.addr()),
		"target_group: tg}", "target_group: tg, first_byte_timeout: 1h}", 1))
	waitHealthy(t, bal, "tg", 1)
	l := listenerOf(t, bal)
	n := reclaimAfter + 100
	conns := make([]net.Conn, 0, n)
	for range n {
		conns = append(conns, dialRaw(t, url))
	}
	waitFor(t, fmt.Sprintf("%d connections waiting", n), func() bool { return l.idle.len() == n })
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, "memory reclaimed", func() bool {
		l.rmu.Lock()
		defer l.rmu.Unlock()
		return !l.lastReclaim.IsZero()
	})
}

func TestKeepBuffers(t *testing.T) {
	for _, tt := range []struct {
		open int
		want bool
	}{{1, true}, {50, true}, {keepBuffersBelow, true}, {keepBuffersBelow + 1, false}, {10000, false}} {
		if got := keepBuffers(tt.open); got != tt.want {
			t.Errorf("keepBuffers(%d) = %v, want %v", tt.open, got, tt.want)
		}
	}
}
