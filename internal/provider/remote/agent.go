package remote

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/autoheal/autoheal/internal/atomicfile"
	"github.com/autoheal/autoheal/internal/nonce"
	"github.com/autoheal/autoheal/internal/provider"
	"github.com/autoheal/autoheal/internal/store"
	"github.com/autoheal/autoheal/internal/volume"
)

// Agent applies the leader's requests on this host with its local
// provider. It serves PathPrefix on the host's peer endpoint.
type Agent struct {
	// Host is this host's name.
	Host string
	// Key is the cluster's peer key.
	Key []byte
	// Local runs the instances (provider/local, under this host's lease
	// deadline).
	Local provider.Provider
	// Dir keeps a record of each instance placed here, for a new leader
	// (List).
	Dir string
	// Volumes is where this host keeps its local volumes (the state
	// dir's volumes directory).
	Volumes string
	// Addresses holds a placed group's virtual IPs on this host under its
	// deadline, or releases them when addrs is empty. Optional.
	Addresses func(group string, addrs []string) error
	// Leader names the host that leads now (read from etcd).
	Leader func(ctx context.Context) (string, error)
	// LeaderTTL is how long a leader's name read from etcd is trusted
	// before it is read again: a quarter of the lease TTL.
	LeaderTTL time.Duration
	Log       *slog.Logger

	nonces nonce.Set

	mu       sync.Mutex
	procs    map[string]provider.Process
	leader   string
	leaderAt time.Time
}

func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	if r.Method != http.MethodPost || !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		refuse(w, http.StatusRequestEntityTooLarge, errors.New("request unreadable or larger than 4 MiB"))
		return
	}
	if err := a.verify(r, op, body); err != nil {
		refuse(w, http.StatusForbidden, err)
		return
	}
	out, err := a.do(r.Context(), op, body)
	switch {
	case errors.Is(err, provider.ErrNotFound):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(errorResp{Error: err.Error(), NotFound: true})
	case err != nil:
		refuse(w, http.StatusConflict, err)
	default:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	}
}

func refuse(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(errorResp{Error: err.Error()})
}

// verify checks the request's claim (Verify), and that its sender leads.
func (a *Agent) verify(r *http.Request, op string, body []byte) error {
	from, err := Verify(r, a.Key, a.Host, &a.nonces, body)
	if err != nil {
		return err
	}
	// What starts or kills instances asks etcd each time; the waits,
	// adoptions, stops and scripts trust a recent answer.
	return a.fromLeader(r.Context(), from, op == opLaunch || op == opSweep)
}

// Verify checks a request between hosts signed by Call: the claim's
// signature under key, its addressee (self), path, body, time (within 30
// s of this host's clock) and nonce (accepted once, in nonces). It
// returns the sending host.
func Verify(r *http.Request, key []byte, self string, nonces *nonce.Set, body []byte) (from string, err error) {
	raw := r.Header.Get(claimHeader)
	sig, err := hex.DecodeString(r.Header.Get(sigHeader))
	if raw == "" || err != nil || !hmac.Equal(sig, claimMAC(key, raw)) {
		return "", errors.New("bad or missing signature")
	}
	var c claim
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return "", errors.New("bad claim")
	}
	now := time.Now()
	at := time.UnixMilli(c.Time)
	switch {
	case c.To != self:
		return "", fmt.Errorf("request for host %q reached %q", c.To, self)
	case c.Path != r.URL.Path:
		return "", errors.New("claim for another path")
	case c.Body != bodyHash(body):
		return "", errors.New("body does not match its claim")
	case at.Before(now.Add(-window)) || at.After(now.Add(window)):
		return "", fmt.Errorf("claim's time %s is more than %s from this host's clock", at.UTC().Format(time.RFC3339), window)
	case !nonces.Once(c.Nonce, now, at.Add(window)):
		return "", errors.New("claim replayed")
	}
	return c.From, nil
}

// fromLeader checks that host leads, from the name last read from etcd,
// read again when fresh is set, when it is older than LeaderTTL, or when
// it names another host.
func (a *Agent) fromLeader(ctx context.Context, host string, fresh bool) error {
	a.mu.Lock()
	known, at := a.leader, a.leaderAt
	a.mu.Unlock()
	if !fresh && known == host && time.Since(at) < a.LeaderTTL {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, max(a.LeaderTTL, time.Second))
	defer cancel()
	name, err := a.Leader(ctx)
	if err != nil {
		return fmt.Errorf("cannot tell who leads: %w", err)
	}
	a.mu.Lock()
	a.leader, a.leaderAt = name, time.Now()
	a.mu.Unlock()
	if name != host {
		return fmt.Errorf("host %s does not lead the cluster (%q does)", host, name)
	}
	return nil
}

func (a *Agent) do(ctx context.Context, op string, body []byte) (any, error) {
	switch op {
	case opLaunch:
		var req launchReq
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
		p, err := a.Launch(ctx, req.Spec, req.Record)
		if err != nil {
			return nil, err
		}
		return info(p), nil
	case opAdopt:
		var req idReq
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
		p, err := a.proc(ctx, req.ID)
		if err != nil {
			return nil, err
		}
		return info(p), nil
	case opWait:
		var req idReq
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
		return a.wait(ctx, req.ID)
	case opStop:
		var req stopReq
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
		return a.stop(ctx, req)
	case opRun:
		var req runReq
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
		req.Spec.Host = ""
		return a.Local.Run(ctx, req.Spec, req.Script, req.Timeout)
	case opSweep:
		var req sweepReq
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
		killed, err := a.Local.Sweep(ctx, req.Keep)
		return sweepResp{Killed: killed}, err
	case opList:
		return a.List(ctx)
	case opVIP:
		var req vipReq
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
		return struct{}{}, a.hold(req.Group, req.Addrs)
	case opVolPrepare, opVolProbe, opVolMark:
		var req volReq
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
		return a.volume(op, req)
	}
	return nil, fmt.Errorf("unknown operation %q", op)
}

// volume prepares, probes or marks a local volume kept here.
func (a *Agent) volume(op string, req volReq) (any, error) {
	for _, n := range []string{req.Group, req.Name} {
		if err := checkName(n); err != nil {
			return nil, fmt.Errorf("volume: %w", err)
		}
	}
	if !filepath.IsAbs(a.Volumes) {
		return nil, errors.New("this host keeps no local volumes")
	}
	p := volume.LocalPaths(a.Volumes, req.Group, req.Name)
	switch op {
	case opVolPrepare:
		needs, err := volume.PrepareDir(p)
		return volPrepared{Dir: filepath.Dir(p.Data), NeedsInit: needs}, err
	case opVolProbe:
		return struct{}{}, volume.ProbeLock(p.Lock)
	default:
		return struct{}{}, volume.MarkDir(p)
	}
}

// Launch starts an instance here and keeps its record: for the leader's
// request (over the peer endpoint) or for this host's own leader (Client,
// without a network hop).
func (a *Agent) Launch(ctx context.Context, spec provider.Spec, rec store.Instance) (provider.Process, error) {
	if err := a.keep(rec); err != nil {
		return nil, err
	}
	spec.Host = ""
	p, err := a.Local.Launch(ctx, spec)
	if err != nil {
		a.forget(rec.ID)
		return nil, err
	}
	a.mu.Lock()
	if a.procs == nil {
		a.procs = map[string]provider.Process{}
	}
	a.procs[spec.ID] = p
	a.mu.Unlock()
	return p, nil
}

// hold holds group's virtual IPs here, or releases them (no addrs).
func (a *Agent) hold(group string, addrs []string) error {
	if err := checkName(group); err != nil {
		return err
	}
	if a.Addresses == nil {
		return errors.New("this host holds no virtual IPs")
	}
	return a.Addresses(group, addrs)
}

// checkName refuses a group or volume name that is not one path element
// (the names become file names here).
func checkName(n string) error {
	if n == "" || n == "." || n == ".." || filepath.Base(n) != n {
		return fmt.Errorf("bad name %q", n)
	}
	return nil
}

// proc is the instance's process: launched or adopted by this agent, or
// adopted now.
func (a *Agent) proc(ctx context.Context, id string) (provider.Process, error) {
	a.mu.Lock()
	p, ok := a.procs[id]
	a.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := a.Local.Adopt(ctx, id)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	if a.procs == nil {
		a.procs = map[string]provider.Process{}
	}
	if q, ok := a.procs[id]; ok {
		p = q
	} else {
		a.procs[id] = p
	}
	a.mu.Unlock()
	return p, nil
}

// wait answers when the instance exits, or after waitFor that it runs.
func (a *Agent) wait(ctx context.Context, id string) (procInfo, error) {
	p, err := a.proc(ctx, id)
	if err != nil {
		return procInfo{}, err
	}
	t := time.NewTimer(waitFor)
	defer t.Stop()
	select {
	case <-p.Done():
	case <-t.C:
	case <-ctx.Done():
		return procInfo{}, ctx.Err()
	}
	return info(p), nil
}

// stop fences the instance; once every process is gone its record goes.
func (a *Agent) stop(ctx context.Context, req stopReq) (struct{}, error) {
	p, err := a.proc(ctx, req.ID)
	if errors.Is(err, provider.ErrNotFound) {
		a.forget(req.ID)
		return struct{}{}, nil
	}
	if err != nil {
		return struct{}{}, err
	}
	if err := a.Local.Stop(ctx, p, syscall.Signal(req.Signal), req.Timeout); err != nil {
		return struct{}{}, err
	}
	a.forget(req.ID)
	return struct{}{}, nil
}

// List is every instance placed on this host with its record; records of
// instances that are gone are dropped.
func (a *Agent) List(ctx context.Context) ([]Placed, error) {
	ents, err := os.ReadDir(a.Dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	out := []Placed{}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(a.Dir, e.Name()))
		if err != nil {
			continue
		}
		var pl Placed
		if json.Unmarshal(b, &pl.Record) != nil || pl.Record.ID != id {
			continue
		}
		p, err := a.proc(ctx, id)
		switch {
		case errors.Is(err, provider.ErrNotFound):
			a.forget(id)
			continue
		case err != nil:
			return nil, fmt.Errorf("instance %s: %w", id, err)
		}
		pl.Pid, pl.Alive = p.Pid(), !isDone(p)
		out = append(out, pl)
	}
	return out, nil
}

func (a *Agent) keep(rec store.Instance) error {
	if err := os.MkdirAll(a.Dir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(a.Dir, rec.ID+".json"), b, 0o600)
}

func (a *Agent) forget(id string) {
	os.Remove(filepath.Join(a.Dir, id+".json"))
	a.mu.Lock()
	delete(a.procs, id)
	a.mu.Unlock()
}

func info(p provider.Process) procInfo {
	pi := procInfo{ID: p.ID(), Pid: p.Pid(), Started: p.StartedAt()}
	if isDone(p) {
		pi.Exited, pi.Exit = true, p.Exit()
	}
	return pi
}

func isDone(p provider.Process) bool {
	select {
	case <-p.Done():
		return true
	default:
		return false
	}
}
