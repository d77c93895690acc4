package group

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/provider"
	"github.com/autoheal/autoheal/internal/store"
)

// allocatePorts picks the instance port of every proxy-mode address: the
// configured one, or a free loopback port.
func (g *Group) allocatePorts() (map[string]int, error) {
	ports := map[string]int{}
	for _, name := range g.cfg.Launch.Ports {
		p, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("port %s: %w", name, err)
		}
		ports[name] = p
	}
	for _, a := range g.cfg.ListenAddresses() {
		switch {
		case a.Mode == "socket":
			_, p, _ := net.SplitHostPort(a.Listen)
			ports[a.Name], _ = strconv.Atoi(p)
		case a.Port != 0:
			ports[a.Name] = a.Port
		default:
			p, err := freePort()
			if err != nil {
				return nil, fmt.Errorf("address %s: %w", a.Name, err)
			}
			ports[a.Name] = p
		}
	}
	return ports, nil
}

// portHold is how long a port handed to an instance is not handed out
// again: the probe that finds a port closes it, so until the instance binds
// it the kernel may offer it to the next probe, for this instance's other
// port or another group's launch.
const portHold = 10 * time.Minute

var portsGiven = struct {
	sync.Mutex
	at map[int]time.Time
}{at: map[int]time.Time{}}

// freePort asks the kernel for a free loopback port not handed out in the
// last portHold.
func freePort() (int, error) {
	portsGiven.Lock()
	defer portsGiven.Unlock()
	now := time.Now()
	for p, at := range portsGiven.at {
		if now.Sub(at) > portHold {
			delete(portsGiven.at, p)
		}
	}
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if _, ok := portsGiven.at[p]; !ok {
			portsGiven.at[p] = now
			return p, nil
		}
	}
	return 0, errors.New("no free loopback port that was not handed out in the last " + portHold.String())
}

// attach gives the instance its volumes and addresses and returns its launch
// spec. The attachments are made durable in one write, after first and
// before last (the launch's transitions), which are applied with them: a
// replacement pays one fsync, not one per attachment and state. It fails
// loudly when a volume's previous holder cannot be proven dead.
func (g *Group) attach(ctx context.Context, in *instance, first, last []change) (provider.Spec, error) {
	cs := append([]change(nil), first...)
	tokens := map[string]int64{}
	for _, v := range g.cfg.Volumes {
		if _, err := g.deps.Volumes.Prepare(g.cfg.Name, v.Name); err != nil {
			return provider.Spec{}, fmt.Errorf("prepare volume %s: %w", v.Name, err)
		}
		// A restart in place keeps its volume and token: the fence just
		// confirmed every process of the instance gone, and the shim's own
		// flock fails loudly if anything still holds the volume.
		if cur, err := g.deps.Store.Attachment(ctx, "volume", g.cfg.Name, v.Name); err == nil && cur.Holder == in.id && cur.Token > 0 {
			tokens[v.Name] = cur.Token
			continue
		}
		att, swap, release, err := g.deps.Volumes.PrepareAttach(ctx, g.cfg.Name, v.Name, in.id, g.isAlive)
		if err != nil {
			g.record(g.event(in.id, fmt.Sprintf("attach volume %s: %v", v.Name, err), event.GroupError{Op: "attach_volume", Error: err.Error()}))
			return provider.Spec{}, fmt.Errorf("attach volume %s: %w", v.Name, err)
		}
		defer release()
		tokens[v.Name] = att.Token
		cs = append(cs, change{Change: swap, applied: func() {}})
	}
	// The address swaps are decided on the loop, the write is made there
	// (with the ledger, when a heal decision or a script changed it), and
	// the proxies follow it at once.
	err := g.onLoop(func() error {
		for _, a := range g.cfg.ListenAddresses() {
			c, ok, err := g.addressSwap(in, a.Name)
			if err != nil {
				return err
			}
			if ok {
				cs = append(cs, change{Change: c, applied: func() {}})
			}
		}
		cs = append(cs, last...)
		if err := g.commit(cs...); err != nil {
			return err
		}
		for _, a := range g.cfg.ListenAddresses() {
			if p, ok := g.proxies[a.Name]; ok {
				p.Associate(in.id, net.JoinHostPort(g.instanceIP(in.rec.Host), strconv.Itoa(in.ports[a.Name])))
			}
		}
		g.publish()
		return nil
	})
	if err != nil {
		return provider.Spec{}, err
	}
	return g.spec(in, tokens), nil
}

// addressSwap is the change that gives an address to the instance, if it
// does not hold it already (a restart in place keeps its address). Called
// on the loop.
func (g *Group) addressSwap(in *instance, name string) (store.Change, bool, error) {
	att, err := g.deps.Store.Attachment(context.Background(), "address", g.cfg.Name, name)
	if err != nil {
		return store.Change{}, false, fmt.Errorf("address %s: %w", name, err)
	}
	if att.Holder == in.id {
		return store.Change{}, false, nil
	}
	if att.Holder != "" && g.isAliveLocked(att.Holder) {
		return store.Change{}, false, fmt.Errorf("address %s is still held by live instance %s", name, att.Holder)
	}
	ev := g.event(in.id, fmt.Sprintf("address %s associated with %s", name, in.id), event.AddressAssociate{Address: name, PreviousHolder: att.Holder})
	_, c := store.AttachmentSwap(att, in.id, true, ev)
	return c, true, nil
}

// detach releases every volume and address the instance holds.
func (g *Group) detach(ctx context.Context, in *instance) {
	for _, v := range g.cfg.Volumes {
		if cur, err := g.deps.Store.Attachment(ctx, "volume", g.cfg.Name, v.Name); err == nil && cur.Holder != in.id {
			continue // already taken over by a replacement, or never held
		}
		if err := g.deps.Volumes.Detach(ctx, g.cfg.Name, v.Name, in.id); err != nil {
			g.record(g.event(in.id, fmt.Sprintf("detach volume %s: %v", v.Name, err), event.GroupError{Op: "detach_volume", Error: err.Error()}))
		}
	}
	g.call(func() {
		for _, a := range g.cfg.ListenAddresses() {
			att, err := g.deps.Store.Attachment(ctx, "address", g.cfg.Name, a.Name)
			if err != nil || att.Holder != in.id {
				continue
			}
			if p, ok := g.proxies[a.Name]; ok {
				p.Disassociate(in.id)
			}
			ev := g.event(in.id, fmt.Sprintf("address %s released by %s", a.Name, in.id), event.AddressDisassociate{Address: a.Name})
			if _, err := g.deps.Store.SwapAttachment(ctx, att, "", false, ev); err != nil {
				g.writeFailed(err)
			}
		}
		g.publish()
	})
}

// isAlive reports whether an instance may still have running processes. It
// is asked by the volume manager before it moves a volume, from a job.
func (g *Group) isAlive(id string) bool {
	var alive bool
	if err := g.call(func() { alive = g.isAliveLocked(id) }); err != nil {
		return true // cannot prove it dead
	}
	return alive
}

func (g *Group) isAliveLocked(id string) bool {
	in, ok := g.instances[id]
	if !ok {
		return false // not ours any more: terminated and pruned, or unknown
	}
	// An instance being launched (no process yet) counts as alive: it is
	// about to use what it holds.
	return !in.fenced && in.rec.State != Terminated
}

// envName turns a config name into an environment variable suffix.
func envName(s string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(s))
}

// inheritedEnv are the controller's variables an instance inherits; the rest
// of its environment comes from the config, as with systemd.
var inheritedEnv = []string{"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL"}

// baseEnv is what an instance's environment starts with: what it
// inherits from the controller, then the controller's variables for it
// (InstanceEnv), both before launch.env, which may override them.
func (g *Group) baseEnv(id string) []string {
	env := []string{}
	for _, k := range inheritedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if g.deps.InstanceEnv != nil {
		env = append(env, g.deps.InstanceEnv(id)...)
	}
	return env
}

// spec builds the launch spec of an instance. tokens are the volumes'
// fencing tokens (nil for scripts run outside a launch).
func (g *Group) spec(in *instance, tokens map[string]int64) provider.Spec {
	cfg := g.cfg
	env := g.baseEnv(in.id)
	keys := make([]string, 0, len(cfg.Launch.Env))
	for k := range cfg.Launch.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+cfg.Launch.Env[k])
	}
	for _, p := range cfg.Parameters {
		env = append(env, p.Name+"="+p.Value)
	}
	id := in.id
	env = append(env, "AUTOHEAL_INSTANCE_ID="+id, "AUTOHEAL_GROUP="+cfg.Name)
	if g.deps.MetadataURL != nil {
		env = append(env, "AUTOHEAL_METADATA_URL="+g.deps.MetadataURL(id))
	}
	if g.deps.InstanceToken != nil {
		env = append(env, "AUTOHEAL_INSTANCE_TOKEN="+g.deps.InstanceToken(id))
	}
	spec := provider.Spec{
		ID:          id,
		Group:       cfg.Name,
		Command:     cfg.Launch.Command,
		Args:        cfg.Launch.Args,
		Workdir:     cfg.Launch.Workdir,
		User:        cfg.Launch.User,
		LogMaxSize:  int64(cfg.Launch.Logs.MaxSize),
		LogMaxFiles: cfg.Launch.Logs.MaxFiles,
	}
	root := os.Geteuid() == 0
	for _, v := range cfg.Volumes {
		p := g.deps.Volumes.Paths(cfg.Name, v.Name)
		seen := p.Data
		if v.MountPath != "" && root {
			spec.Mounts = append(spec.Mounts, provider.Mount{Source: p.Data, Target: v.MountPath})
			seen = v.MountPath
		}
		env = append(env, "AUTOHEAL_VOLUME_"+envName(v.Name)+"="+seen)
		if tok, ok := tokens[v.Name]; ok {
			env = append(env, "AUTOHEAL_VOLUME_"+envName(v.Name)+"_TOKEN="+strconv.FormatInt(tok, 10))
			spec.Locks = append(spec.Locks, provider.Lock{Path: p.Lock, TokenFile: p.TokenFile, Token: tok})
		}
	}
	for _, name := range cfg.Launch.Ports {
		env = append(env, "AUTOHEAL_PORT_"+envName(name)+"="+strconv.Itoa(in.ports[name]))
	}
	for _, a := range cfg.ListenAddresses() {
		env = append(env, "AUTOHEAL_ADDRESS_"+envName(a.Name)+"="+a.Listen)
		port := in.ports[a.Name]
		env = append(env, "AUTOHEAL_PORT_"+envName(a.Name)+"="+strconv.Itoa(port))
		if a.Mode == "socket" {
			if s, ok := g.sockets[a.Name]; ok && tokens != nil {
				if f, err := s.File(); err == nil {
					spec.Listeners = append(spec.Listeners, provider.Listener{Name: a.Name, File: f})
				}
			}
		}
	}
	for _, a := range cfg.VIPs() {
		// The address without its prefix length: what clients dial.
		ip, _, _ := strings.Cut(a.IP, "/")
		env = append(env, "AUTOHEAL_ADDRESS_"+envName(a.Name)+"="+ip)
	}
	if name, ok := cfg.PortVar(); ok {
		env = append(env, "PORT="+strconv.Itoa(in.ports[name]))
	}
	env = append(env, "AUTOHEAL_BIND_ADDRESS="+g.instanceIP(in.rec.Host))
	spec.Host = in.rec.Host
	spec.Env = env
	return spec
}
