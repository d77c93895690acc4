package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/config"
)

// TestAllSayNo: the failsafe holds only when every other host answered
// no; silence, an error or a yes from any one of them is not a no.
func TestAllSayNo(t *testing.T) {
	c := &config.Cluster{Hosts: []config.ClusterHost{{Name: "a"}, {Name: "b"}, {Name: "c"}}}
	no := peerAnswer{}
	for _, tc := range []struct {
		name    string
		answers map[string]peerAnswer
		holds   bool
		why     string
	}{
		{"every other host says no", map[string]peerAnswer{"b": no, "c": no}, true, ""},
		{"one reaches etcd", map[string]peerAnswer{"b": no, "c": {reaches: true}}, false, "c: reaches etcd"},
		{"one is silent", map[string]peerAnswer{"b": no, "c": {err: errors.New("timeout")}}, false, "c: timeout"},
		{"one was not asked", map[string]peerAnswer{"b": no}, false, "c: not asked"},
		{"own answer does not count", map[string]peerAnswer{"a": {reaches: true}, "b": no, "c": no}, true, ""},
	} {
		err := allSayNo(c, "a", tc.answers)
		if (err == nil) != tc.holds || (tc.why != "" && !strings.Contains(err.Error(), tc.why)) {
			t.Errorf("%s: %v, want holds=%v (%q)", tc.name, err, tc.holds, tc.why)
		}
	}
}

// peerBed is three hosts' failsafe endpoints on loopback addresses
// 127.0.0.1-3, one port.
type peerBed struct {
	c        *config.Cluster
	key      []byte
	mu       sync.Mutex
	reaches  map[string]bool
	leading  map[string]bool
	promised map[string]time.Time
}

func newPeerBed(t *testing.T) *peerBed {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	b := &peerBed{
		c: &config.Cluster{Name: "c", LeaseTTL: config.Duration(2 * time.Second), PeerPort: port,
			Hosts: []config.ClusterHost{{Name: "h1", Address: "127.0.0.1"}, {Name: "h2", Address: "127.0.0.2"}, {Name: "h3", Address: "127.0.0.3"}}},
		key: bytes.Repeat([]byte{7}, peerKeyLen), reaches: map[string]bool{}, leading: map[string]bool{}, promised: map[string]time.Time{},
	}
	for i, h := range b.c.Hosts {
		l := ln
		if i > 0 {
			if l, err = net.Listen("tcp", net.JoinHostPort(h.Address, strconv.Itoa(port))); err != nil {
				t.Skipf("loopback %s: %v", h.Address, err)
			}
		}
		srv := &http.Server{Handler: &PeerServer{
			Cluster: b.c, Host: h.Name, Key: b.key,
			Reaches: func(context.Context, time.Duration) bool { b.mu.Lock(); defer b.mu.Unlock(); return b.reaches[h.Name] },
			Promise: func(until time.Time) error {
				b.mu.Lock()
				defer b.mu.Unlock()
				if b.leading[h.Name] {
					return errors.New("leads")
				}
				b.promised[h.Name] = until
				return nil
			},
		}}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
	}
	return b
}

// TestFailsafeRound: h1 asks h2 and h3 over real sockets. Both cut off:
// the round holds, and each promised to run nothing for a TTL from its
// answer. One reaches etcd, or leads: it does not hold. A question under
// another key is refused, and so is an answer under another key (a forged
// no).
func TestFailsafeRound(t *testing.T) {
	b := newPeerBed(t)
	ask := func(key []byte) error {
		p := &Peers{Cluster: b.c, Host: "h1", Key: key}
		return p.NoneReachesEtcd(t.Context(), time.Second)
	}
	before := time.Now()
	if err := ask(b.key); err != nil {
		t.Fatalf("both cut off: %v", err)
	}
	for _, h := range []string{"h2", "h3"} {
		if p := b.promised[h]; p.Before(before.Add(2 * time.Second)) {
			t.Fatalf("%s promised until %v, want a TTL after the question (%v)", h, p, before)
		}
	}
	b.mu.Lock()
	b.reaches["h3"] = true
	b.mu.Unlock()
	if err := ask(b.key); err == nil || !strings.Contains(err.Error(), "h3: reaches etcd") {
		t.Fatalf("h3 reaches etcd: %v", err)
	}
	b.mu.Lock()
	b.reaches["h3"], b.leading["h2"] = false, true
	b.mu.Unlock()
	if err := ask(b.key); err == nil || !strings.Contains(err.Error(), "h2: 500") {
		t.Fatalf("h2 leads: %v", err)
	}
	b.mu.Lock()
	b.leading["h2"] = false
	b.mu.Unlock()
	if err := ask(bytes.Repeat([]byte{8}, peerKeyLen)); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("a question under another key: %v", err)
	}
}

// TestForgedAnswerRefused: a host answering under another key (or with
// another question's nonce) is not counted as a no.
func TestForgedAnswerRefused(t *testing.T) {
	b := newPeerBed(t)
	forged := bytes.Repeat([]byte{9}, peerKeyLen)
	// h1's own endpoint stands in for an impostor: h2 and h3's answers
	// are checked against the key h1 asks with.
	p := &Peers{Cluster: b.c, Host: "h1", Key: b.key}
	// Replace h2 with an impostor that answers no under the forged key.
	b.c.Hosts[1].Address = "127.0.0.4"
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.4", strconv.Itoa(b.c.PeerPort)))
	if err != nil {
		t.Skip(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var q peerMessage
		json.NewDecoder(r.Body).Decode(&q)
		out, _ := json.Marshal(peerMessage{Cluster: q.Cluster, From: q.To, To: q.From, Nonce: q.Nonce})
		w.Header().Set(signatureHeader, sign(forged, out))
		w.Write(out)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	if err := p.NoneReachesEtcd(t.Context(), time.Second); err == nil || !strings.Contains(err.Error(), "h2: answer refused: bad signature") {
		t.Fatalf("a forged no: %v", err)
	}
}
