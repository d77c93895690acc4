package cluster

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/autoheal/autoheal/internal/config"
)

// The failsafe (docs/design.md#13-the-cluster), after Patroni's: etcd out
// of reach of every host must not stop every pet. A leader whose renewals
// fail asks every other host whether it reaches etcd; only when all of
// them answer no may it keep its pets past its lease's SafeUntil, until
// the round's send time plus the TTL (less the fence budget). A host that
// answers no at t promises not to run any group before t + TTL, even if
// it wins an election meanwhile; so the leader's pets, no longer extended
// once any host reaches etcd again, are gone before another host may
// start them. Questions and answers are signed (HMAC-SHA256) with a key
// the first host puts in etcd: a forged "no" would keep a cut-off
// leader's pets running beside a new leader's.

// peerKeyLen is the size of the failsafe's signing key.
const peerKeyLen = 32

// FailsafePath is where a host answers.
const FailsafePath = "/autoheal/failsafe"

// signatureHeader carries the hex HMAC-SHA256 of the body.
const signatureHeader = "X-Autoheal-Signature"

// maxPeerBody bounds a question or an answer.
const maxPeerBody = 4 << 10

func peerKeyKey(c *config.Cluster) string { return prefix(c) + "peer-key" }

// ensurePeerKey returns the cluster's failsafe key, creating it if no
// host has yet.
func ensurePeerKey(ctx context.Context, cli *clientv3.Client, c *config.Cluster) ([]byte, error) {
	key := make([]byte, peerKeyLen)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	k := peerKeyKey(c)
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, hex.EncodeToString(key))).
		Else(clientv3.OpGet(k)).Commit()
	if err != nil {
		return nil, fmt.Errorf("failsafe key: %w", err)
	}
	if resp.Succeeded {
		return key, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, errors.New("failsafe key: vanished while read")
	}
	got, err := hex.DecodeString(string(kvs[0].Value))
	if err != nil || len(got) != peerKeyLen {
		return nil, fmt.Errorf("failsafe key at %s is not %d bytes of hex", k, peerKeyLen)
	}
	return got, nil
}

// peerMessage is a question (ReachesEtcd unset) or an answer.
type peerMessage struct {
	Cluster string `json:"cluster"`
	From    string `json:"from"`
	To      string `json:"to"`
	Nonce   string `json:"nonce"`
	// ReachesEtcd is the answer: whether the host that answers reached a
	// quorum of etcd just now.
	ReachesEtcd bool `json:"reaches_etcd"`
}

func mac(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)
}

func sign(key, body []byte) string { return hex.EncodeToString(mac(key, body)) }

// verified decodes body into msg if sig is its signature under key.
func verified(key, body []byte, sig string, msg *peerMessage) error {
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(key, body)) {
		return errors.New("bad signature")
	}
	return json.Unmarshal(body, msg)
}

// PeerServer answers the other hosts' failsafe questions.
type PeerServer struct {
	Cluster *config.Cluster
	Host    string // this host
	Key     []byte
	// Reaches probes etcd now, within the given time (Lease.Probe).
	Reaches func(ctx context.Context, within time.Duration) bool
	// Promise records, before a "no" goes out, that this host runs no
	// group before until; it fails (and no answer goes out) when this
	// host leads: a leader's silence is not a no.
	Promise func(until time.Time) error
}

func (p *PeerServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != FailsafePath {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPeerBody+1))
	if err != nil || len(body) > maxPeerBody {
		http.Error(w, "question too large or unreadable", http.StatusBadRequest)
		return
	}
	var q peerMessage
	if err := verified(p.Key, body, r.Header.Get(signatureHeader), &q); err != nil {
		http.Error(w, "failsafe question refused: "+err.Error(), http.StatusForbidden)
		return
	}
	if q.Cluster != p.Cluster.Name || q.To != p.Host || q.From == p.Host || p.Cluster.Host(q.From) == nil {
		http.Error(w, "failsafe question for another cluster or host", http.StatusForbidden)
		return
	}
	ttl := p.Cluster.LeaseTTL.D()
	a := peerMessage{Cluster: q.Cluster, From: p.Host, To: q.From, Nonce: q.Nonce}
	a.ReachesEtcd = p.Reaches(r.Context(), ttl/10)
	if !a.ReachesEtcd {
		// The promise is counted from now, after the question was sent:
		// the asker's extension ends before it.
		if err := p.Promise(time.Now().Add(ttl)); err != nil {
			http.Error(w, "cannot record the promise: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	out, _ := json.Marshal(a)
	w.Header().Set(signatureHeader, sign(p.Key, out))
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// Peers asks the other hosts of a cluster the failsafe's question.
type Peers struct {
	Cluster *config.Cluster
	Host    string // this host
	Key     []byte
}

// peerClient asks the other hosts: a connection per question, so that a
// host that went away is not asked through a dead connection.
var peerClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}

// NoneReachesEtcd asks every other host, within timeout, whether it
// reaches etcd, and returns nil only if every one answered a signed no;
// otherwise an error naming each host that did not.
func (p *Peers) NoneReachesEtcd(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var mu sync.Mutex
	answers := map[string]peerAnswer{}
	var wg sync.WaitGroup
	for _, h := range p.Cluster.Hosts {
		if h.Name == p.Host {
			continue
		}
		wg.Go(func() {
			a := p.ask(ctx, h)
			mu.Lock()
			answers[h.Name] = a
			mu.Unlock()
		})
	}
	wg.Wait()
	return allSayNo(p.Cluster, p.Host, answers)
}

// peerAnswer is what asking one host came to.
type peerAnswer struct {
	reaches bool
	err     error
}

func (p *Peers) ask(ctx context.Context, h config.ClusterHost) peerAnswer {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return peerAnswer{err: err}
	}
	q := peerMessage{Cluster: p.Cluster.Name, From: p.Host, To: h.Name, Nonce: hex.EncodeToString(nonce)}
	body, _ := json.Marshal(q)
	url := "http://" + net.JoinHostPort(h.Address, strconv.Itoa(p.Cluster.PeerPort)) + FailsafePath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return peerAnswer{err: err}
	}
	req.Header.Set(signatureHeader, sign(p.Key, body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := peerClient.Do(req)
	if err != nil {
		return peerAnswer{err: err}
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerBody+1))
	if err != nil {
		return peerAnswer{err: err}
	}
	if resp.StatusCode != http.StatusOK {
		return peerAnswer{err: fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(out)))}
	}
	var a peerMessage
	if err := verified(p.Key, out, resp.Header.Get(signatureHeader), &a); err != nil {
		return peerAnswer{err: fmt.Errorf("answer refused: %w", err)}
	}
	if a.Cluster != q.Cluster || a.From != h.Name || a.To != p.Host || a.Nonce != q.Nonce {
		return peerAnswer{err: errors.New("answer refused: not the answer to this question")}
	}
	return peerAnswer{reaches: a.ReachesEtcd}
}

// allSayNo is the failsafe's rule: the leader may run on without etcd only
// if every other host of the cluster answered that it does not reach etcd
// either. A host that did not answer may be running a new leader's pets:
// its silence is not a no.
func allSayNo(c *config.Cluster, self string, answers map[string]peerAnswer) error {
	var why []string
	for _, h := range c.Hosts {
		if h.Name == self {
			continue
		}
		a, ok := answers[h.Name]
		switch {
		case !ok:
			why = append(why, h.Name+": not asked")
		case a.err != nil:
			why = append(why, h.Name+": "+a.err.Error())
		case a.reaches:
			why = append(why, h.Name+": reaches etcd")
		}
	}
	if len(why) > 0 {
		slices.Sort(why)
		return fmt.Errorf("failsafe: not every host is cut off from etcd (%s)", strings.Join(why, "; "))
	}
	return nil
}
