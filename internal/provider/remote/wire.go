// Package remote runs instances on the hosts of a cluster
// (docs/design.md#13-the-cluster): the leader plans, each host applies.
// The leader's groups use a Client, a provider.Provider that sends an
// instance's launch, adoption, stop, scripts and the wait for its exit to
// the Agent of the host the instance is placed on, over that host's peer
// endpoint; the Agent applies them with the host's own local provider,
// under the host's own lease deadline, so the host's pets stop when its
// lease can lapse whatever becomes of the leader.
//
// Every request is signed with the cluster's peer key and names the
// leader that sends it; an Agent refuses a request from a host that does
// not lead (a deposed leader's late launch), and each signature is
// accepted once, within a window of its time.
package remote

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
	"net/http"
	"strings"
	"time"

	"github.com/autoheal/autoheal/internal/provider"
	"github.com/autoheal/autoheal/internal/store"
)

// PathPrefix is where an Agent answers on the peer endpoint.
const PathPrefix = "/peer/v1/instances/"

const (
	claimHeader = "X-Autoheal-Peer-Claim"
	sigHeader   = "X-Autoheal-Peer-Signature"
	// window bounds how far a claim's time may be from the agent's
	// clock (hosts run NTP).
	window = 30 * time.Second
	// maxBody bounds a request or an answer: a spec's environment and a
	// script's capped output fit many times over.
	maxBody = 4 << 20
	// waitFor is how long an agent holds a wait before answering that
	// the instance still runs.
	waitFor = 20 * time.Second
)

// claim is what the sender vouches for.
type claim struct {
	From  string `json:"from"` // the leading host
	To    string `json:"to"`
	Path  string `json:"path"`
	Body  string `json:"body_sha256"`
	Time  int64  `json:"time_ms"`
	Nonce string `json:"nonce"`
}

func claimMAC(key []byte, c string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(c))
	return m.Sum(nil)
}

func bodyHash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// The operations.
const (
	opLaunch = "launch"
	opAdopt  = "adopt"
	opWait   = "wait"
	opStop   = "stop"
	opRun    = "run"
	opSweep  = "sweep"
	opList   = "list"
	// A local volume pinned to the host (volume.Host).
	opVolPrepare = "volume-prepare"
	opVolProbe   = "volume-probe"
	opVolMark    = "volume-mark"
	// A placed group's virtual IPs held on the host (Agent.Addresses).
	opVIP = "vip"
)

type vipReq struct {
	Group string   `json:"group"`
	Addrs []string `json:"addrs"` // none: release
}

type volReq struct {
	Group string `json:"group"`
	Name  string `json:"name"`
}

type volPrepared struct {
	Dir       string `json:"dir"`
	NeedsInit bool   `json:"needs_init"`
}

type launchReq struct {
	Spec   provider.Spec  `json:"spec"`
	Record store.Instance `json:"record"`
}

type idReq struct {
	ID string `json:"id"`
}

type stopReq struct {
	ID      string        `json:"id"`
	Signal  int           `json:"signal"`
	Timeout time.Duration `json:"timeout_ns"`
}

type runReq struct {
	Spec    provider.Spec `json:"spec"`
	Script  string        `json:"script"`
	Timeout time.Duration `json:"timeout_ns"`
}

type sweepReq struct {
	Keep []string `json:"keep"`
}

// procInfo describes an instance's process on its host.
type procInfo struct {
	ID      string              `json:"id"`
	Pid     int                 `json:"pid"`
	Started time.Time           `json:"started_at"`
	Exited  bool                `json:"exited"`
	Exit    provider.ExitStatus `json:"exit"`
}

// Placed is an instance a host runs for the cluster: the record the
// leader launched it with, and whether it runs now.
type Placed struct {
	Record store.Instance `json:"record"`
	Pid    int            `json:"pid"`
	Alive  bool           `json:"alive"`
}

type sweepResp struct {
	Killed []int `json:"killed"`
}

// errorResp is an agent's refusal.
type errorResp struct {
	Error    string `json:"error"`
	NotFound bool   `json:"not_found,omitempty"`
}

// errUnreachable wraps a failure to get an answer from a host (as opposed
// to an answer that refuses).
var errUnreachable = errors.New("host unreachable")

// call sends one signed request to an agent and decodes the answer into
// out.
func call(ctx context.Context, cli *http.Client, key []byte, from, to, base, op string, in, out any) error {
	return Call(ctx, cli, key, from, to, base, PathPrefix+op, in, out)
}

// Call sends one request from host from to host to, at base (its peer
// endpoint) and path, signed with the cluster's key (Verify checks it),
// and decodes the answer into out.
func Call(ctx context.Context, cli *http.Client, key []byte, from, to, base, path string, in, out any) error {
	op := strings.TrimPrefix(path, PathPrefix)
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	c, _ := json.Marshal(claim{From: from, To: to, Path: path, Body: bodyHash(body),
		Time: time.Now().UnixMilli(), Nonce: hex.EncodeToString(nonce)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(claimHeader, string(c))
	req.Header.Set(sigHeader, hex.EncodeToString(claimMAC(key, string(c))))
	resp, err := cli.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w: %w", to, op, errUnreachable, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil || len(b) > maxBody {
		return fmt.Errorf("%s %s: %w: answer unreadable or too large", to, op, errUnreachable)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorResp
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		if e.NotFound {
			return fmt.Errorf("%s: %w", to, provider.ErrNotFound)
		}
		return fmt.Errorf("host %s refused %s: %s", to, op, e.Error)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}
